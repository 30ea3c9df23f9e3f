/* statlat.c - measures lstat() latency under a directory tree, warm (cached) or cold. */
#include "common/err.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct path_list {
	char **paths; /* ROOT/relative, owned */
	size_t len, cap;
};

static void list_free(struct path_list *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->paths[i]);
	free(l->paths);
}

static int list_push(struct path_list *l, const char *root, const char *rel)
{
	char **np;
	char *p;

	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		np = realloc(l->paths, l->cap * sizeof(*np));
		if (!np)
			return sf_err(-ENOMEM, "no memory for %zu paths", l->cap);
		l->paths = np;
	}
	if (asprintf(&p, "%s/%s", root, rel) < 0)
		return sf_err(-ENOMEM, "no memory for path '%s'", rel);
	l->paths[l->len++] = p;
	return 0;
}

/* Reads relative paths, one a line, from `file` and prefixes them with `root`. */
static int list_read(struct path_list *l, const char *file, const char *root)
{
	char line[PATH_MAX];
	FILE *f = fopen(file, "r");
	size_t n;
	int rc = 0;

	if (!f)
		return sf_err_errno(-ENOENT, errno, "cannot open '%s'", file);
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n)
			rc = list_push(l, root, line);
	}
	fclose(f);
	if (rc == 0 && l->len == 0)
		rc = sf_err(-EINVAL, "no paths in '%s'", file);
	return rc;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Times one lstat() of `path` into *ns. */
static int stat_timed(const char *path, uint64_t *ns)
{
	struct stat st;
	uint64_t t0 = now_ns();

	if (lstat(path, &st) < 0)
		return sf_err_errno(-ENOENT, errno, "cannot stat '%s'", path);
	*ns = now_ns() - t0;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void report(const char *mode, uint64_t *ns, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("statlat %s count=%zu median_ns=%llu mean_ns=%llu p90_ns=%llu\n", mode, n,
	       (unsigned long long)ns[n / 2], (unsigned long long)(sum / n),
	       (unsigned long long)ns[n * 9 / 10]);
}

/* Cold: every path once, in list order; the first touch of each name reaches the daemon. */
static int run_cold(const struct path_list *l, uint64_t *ns)
{
	int rc;

	for (size_t i = 0; i < l->len; i++) {
		rc = stat_timed(l->paths[i], &ns[i]);
		if (rc < 0)
			return rc;
	}
	report("cold", ns, l->len);
	return 0;
}

/* Warm: `count` paths are stat'ed once untimed, then `rounds` times timed. */
static int run_warm(const struct path_list *l, size_t count, size_t rounds, uint64_t *ns)
{
	uint64_t dummy;
	int rc;

	for (size_t i = 0; i < count; i++) {
		rc = stat_timed(l->paths[i], &dummy);
		if (rc < 0)
			return rc;
	}
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < count; i++) {
			rc = stat_timed(l->paths[i], &ns[r * count + i]);
			if (rc < 0)
				return rc;
		}
	}
	report("warm", ns, count * rounds);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: statlat cold LIST ROOT\n"
			"       statlat warm LIST ROOT [N [ROUNDS]]\n"
			"  LIST holds paths relative to ROOT, one a line. cold: lstat each once\n"
			"  (run it right after a fresh mount). warm: lstat the first N (default\n"
			"  1000) once untimed, then ROUNDS (default 100) more times timed.\n"
			"  Prints: statlat MODE count=.. median_ns=.. mean_ns=.. p90_ns=..\n");
	return 2;
}

static int run(const char *mode, const struct path_list *l, size_t count, size_t rounds)
{
	uint64_t *ns;
	int rc;

	if (count > l->len)
		count = l->len;
	ns = calloc(strcmp(mode, "cold") == 0 ? l->len : count * rounds, sizeof(*ns));
	if (!ns)
		return sf_err(-ENOMEM, "no memory for the timings");
	if (strcmp(mode, "cold") == 0)
		rc = run_cold(l, ns);
	else
		rc = run_warm(l, count, rounds, ns);
	free(ns);
	return rc;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s || v == 0 || v > 100000000)
		return sf_err(-EINVAL, "'%s' is not a count between 1 and 100000000", s);
	*out = (size_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct path_list l = {0};
	size_t count = 1000, rounds = 100;
	int rc = 0;

	if (argc < 4 || argc > 6)
		return usage();
	if (strcmp(argv[1], "cold") != 0 && strcmp(argv[1], "warm") != 0)
		return usage();
	if (argc > 4)
		rc = parse_size(argv[4], &count);
	if (rc == 0 && argc > 5)
		rc = parse_size(argv[5], &rounds);
	if (rc == 0)
		rc = list_read(&l, argv[2], argv[3]);
	if (rc == 0 && count * rounds > 100000000)
		rc = sf_err(-EINVAL, "N x ROUNDS is over 100000000");
	if (rc == 0)
		rc = run(argv[1], &l, count, rounds);
	list_free(&l);
	if (rc < 0) {
		fprintf(stderr, "statlat: %s\n", sf_errmsg(rc));
		return 1;
	}
	return 0;
}
