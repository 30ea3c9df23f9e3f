/* store_tamper.c - damages a local store on purpose, for failure tests.
 *
 *	store_tamper delete-dir STORE DIGEST	 removes a Directory record
 *	store_tamper delete-blob STORE DIGEST	 removes a blob (inline or file)
 *	store_tamper flip-blob STORE DIGEST OFFSET flips one byte of a blob
 *	store_tamper blob-path STORE DIGEST	 prints a blob's file path (where
 *						 it is, or would be, as a file)
 *	store_tamper copy-root STORE PATH OTHER	 gives PATH's PathInfo the root
 *						 node of OTHER's, nothing else
 *	store_tamper delete-path STORE PATH	 removes PATH's PathInfo record
 *
 * DIGEST is "blake3-<base64>" or 64 hex digits; PATH a full store path. A
 * blob stored inline (docs/store-format.md) is edited in LMDB, any other as
 * its file. The LMDB edits write directly, as damage or a bug would, bypassing
 * every rule of the store. Exit 0 on success, 1 with a message on failure.
 * The store must not be open for writing meanwhile. */
#include "backends/local/local.h"
#include "common/err.h"
#include "store/path_info.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_digest(const char *s, struct b3_digest *out)
{
	size_t len = strlen(s);

	if (len == B3_HEX_LEN && b3_digest_from_hex(s, len, out) == 0)
		return 0;
	if (b3_digest_from_text(s, len, out) == 0)
		return 0;
	return sf_err(-EINVAL, "'%s' is not a blake3 digest", s);
}

static int mdb_fail(int rc, const char *what)
{
	if (rc == MDB_NOTFOUND)
		return sf_err(-ENOENT, "%s: no such record", what);
	return sf_err(-EIO, "%s: %s", what, mdb_strerror(rc));
}

