/* test_reliability.c - verified reads of the local store (quarantine,
 * re-verification of touched files, repair by a new commit) and the store
 * scrub (store_verify, store_verify_repair). */
#include "backends/local/local.h"
#include "backends/memory/memory.h"
#include "harness.h"
#include "store/import.h"
#include "store/store_gc.h"
#include "store/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct rfx {
	char tmp[64];
	char dir[96], dir2[96], src[96];
	struct store *st;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	chmod(path, 0755);
	return remove(path);
}

/* `inline_max`: STOREFS_INLINE_MAX for this open ("0": every blob a file,
 * the layout these tests damage; NULL: the default, small blobs inline). */
static int rfx_open_with(struct rfx *fx, const char *inline_max)
{
	int rc;

	*fx = (struct rfx){.tmp = "/tmp/storefs-rel.XXXXXX"};
	if (!mkdtemp(fx->tmp))
		return -errno;
	snprintf(fx->dir, sizeof(fx->dir), "%s/store", fx->tmp);
	snprintf(fx->dir2, sizeof(fx->dir2), "%s/store2", fx->tmp);
	snprintf(fx->src, sizeof(fx->src), "%s/src", fx->tmp);
	if (inline_max)
		setenv("STOREFS_INLINE_MAX", inline_max, 1);
	rc = local_store_open(fx->dir, STORE_OPEN_CREATE, &fx->st);
	unsetenv("STOREFS_INLINE_MAX");
	return rc;
}

static int rfx_open(struct rfx *fx)
{
	return rfx_open_with(fx, "0");
}

static void rfx_close(struct rfx *fx)
{
	store_free(fx->st);
	fx->st = NULL;
	nftw(fx->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed + (i >> 10));
}

/* Flips byte `off` of blob `d`'s file, as a disk fault or an admin would. */
static int flip(const char *dir, const struct b3_digest *d, off_t off)
{
	char path[512];
	uint8_t b;
	int fd, rc = local_blob_path(dir, d, path, sizeof(path));

	if (rc < 0)
		return rc;
	chmod(path, 0644);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	rc = pread(fd, &b, 1, off) == 1 ? 0 : -EIO;
	b ^= 0x5a;
	if (rc == 0 && pwrite(fd, &b, 1, off) != 1)
		rc = -EIO;
	close(fd);
	return rc;
}

static bool quarantined(const struct rfx *fx, const struct b3_digest *d, const char *suffix)
{
	char hex[B3_HEX_LEN + 1], path[256];

	b3_digest_to_hex(d, hex);
	snprintf(path, sizeof(path), "%s/quarantine/%s%s", fx->dir, hex, suffix);
	return access(path, F_OK) == 0;
}

static int read_all(struct store *st, const struct b3_digest *d, uint8_t *buf, size_t len)
{
	struct blob_reader *r;
	int rc = blob_service_open_read(st->blobs, d, &r);

	if (rc < 0)
		return rc;
	rc = r->size == len ? blob_reader_pread_full(r, buf, len, 0) : -EBADMSG;
	blob_reader_close(r);
	return rc;
}

TEST(verified_read_of_a_committed_blob)
{
	struct rfx fx;
	uint8_t data[5000], back[5000];
	struct b3_digest d;

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 1);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	CHECK(!quarantined(&fx, &d, ""));
	rfx_close(&fx);
}

TEST(verified_read_refuses_a_flipped_byte_and_quarantines)
{
	struct rfx fx;
	uint8_t data[70000], back[70000];
	struct b3_digest d, again;
	uint64_t size;

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 2);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(flip(fx.dir, &d, 65537));
	CHECK_ERR(read_all(fx.st, &d, back, sizeof(back)), -EIO);
	CHECK(quarantined(&fx, &d, ""));
	CHECK_ERR(blob_service_stat(fx.st->blobs, &d, &size), -ENOENT);
	CHECK_ERR(read_all(fx.st, &d, back, sizeof(back)), -ENOENT);
	/* A new commit of the right bytes repairs it. */
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &again));
	CHECK(b3_digest_eq(&d, &again));
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	/* A second damage of the same blob keeps the first quarantined copy. */
	CHECK_OK(flip(fx.dir, &d, 0));
	CHECK_ERR(read_all(fx.st, &d, back, sizeof(back)), -EIO);
	CHECK(quarantined(&fx, &d, "") && quarantined(&fx, &d, ".1"));
	rfx_close(&fx);
}

