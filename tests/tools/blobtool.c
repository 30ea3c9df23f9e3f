/* blobtool.c - the blob service of any store URL from the shell, for the
 * integration tests of backends that hold blobs only (t17-s3.sh):
 *
 *	blobtool URL put FILE		stores FILE; prints "<blake3-...> created|present"
 *	blobtool URL get DIGEST		writes the blob to stdout
 *	blobtool URL stat DIGEST	prints the blob's size
 *
 * DIGEST is "blake3-<base64>" or 64 hex digits. Exit status 0, 1 on an
 * error (one line on stderr), 2 on a usage error. */
#include "backends/registry.h"
#include "common/err.h"
#include "common/io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_digest(const char *s, struct b3_digest *d)
{
	int rc = strlen(s) == B3_HEX_LEN ? b3_digest_from_hex(s, B3_HEX_LEN, d)
					 : b3_digest_from_text(s, strlen(s), d);

	return rc < 0 ? sf_err(-EINVAL, "'%s' is not a BLAKE3 digest", s) : 0;
}

static int put(struct store *st, const char *file)
{
	char buf[65536], text[B3_TEXT_LEN + 1];
	struct blob_writer *w;
	struct b3_digest d;
	bool created = false;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s'", file);
	rc = blob_service_open_write(st->blobs, &w);
	while (rc == 0 && (n = read_retry(fd, buf, sizeof(buf))) != 0)
		rc = n < 0 ? sf_err_sys((int)-n, "cannot read '%s'", file)
			   : blob_writer_write(w, buf, (size_t)n);
	close(fd);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	rc = blob_writer_commit_new(w, NULL, &d, &created);
	if (rc == 0) {
		b3_digest_to_text(&d, text);
		printf("%s %s\n", text, created ? "created" : "present");
	}
	return rc;
}

static int get(struct store *st, const struct b3_digest *d)
{
	char buf[65536];
	struct blob_reader *r = NULL;
	uint64_t off = 0;
	size_t n = 1;
	int rc = blob_service_open_read(st->blobs, d, &r);

	while (rc == 0 && n) {
		rc = blob_reader_pread(r, buf, sizeof(buf), off, &n);
		if (rc == 0 && write_all(STDOUT_FILENO, buf, n) < 0)
			rc = sf_err_sys(errno, "cannot write to stdout");
		off += n;
	}
	blob_reader_close(r);
	return rc;
}

static int run(const char *url, const char *cmd, const char *arg)
{
	struct store *st = NULL;
	struct b3_digest d;
	uint64_t size;
	int rc = store_open(url, STORE_OPEN_CREATE, &st);

	if (rc == 0 && !st->blobs)
		rc = sf_err(-EINVAL, "store '%s' has no blob service", url);
	if (rc == 0 && !strcmp(cmd, "put"))
		rc = put(st, arg);
	else if (rc == 0 && (rc = parse_digest(arg, &d)) == 0 && !strcmp(cmd, "get"))
		rc = get(st, &d);
	else if (rc == 0 && (rc = blob_service_stat(st->blobs, &d, &size)) == 0)
		printf("%llu\n", (unsigned long long)size);
	store_free(st);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc != 4 ||
	    (strcmp(argv[2], "put") && strcmp(argv[2], "get") && strcmp(argv[2], "stat"))) {
		fprintf(stderr, "usage: blobtool URL put FILE | get DIGEST | stat DIGEST\n");
		return 2;
	}
	rc = run(argv[1], argv[2], argv[3]);
	if (rc < 0) {
		fprintf(stderr, "blobtool: %s\n", sf_errmsg(rc));
		return 1;
	}
	return 0;
}