static int delete_dir(const char *store, const struct b3_digest *d)
{
	char db[4096];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {B3_LEN, (void *)d->bytes};
	int rc;

	if (snprintf(db, sizeof(db), "%s/db", store) >= (int)sizeof(db))
		return sf_err(-ENAMETOOLONG, "store path '%s' is too long", store);
	rc = mdb_env_create(&env);
	if (rc)
		return mdb_fail(rc, "cannot create an lmdb environment");
	if (!(rc = mdb_env_set_maxdbs(env, 8)) && !(rc = mdb_env_open(env, db, 0, 0644)) &&
	    !(rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		if (!(rc = mdb_dbi_open(txn, "directories", 0, &dbi)) &&
		    !(rc = mdb_del(txn, dbi, &key, NULL)))
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return rc ? mdb_fail(rc, "cannot delete the directory record") : 0;
}

/* Flips byte `off` (of the blob's bytes) of the inline value of `d`, or
 * deletes it (`off` < 0); -ENOENT (no message) if `d` is not inline. */
static int edit_inline(const char *store, const struct b3_digest *d, long long off)
{
	char db[4096];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	uint8_t *copy = NULL;
	int rc;

	if (snprintf(db, sizeof(db), "%s/db", store) >= (int)sizeof(db))
		return sf_err(-ENAMETOOLONG, "store path '%s' is too long", store);
	rc = mdb_env_create(&env);
	if (rc)
		return mdb_fail(rc, "cannot create an lmdb environment");
	if ((rc = mdb_env_set_maxdbs(env, 8)) || (rc = mdb_env_set_mapsize(env, 1ull << 36)) ||
	    (rc = mdb_env_open(env, db, 0, 0644)) || (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		mdb_env_close(env);
		return mdb_fail(rc, "cannot open the store's database");
	}
	rc = mdb_dbi_open(txn, "blobs", 0, &dbi);
	if (rc == 0)
		rc = mdb_get(txn, dbi, &key, &val);
	/* The value: an 8-byte write time, then the blob's bytes. */
	if (rc == 0 && off >= 0 && (unsigned long long)off + 8 >= val.mv_size)
		rc = EINVAL;
	if (rc == 0 && off >= 0 && !(copy = malloc(val.mv_size)))
		rc = ENOMEM;
	if (rc == 0 && off >= 0) {
		memcpy(copy, val.mv_data, val.mv_size);
		copy[8 + off] ^= 0xff;
		val.mv_data = copy;
		rc = mdb_put(txn, dbi, &key, &val, 0);
	} else if (rc == 0) {
		rc = mdb_del(txn, dbi, &key, NULL);
	}
	rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	free(copy);
	mdb_env_close(env);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc == EINVAL)
		return sf_err(-EINVAL, "offset %lld is past the end of the blob", off);
	return rc ? mdb_fail(rc, "cannot edit the inline blob") : 0;
}

static int flip_blob(const char *path, const char *offset)
{
	char *end;
	unsigned long long off = strtoull(offset, &end, 10);
	struct stat st;
	uint8_t b = 0;
	int fd, rc = 0;

	if (!*offset || *end)
		return sf_err(-EINVAL, "offset '%s' is not a number", offset);
	if (stat(path, &st) < 0)
		return sf_err_errno(-errno, errno, "cannot stat '%s'", path);
	if (off >= (unsigned long long)st.st_size)
		return sf_err(-EINVAL, "offset %llu is past the end of '%s'", off, path);
	/* Blob files are read-only; open them for writing just this once. */
	chmod(path, 0644);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1)
		rc = sf_err_errno(-EIO, errno, "cannot read '%s'", path);
	b ^= 0xff;
	if (rc == 0 && pwrite(fd, &b, 1, (off_t)off) != 1)
		rc = sf_err_errno(-EIO, errno, "cannot write '%s'", path);
	if (fd >= 0)
		close(fd);
	chmod(path, st.st_mode & 07777);
	return rc;
}

/* --- PathInfo records: 20-byte digest -> 8-byte cursor || PathInfo --- */

struct path_edit {
	struct store_path path, other; /* other: for copy-root */
	bool copy_root;
};

static int record_get(MDB_txn *txn, MDB_dbi dbi, const struct store_path *sp, MDB_val *val,
		      struct path_info **out)
{
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)sp->digest};
	int rc = mdb_get(txn, dbi, &key, val);

	if (rc)
		return mdb_fail(rc, sp->name);
	if (val->mv_size < 8)
		return sf_err(-EIO, "record of '%s' is too short", sp->name);
	return path_info_decode((uint8_t *)val->mv_data + 8, val->mv_size - 8, out);
}

static int copy_root(MDB_txn *txn, MDB_dbi dbi, const struct path_edit *e)
{
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)e->path.digest}, val, oval, nval;
	struct path_info *pi = NULL, *other = NULL;
	uint8_t *bytes = NULL, *rec = NULL;
	size_t len = 0;
	int rc = record_get(txn, dbi, &e->path, &val, &pi);

	if (rc == 0)
		rc = record_get(txn, dbi, &e->other, &oval, &other);
	if (rc == 0)
		rc = path_info_set_root(pi, &other->root);
	if (rc == 0)
		rc = path_info_encode(pi, &bytes, &len);
	if (rc == 0 && !(rec = malloc(8 + len)))
		rc = -ENOMEM;
	if (rc == 0) {
		memcpy(rec, val.mv_data, 8); /* the cursor stays */
		memcpy(rec + 8, bytes, len);
		nval = (MDB_val){8 + len, rec};
		rc = mdb_put(txn, dbi, &key, &nval, 0) ? sf_err(-EIO, "cannot write") : 0;
	}
	free(rec);
	free(bytes);
	path_info_free(pi);
	path_info_free(other);
	return rc;
}

static int delete_path(MDB_txn *txn, MDB_dbi dbi, MDB_dbi seq, const struct path_edit *e)
{
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)e->path.digest}, val, ckey;
	uint8_t cursor[8];
	int rc = mdb_get(txn, dbi, &key, &val);

	if (rc)
		return mdb_fail(rc, e->path.name);
	memcpy(cursor, val.mv_data, 8);
	ckey = (MDB_val){8, cursor};
	if (mdb_del(txn, dbi, &key, NULL) || mdb_del(txn, seq, &ckey, NULL))
		return sf_err(-EIO, "cannot delete the record of '%s'", e->path.name);
	return 0;
}