TEST(verified_read_rehashes_a_touched_but_intact_file)
{
	struct rfx fx;
	uint8_t data[3000], back[3000];
	struct b3_digest d;
	char path[512];

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 3);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(local_blob_path(fx.dir, &d, path, sizeof(path)));
	CHECK(utimensat(AT_FDCWD, path, NULL, 0) == 0); /* e.g. restored by a backup tool */
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	CHECK(!quarantined(&fx, &d, ""));
	rfx_close(&fx);
}

TEST(verified_read_refuses_a_truncated_file)
{
	struct rfx fx;
	uint8_t data[3000], back[3000];
	struct b3_digest d;
	char path[512];

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 4);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(local_blob_path(fx.dir, &d, path, sizeof(path)));
	CHECK(chmod(path, 0644) == 0 && truncate(path, 100) == 0);
	CHECK_ERR(read_all(fx.st, &d, back, sizeof(back)), -EIO);
	CHECK(quarantined(&fx, &d, ""));
	rfx_close(&fx);
}

TEST(commit_replaces_a_damaged_file_of_the_same_size)
{
	struct rfx fx;
	uint8_t data[200000], back[200000];
	struct blob_writer *w;
	struct b3_digest d, again;

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 5);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(flip(fx.dir, &d, 10));
	CHECK_OK(blob_service_open_write(fx.st->blobs, &w));
	CHECK_OK(blob_writer_write(w, data, sizeof(data)));
	CHECK_OK(blob_writer_commit(w, &d, &again));
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	CHECK(!quarantined(&fx, &d, ""));
	rfx_close(&fx);
}

