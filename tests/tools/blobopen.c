/* blobopen.c - times blob_service_open_read() on a local store, for the
 * verification cost benchmark (bench/verify-cost).
 *
 *	blobopen STORE DIGEST N [touch]
 *
 * Opens blob DIGEST (64 hex digits or "blake3-...") N times, each in a
 * freshly opened store (so no in-process cache helps) and prints the median
 * and minimum in microseconds. With "touch", the blob file's timestamps are
 * set anew before each open, so its recorded identity no longer matches and
 * the open hashes the whole file (the first-open cost without a record). */
#include "backends/local/local.h"
#include "common/err.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_RUNS 1000

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One timed open in a fresh store handle. */
static int time_open(const char *dir, const struct b3_digest *d, bool touch, double *us)
{
	char path[4096];
	struct blob_reader *r;
	struct store *st;
	double t0;
	int rc = local_store_open(dir, 0, &st);

	if (rc < 0)
		return rc;
	if (touch && (rc = local_blob_path(dir, d, path, sizeof(path))) == 0 &&
	    utimensat(AT_FDCWD, path, NULL, 0) < 0)
		rc = sf_err_errno(-errno, errno, "cannot touch '%s'", path);
	t0 = now_us();
	if (rc == 0)
		rc = blob_service_open_read(st->blobs, d, &r);
	*us = now_us() - t0;
	if (rc == 0)
		blob_reader_close(r);
	store_free(st);
	return rc;
}

int main(int argc, char **argv)
{
	double t[MAX_RUNS];
	struct b3_digest d;
	int n, rc = 0;

	if (argc < 4 || argc > 5 || (n = atoi(argv[3])) <= 0 || n > MAX_RUNS ||
	    (argc == 5 && strcmp(argv[4], "touch"))) {
		fprintf(stderr, "usage: blobopen STORE DIGEST N(1-%d) [touch]\n", MAX_RUNS);
		return 2;
	}
	if (b3_digest_from_hex(argv[2], strlen(argv[2]), &d) < 0 &&
	    b3_digest_from_text(argv[2], strlen(argv[2]), &d) < 0) {
		fprintf(stderr, "blobopen: '%s' is not a digest\n", argv[2]);
		return 2;
	}
	for (int i = 0; i < n && rc == 0; i++)
		rc = time_open(argv[1], &d, argc == 5, &t[i]);
	if (rc < 0) {
		fprintf(stderr, "blobopen: %s\n", sf_errmsg(rc));
		return 1;
	}
	qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
	printf("median_us %.1f min_us %.1f runs %d\n", t[n / 2], t[0], n);
	return 0;
}