static int edit_path(const char *store, const struct path_edit *e)
{
	char db[4096];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi, seq;
	int rc;

	if (snprintf(db, sizeof(db), "%s/db", store) >= (int)sizeof(db))
		return sf_err(-ENAMETOOLONG, "store path '%s' is too long", store);
	rc = mdb_env_create(&env);
	if (rc)
		return mdb_fail(rc, "cannot create an lmdb environment");
	if ((rc = mdb_env_set_maxdbs(env, 8)) || (rc = mdb_env_set_mapsize(env, 1ull << 36)) ||
	    (rc = mdb_env_open(env, db, 0, 0644)) || (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		mdb_env_close(env);
		return mdb_fail(rc, "cannot open the store's database");
	}
	rc = mdb_dbi_open(txn, "pathinfo", 0, &dbi) || mdb_dbi_open(txn, "pathinfo_seq", 0, &seq)
		 ? sf_err(-EIO, "the store has no PathInfo database")
		 : 0;
	if (rc == 0)
		rc = e->copy_root ? copy_root(txn, dbi, e) : delete_path(txn, dbi, seq, e);
	if (rc == 0 && mdb_txn_commit(txn))
		rc = sf_err(-EIO, "cannot commit");
	else if (rc < 0)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

static int run_path_edit(int argc, char **argv)
{
	struct path_edit e = {.copy_root = !strcmp(argv[1], "copy-root")};
	int rc;

	if (argc != (e.copy_root ? 5 : 4))
		return sf_err(-EINVAL, "usage: store_tamper copy-root STORE PATH OTHER, or "
				       "delete-path STORE PATH");
	rc = store_path_parse(argv[3], strlen(argv[3]), false, &e.path);
	if (rc == 0 && e.copy_root)
		rc = store_path_parse(argv[4], strlen(argv[4]), false, &e.other);
	return rc < 0 ? rc : edit_path(argv[2], &e);
}

static int run(int argc, char **argv)
{
	char path[4096];
	struct b3_digest d;
	int rc;

	if (argc > 1 && (!strcmp(argv[1], "copy-root") || !strcmp(argv[1], "delete-path")))
		return run_path_edit(argc, argv);

	if (argc < 4 || (!strcmp(argv[1], "flip-blob") ? argc != 5 : argc != 4))
		return sf_err(-EINVAL, "usage: store_tamper delete-dir|delete-blob|blob-path STORE "
				       "DIGEST, or flip-blob STORE DIGEST OFFSET");
	rc = parse_digest(argv[3], &d);
	if (rc == 0)
		rc = local_blob_path(argv[2], &d, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (!strcmp(argv[1], "delete-dir"))
		return delete_dir(argv[2], &d);
	if (!strcmp(argv[1], "blob-path"))
		return printf("%s\n", path) < 0 ? -EIO : 0;
	if (!strcmp(argv[1], "flip-blob")) {
		char *end;
		long long off = strtoll(argv[4], &end, 10);

		rc = *argv[4] && !*end && off >= 0 ? edit_inline(argv[2], &d, off) : -ENOENT;
		return rc == -ENOENT ? flip_blob(path, argv[4]) : rc;
	}
	rc = !strcmp(argv[1], "delete-blob") ? edit_inline(argv[2], &d, -1) : -EINVAL;
	if (rc != -ENOENT && rc != -EINVAL)
		return rc;
	if (!strcmp(argv[1], "delete-blob"))
		return unlink(path) < 0 ? sf_err_errno(-errno, errno, "cannot delete '%s'", path)
					: 0;
	return sf_err(-EINVAL, "unknown command '%s'", argv[1]);
}

int main(int argc, char **argv)
{
	int rc = run(argc, argv);

	if (rc < 0) {
		fprintf(stderr, "store_tamper: %s\n", sf_errmsg(rc));
		return 1;
	}
	return 0;
}