/* Number of entries in `dir` other than . and .. */
static int count_entries(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return -1;
	while ((e = readdir(dp)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(dp);
	return n;
}

TEST(commit_keeps_a_verified_file_and_leaves_no_temp_file)
{
	struct rfx fx;
	uint8_t data[3000];
	char path[256], tmp[128];
	struct stat before, after;
	struct b3_digest d;

	CHECK_OK(rfx_open(&fx));
	pattern(data, sizeof(data), 7);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK_OK(blob_service_flush(fx.st->blobs)); /* recorded as verified */
	CHECK_OK(local_blob_path(fx.dir, &d, path, sizeof(path)));
	CHECK(stat(path, &before) == 0);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	CHECK(stat(path, &after) == 0);
	CHECK_EQ(after.st_ino, before.st_ino); /* the same file: "have it" */
	CHECK(after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
	snprintf(tmp, sizeof(tmp), "%s/tmp", fx.dir);
	CHECK_EQ(count_entries(tmp), 0);
	rfx_close(&fx);
}

/* --- the scrub --- */

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fwrite(data, 1, len, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* src/{a,b,sub/c} imported into `st`; the digest of "b" and of "sub". */
static int import_tree(struct rfx *fx, struct store *st, struct path_info **pi, struct b3_digest *b)
{
	char sub[128];
	uint8_t big[100000];
	int rc;

	snprintf(sub, sizeof(sub), "%s/sub", fx->src);
	mkdir(fx->src, 0755);
	mkdir(sub, 0755);
	pattern(big, sizeof(big), 9);
	b3_digest_of(big, sizeof(big), b);
	rc = write_file(fx->src, "a", "hello\n", 6);
	if (rc == 0)
		rc = write_file(fx->src, "b", big, sizeof(big));
	if (rc == 0)
		rc = write_file(sub, "c", "in sub\n", 7);
	return rc ? rc : store_import_path(st, fx->src, NULL, pi);
}

TEST(verify_clean_damaged_and_repaired_store)
{
	struct rfx fx;
	struct store *other;
	struct path_info *pi, *pi2;
	struct verify_result res;
	struct verify_options opt = {0};
	struct b3_digest b;
	uint64_t repaired = 0;

	CHECK_OK(rfx_open(&fx));
	CHECK_OK(import_tree(&fx, fx.st, &pi, &b));
	CHECK_OK(store_verify(fx.st, &opt, &res));
	CHECK_EQ(res.problems, 0);
	CHECK_EQ(res.paths, 1);
	CHECK_EQ(res.dirs, 2);
	CHECK_EQ(res.blobs, 3);
	verify_result_release(&res);

	CHECK_OK(flip(fx.dir, &b, 99999));
	CHECK_OK(store_verify(fx.st, &opt, &res));
	/* the blob itself, and the path whose NAR cannot be rendered */
	CHECK(res.problems >= 2);
	CHECK(digest_map_get(&res.bad_blobs, &b) != NULL);
	CHECK(quarantined(&fx, &b, ""));

	CHECK_OK(local_store_open(fx.dir2, STORE_OPEN_CREATE, &other));
	CHECK_OK(import_tree(&fx, other, &pi2, &b));
	CHECK_OK(store_verify_repair(fx.st, other, &res, &opt, &repaired));
	CHECK_EQ(repaired, 1);
	verify_result_release(&res);
	verify_result_release(&res); /* harmless twice */
	CHECK_OK(store_verify(fx.st, &opt, &res));
	CHECK_EQ(res.problems, 0);
	CHECK_EQ(res.quarantined, 1); /* a note, not a problem */
	verify_result_release(&res);
	path_info_free(pi);
	path_info_free(pi2);
	store_free(other);
	rfx_close(&fx);
}

/* --- small blobs inline in LMDB (docs/store-format.md) --- */

/* Flips byte `off` of blob `d`'s bytes in the LMDB "blobs" database (after
 * the 8-byte write time), with the store closed: LMDB opens an environment
 * once per process. */
static int flip_inline(const char *store, const struct b3_digest *d, size_t off)
{
	char db[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	uint8_t copy[70000];
	int rc;

	snprintf(db, sizeof(db), "%s/db", store);
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
	    (rc = mdb_env_open(env, db, 0, 0644)))
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0 && !(rc = mdb_dbi_open(txn, "blobs", 0, &dbi)) &&
	    !(rc = mdb_get(txn, dbi, &key, &val))) {
		if (val.mv_size > sizeof(copy) || 8 + off >= val.mv_size)
			rc = EINVAL;
		if (rc == 0) {
			memcpy(copy, val.mv_data, val.mv_size);
			copy[8 + off] ^= 0x01;
			val.mv_data = copy;
			rc = mdb_put(txn, dbi, &key, &val, 0);
		}
	}
	rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc;
}

static bool has_file(const struct rfx *fx, const struct b3_digest *d)
{
	char path[512];

	return local_blob_path(fx->dir, d, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

static int count_blob(void *ctx, const struct b3_digest *d)
{
	(void)d;
	++*(int *)ctx;
	return 0;
}

TEST(inline_blob_read_flip_quarantine_and_repair)
{
	struct rfx fx;
	uint8_t data[3000], back[3000];
	struct blob_reader *r;
	struct b3_digest d, again;
	uint64_t size;

	CHECK_OK(rfx_open_with(&fx, NULL));
	pattern(data, sizeof(data), 11);
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &d));
	/* Visible before the flush that stores it, and after. */
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK(!has_file(&fx, &d));
	CHECK_OK(blob_service_open_read(fx.st->blobs, &d, &r));
	CHECK_EQ(r->fd, -1);
	blob_reader_close(r);
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	store_free(fx.st);
	CHECK_EQ(flip_inline(fx.dir, &d, 1234), 0);
	CHECK_OK(local_store_open(fx.dir, 0, &fx.st));
	CHECK_ERR(read_all(fx.st, &d, back, sizeof(back)), -EIO);
	CHECK(quarantined(&fx, &d, ""));
	CHECK_ERR(blob_service_stat(fx.st->blobs, &d, &size), -ENOENT);
	/* A new commit of the right bytes repairs it. */
	CHECK_OK(blob_service_put(fx.st->blobs, data, sizeof(data), &again));
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK_OK(read_all(fx.st, &d, back, sizeof(back)));
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	rfx_close(&fx);
}

TEST(inline_blob_damage_is_named_by_verify)
{
	struct rfx fx;
	struct path_info *pi;
	struct verify_result res;
	struct verify_options opt = {0};
	struct b3_digest big, hello;

	CHECK_OK(rfx_open_with(&fx, NULL));
	CHECK_OK(import_tree(&fx, fx.st, &pi, &big));
	b3_digest_of("hello\n", 6, &hello);
	CHECK(!has_file(&fx, &hello)); /* inline */
	CHECK(has_file(&fx, &big));    /* 100000 bytes: above the inline limit */
	CHECK_OK(store_verify(fx.st, &opt, &res));
	CHECK_EQ(res.problems, 0);
	CHECK_EQ(res.blobs, 3);
	verify_result_release(&res);
	store_free(fx.st);
	CHECK_EQ(flip_inline(fx.dir, &hello, 0), 0);
	CHECK_OK(local_store_open(fx.dir, 0, &fx.st));
	CHECK_OK(store_verify(fx.st, &opt, &res));
	CHECK(res.problems >= 2); /* the blob, and the path whose NAR cannot be rendered */
	CHECK(digest_map_get(&res.bad_blobs, &hello) != NULL);
	CHECK(quarantined(&fx, &hello, ""));
	verify_result_release(&res);
	path_info_free(pi);
	rfx_close(&fx);
}

/* A store written with every blob a file (the previous layout) reads
 * the same after small blobs went inline, and takes new ones inline. */
TEST(inline_mixed_store_with_files_of_the_old_layout)
{
	const struct timespec any = {.tv_sec = INT64_MAX};
	struct rfx fx;
	uint8_t a[2000], b[2000], back[2000];
	struct b3_digest da, db, again;
	struct stat before, after;
	char path[512];
	uint64_t freed;
	bool created = true;
	struct blob_writer *w;
	int n = 0;

	CHECK_OK(rfx_open(&fx)); /* files only */
	pattern(a, sizeof(a), 21);
	pattern(b, sizeof(b), 22);
	CHECK_OK(blob_service_put(fx.st->blobs, a, sizeof(a), &da));
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK(has_file(&fx, &da));
	store_free(fx.st);
	CHECK_OK(local_store_open(fx.dir, 0, &fx.st)); /* small blobs inline */
	CHECK_OK(blob_service_put(fx.st->blobs, b, sizeof(b), &db));
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK(!has_file(&fx, &db));
	/* The verified file is "have it": not stored again, not new. */
	CHECK_OK(local_blob_path(fx.dir, &da, path, sizeof(path)));
	CHECK(stat(path, &before) == 0);
	CHECK_OK(blob_service_open_write(fx.st->blobs, &w));
	CHECK_OK(blob_writer_write(w, a, sizeof(a)));
	CHECK_OK(blob_writer_commit_new(w, NULL, &again, &created));
	CHECK(!created);
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino);
	CHECK_OK(read_all(fx.st, &da, back, sizeof(back)));
	CHECK(memcmp(a, back, sizeof(a)) == 0);
	CHECK_OK(read_all(fx.st, &db, back, sizeof(back)));
	CHECK(memcmp(b, back, sizeof(b)) == 0);
	CHECK_OK(store_blobs_each(fx.st, count_blob, &n));
	CHECK_EQ(n, 2);
	/* A collection deletes both kinds. */
	CHECK_EQ(store_blob_delete(fx.st, &da, &any, &freed), 1);
	CHECK_EQ(freed, sizeof(a));
	CHECK_EQ(store_blob_delete(fx.st, &db, &any, &freed), 1);
	CHECK_EQ(freed, sizeof(b));
	CHECK_ERR(read_all(fx.st, &da, back, sizeof(back)), -ENOENT);
	CHECK_ERR(read_all(fx.st, &db, back, sizeof(back)), -ENOENT);
	n = 0;
	CHECK_OK(store_blobs_each(fx.st, count_blob, &n));
	CHECK_EQ(n, 0);
	rfx_close(&fx);
}

TEST(verify_reports_a_missing_directory)
{
	struct rfx fx;
	struct store *mem;
	struct path_info *pi;
	struct verify_result res;
	struct verify_options none = {0};
	struct b3_digest b;

	CHECK_OK(rfx_open(&fx));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &mem));
	CHECK_OK(import_tree(&fx, fx.st, &pi, &b));
	/* A store holding the PathInfo only: its root Directory is missing. */
	CHECK_OK(path_info_service_put(mem->paths, pi));
	CHECK_OK(store_verify(mem, &none, &res));
	CHECK(res.problems >= 2); /* the directory, the path */
	CHECK(digest_map_get(&res.bad_dirs, &pi->root.digest) != NULL);
	verify_result_release(&res);
	path_info_free(pi);
	store_free(mem);
	rfx_close(&fx);
}

