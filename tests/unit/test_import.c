/* test_import.c - the filesystem importer (store/import.c) against a memory
 * store: the reference vector tree, root kinds, rejected inputs, naming. */
#include "harness.h"

#include "backends/memory/memory.h"
#include "common/encoding.h"
#include "store/import.h"
#include "store/nar.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(p);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool put_file(const char *dir, const char *rel, const char *data, mode_t mode)
{
	char p[4096];
	int fd;
	bool ok;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return false;
	ok = write(fd, data, strlen(data)) == (ssize_t)strlen(data);
	return fchmod(fd, mode) == 0 && close(fd) == 0 && ok;
}

/* The tree of the reference vectors in a fresh temporary directory `<tmp>/src`. */
static bool make_src(char *tmp, char *src, size_t len)
{
	char p[4096];

	strcpy(tmp, "/tmp/storefs-unit-XXXXXX");
	if (!mkdtemp(tmp))
		return false;
	snprintf(src, len, "%s/src", tmp);
	snprintf(p, sizeof(p), "%s/sub", src);
	if (mkdir(src, 0755) < 0 || mkdir(p, 0755) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/link", src);
	return put_file(src, "hello.txt", "hello\n", 0644) &&
	       put_file(src, "run.sh", "#!/bin/sh\necho hi\n", 0755) &&
	       put_file(src, "sub/a", "x", 0644) && symlink("hello.txt", p) == 0;
}

static int count_bytes(void *ctx, const void *buf, size_t len)
{
	(void)buf;
	*(uint64_t *)ctx += len;
	return 0;
}

TEST(import_vector_tree)
{
	char tmp[64], src[128], full[STORE_PATH_FULL_MAX], hex[65];
	struct store *st;
	struct path_info *pi, *got;
	struct nar_summary sum;
	uint64_t n = 0;

	CHECK(make_src(tmp, src, sizeof(src)));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	CHECK_OK(store_import_path(st, src, NULL, &pi));
	store_path_full(&pi->path, full);
	CHECK_STR(full, "/nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src");
	CHECK_EQ(pi->nar_size, 1096);
	hex_encode(pi->nar_sha256, 32, hex);
	CHECK_STR(hex, "0e1d3cf421b592ee6847862b680520438ae60feb7b9e7ae7c48f6ebde21ac309");
	CHECK(pi->has_ca && pi->ca_type == CA_NAR_SHA256 && pi->ca_digest_len == 32);
	CHECK_EQ(pi->root.kind, NODE_DIRECTORY);
	CHECK_OK(path_info_service_get(st->paths, pi->path.digest, &got));
	CHECK(b3_digest_eq(&got->root.digest, &pi->root.digest));
	/* What was stored renders back to the same NAR. */
	CHECK_OK(nar_render(st->blobs, st->dirs, &got->root, count_bytes, &n, &sum));
	CHECK_EQ(n, 1096);
	CHECK_MEM(sum.sha256, pi->nar_sha256, 32);
	path_info_free(got);
	path_info_free(pi);
	store_free(st);
	rm_tree(tmp);
}

TEST(import_file_and_symlink_roots)
{
	char tmp[64], src[128], p[256], full[STORE_PATH_FULL_MAX];
	struct import_options opt = {.name = "flat.txt"};
	struct store *st;
	struct path_info *pi;

	CHECK(make_src(tmp, src, sizeof(src)));
	CHECK(put_file(tmp, "flat.txt", "flat file\n", 0644));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	snprintf(p, sizeof(p), "%s/flat.txt", tmp);
	CHECK_OK(store_import_path(st, p, &opt, &pi));
	store_path_full(&pi->path, full);
	CHECK_STR(full, "/nix/store/qc4h59vfx5px2mkzvrlvkwjzq2wb4psf-flat.txt");
	CHECK_EQ(pi->root.kind, NODE_FILE);
	CHECK_EQ(pi->root.size, 10);
	path_info_free(pi);
	snprintf(p, sizeof(p), "%s/link", src);
	CHECK_OK(store_import_path(st, p, NULL, &pi));
	CHECK_EQ(pi->root.kind, NODE_SYMLINK);
	CHECK_EQ(pi->root.target_len, 9);
	CHECK(!memcmp(pi->root.target, "hello.txt", 9));
	path_info_free(pi);
	snprintf(p, sizeof(p), "%s/run.sh", src);
	CHECK_OK(store_import_path(st, p, NULL, &pi));
	CHECK(pi->root.executable);
	path_info_free(pi);
	store_free(st);
	rm_tree(tmp);
}

static int count_path(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	(void)pi, (void)cursor;
	++*(uint64_t *)ctx;
	return 0;
}

TEST(import_rejects_fifo_and_registers_nothing)
{
	char tmp[64], src[128], p[256];
	struct store *st;
	struct path_info *pi;
	uint64_t n = 0;
	int rc;

	CHECK(make_src(tmp, src, sizeof(src)));
	snprintf(p, sizeof(p), "%s/sub/fifo", src);
	CHECK(mkfifo(p, 0644) == 0);
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	rc = store_import_path(st, src, NULL, &pi);
	CHECK_EQ(rc, -EINVAL);
	CHECK(strstr(sf_errmsg(rc), "sub/fifo' has an unsupported file type"));
	CHECK_OK(path_info_service_list(st->paths, 0, count_path, &n));
	CHECK_EQ(n, 0);
	remove(p);
	CHECK_OK(store_import_path(st, src, NULL, &pi));
	path_info_free(pi);
	store_free(st);
	rm_tree(tmp);
}

static bool make_chain(const char *top, int levels, char *deepest, size_t len)
{
	size_t n = (size_t)snprintf(deepest, len, "%s", top);

	if (mkdir(deepest, 0755) < 0)
		return false;
	for (int i = 0; i < levels; i++) {
		n += (size_t)snprintf(deepest + n, len - n, "/d");
		if (mkdir(deepest, 0755) < 0)
			return false;
	}
	return true;
}

TEST(import_depth_limit)
{
	char tmp[64] = "/tmp/storefs-unit-XXXXXX", top[128], deep[4096];
	struct store *st;
	struct path_info *pi;
	struct nar_summary sum;
	uint64_t n = 0;
	int rc;

	CHECK(mkdtemp(tmp));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	/* The deepest directory at depth 63 is fine, at 64 it is refused. */
	snprintf(top, sizeof(top), "%s/ok", tmp);
	CHECK(make_chain(top, NAR_MAX_DEPTH - 1, deep, sizeof(deep)));
	CHECK_OK(store_import_path(st, top, NULL, &pi));
	CHECK_OK(nar_render(st->blobs, st->dirs, &pi->root, count_bytes, &n, &sum));
	CHECK_EQ(sum.size, pi->nar_size);
	path_info_free(pi);
	/* So is a file in it (depth 64). */
	CHECK(put_file(deep, "f", "x", 0644));
	rc = store_import_path(st, top, NULL, &pi);
	CHECK_EQ(rc, -EINVAL);
	CHECK(strstr(sf_errmsg(rc), "/d/f' is nested 64 levels deep"));
	snprintf(top, sizeof(top), "%s/bad", tmp);
	CHECK(make_chain(top, NAR_MAX_DEPTH, deep, sizeof(deep)));
	rc = store_import_path(st, top, NULL, &pi);
	CHECK_EQ(rc, -EINVAL);
	CHECK(strstr(sf_errmsg(rc), "nested"));
	store_free(st);
	rm_tree(tmp);
}

TEST(import_default_names)
{
	char buf[STORE_PATH_MAX_NAME + 1];

	CHECK_OK(store_import_default_name("/a/b", buf, sizeof(buf)));
	CHECK_STR(buf, "b");
	CHECK_OK(store_import_default_name("/a/b///", buf, sizeof(buf)));
	CHECK_STR(buf, "b");
	CHECK_OK(store_import_default_name("/a/b/..", buf, sizeof(buf)));
	CHECK_STR(buf, "a");
	CHECK_OK(store_import_default_name("/a/./b/.", buf, sizeof(buf)));
	CHECK_STR(buf, "b");
	CHECK_OK(store_import_default_name("/x/.hidden", buf, sizeof(buf)));
	CHECK_STR(buf, ".hidden");
	CHECK_ERR(store_import_default_name("/", buf, sizeof(buf)), -EINVAL);
	CHECK_ERR(store_import_default_name("/a/..", buf, sizeof(buf)), -EINVAL);
	CHECK_ERR(store_import_default_name("/a b", buf, sizeof(buf)), -EINVAL);
	CHECK(strstr(sf_errmsg(-EINVAL), "--name"));
	CHECK_ERR(store_import_default_name("/x~y", buf, sizeof(buf)), -EINVAL);
	CHECK_ERR(store_import_default_name("/caf\xc3\xa9", buf, sizeof(buf)), -EINVAL);
}

TEST(import_rejects_bad_names_and_paths)
{
	struct import_options opt = {.name = "a b"};
	struct store *st;
	struct path_info *pi;

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	CHECK_ERR(store_import_path(st, "/tmp", &opt, &pi), -EINVAL);
	opt.name = "";
	CHECK_ERR(store_import_path(st, "/tmp", &opt, &pi), -EINVAL);
	CHECK_ERR(store_import_path(st, "", NULL, &pi), -EINVAL);
	CHECK_ERR(store_import_path(st, "/nonexistent/storefs-xyz", NULL, &pi), -ENOENT);
	store_free(st);
}

/* /proc files claim size 0 but have contents; /sys attributes claim 4096
 * bytes but have fewer: both look like files that change while read. */
TEST(import_detects_changing_files)
{
	static const char *const paths[] = {"/proc/self/status",
					    "/sys/kernel/mm/transparent_hugepage/enabled"};
	struct import_options opt = {.name = "x"};
	struct store *st;
	struct path_info *pi;

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int rc;

		if (access(paths[i], R_OK) != 0)
			continue;
		rc = store_import_path(st, paths[i], &opt, &pi);
		CHECK_EQ(rc, -EIO);
		CHECK(strstr(sf_errmsg(rc), "changed while being read"));
	}
	store_free(st);
}
