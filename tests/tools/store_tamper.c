/* store_tamper.c - damages a local store on purpose, for failure tests.
 *
 *	store_tamper delete-dir STORE DIGEST	 removes a Directory record
 *	store_tamper delete-blob STORE DIGEST	 removes a blob file
 *	store_tamper flip-blob STORE DIGEST OFFSET flips one byte of a blob file
 *	store_tamper blob-path STORE DIGEST	 prints a blob's file path
 *
 * DIGEST is "blake3-<base64>" or 64 hex digits. Exit 0 on success, 1 with a
 * message on failure. The store must not be open for writing meanwhile. */
#include "backends/local/local.h"
#include "common/err.h"

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

static int run(int argc, char **argv)
{
	char path[4096];
	struct b3_digest d;
	int rc;

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
	if (!strcmp(argv[1], "flip-blob"))
		return flip_blob(path, argv[4]);
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