TEST(store_optional_operations_are_enotsup_elsewhere)
{
	struct store *mem;
	struct dir_service *stage;
	uint64_t size;

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &mem));
	CHECK_ERR(store_blobs_each(mem, NULL, NULL), -ENOTSUP);
	CHECK_ERR(store_dirs_each(mem, NULL, NULL), -ENOTSUP);
	CHECK_ERR(store_quarantine_each(mem, NULL, NULL), -ENOTSUP);
	CHECK_ERR(store_blob_check(mem, &b3_empty_digest, &size), -ENOTSUP);
	CHECK_ERR(store_stage_dirs(mem, &stage), -ENOTSUP);
	CHECK_ERR(store_commit_path(mem, NULL, NULL, NULL), -ENOTSUP);
	store_free(mem);
}

TEST(import_registers_directories_and_path_in_one_transaction)
{
	struct rfx fx;
	struct store *mem;
	struct dir_service *stage;
	struct directory *d;
	struct path_info *pi;
	struct b3_digest b;

	CHECK_OK(rfx_open(&fx));
	CHECK_OK(import_tree(&fx, fx.st, &pi, &b));
	CHECK_OK(dir_service_get(fx.st->dirs, &pi->root.digest, &d));
	directory_free(d);
	/* Staged Directories stay invisible until the commit. */
	CHECK_OK(store_stage_dirs(fx.st, &stage));
	CHECK_ERR(store_commit_path(fx.st, fx.st->dirs, pi, NULL), -EINVAL);
	CHECK_OK(store_commit_path(fx.st, stage, pi, NULL)); /* nothing staged: path only */
	dir_service_free(stage);
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &mem));
	CHECK_ERR(store_stage_dirs(mem, &stage), -ENOTSUP);
	CHECK_ERR(store_commit_path(mem, NULL, pi, NULL), -ENOTSUP);
	store_free(mem);
	path_info_free(pi);
	rfx_close(&fx);
}

TEST(staged_directories_are_stored_only_with_the_path)
{
	struct rfx fx;
	struct dir_service *stage;
	struct directory_builder *bld;
	struct directory *empty, *got;
	struct b3_digest dg;
	struct path_info *pi;
	struct b3_digest b;

	CHECK_OK(rfx_open(&fx));
	CHECK_OK(import_tree(&fx, fx.st, &pi, &b));
	CHECK_OK(store_stage_dirs(fx.st, &stage));
	CHECK_OK(directory_builder_new(&bld));
	CHECK_OK(directory_builder_finish(bld, &empty));
	CHECK_OK(dir_service_put(stage, empty, &dg));
	CHECK_ERR(dir_service_get(fx.st->dirs, &dg, &got), -ENOENT);
	CHECK_OK(store_commit_path(fx.st, stage, pi, NULL));
	CHECK_OK(dir_service_get(fx.st->dirs, &dg, &got));
	directory_free(got);
	directory_free(empty);
	dir_service_free(stage);
	path_info_free(pi);
	rfx_close(&fx);
}
