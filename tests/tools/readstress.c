/* readstress.c - concurrent readers for stress tests: N threads read random
 * files of a mounted tree (whole, or a random range) for a bounded time and
 * compare every byte with the source tree.
 *
 *	readstress MOUNTED SOURCE SECONDS THREADS
 *
 * Prints "reads N bytes B errors E files F" and exits 0 only if E is 0 and
 * at least one read was made; each error is printed on stderr (up to 20). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK	   (256 * 1024)
#define MAX_ERRORS 20

static char **files; /* relative paths, set before the threads start */
static size_t nfiles, capfiles;
static size_t src_len;
static const char *mnt_root, *src_root;
static atomic_ullong n_reads, n_bytes, n_errors;
static struct timespec deadline;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (nfiles == capfiles) {
		size_t cap = capfiles ? 2 * capfiles : 1024;
		char **v = realloc(files, cap * sizeof(*v));

		if (!v)
			return -1;
		files = v, capfiles = cap;
	}
	files[nfiles] = strdup(path + src_len);
	return files[nfiles++] ? 0 : -1;
}

static void error(const char *rel, const char *what, int err)
{
	if (atomic_fetch_add(&n_errors, 1) < MAX_ERRORS)
		fprintf(stderr, "readstress: %s: %s%s%s\n", rel, what, err ? ": " : "",
			err ? strerror(err) : "");
}

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Reads [off, off+len) of one file from both trees and compares. */
static void check_range(const char *rel, int mfd, int sfd, off_t off, size_t len, char *a, char *b)
{
	while (len) {
		size_t n = len < CHUNK ? len : CHUNK;
		ssize_t got = pread_full(mfd, a, n, off), want = pread_full(sfd, b, n, off);

		if (got < 0) {
			error(rel, "read from the mount failed", errno);
			return;
		}
		if (want < 0 || got != want || memcmp(a, b, (size_t)got)) {
			error(rel, "contents differ from the source", 0);
			return;
		}
		atomic_fetch_add(&n_bytes, (unsigned long long)got);
		if ((size_t)got < n)
			return;
		off += (off_t)n;
		len -= n;
	}
}

static void read_one(unsigned *seed, char *a, char *b)
{
	const char *rel = files[(size_t)rand_r(seed) % nfiles];
	char mp[4096], sp[4096];
	struct stat st;
	int mfd, sfd;

	snprintf(mp, sizeof(mp), "%s%s", mnt_root, rel);
	snprintf(sp, sizeof(sp), "%s%s", src_root, rel);
	sfd = open(sp, O_RDONLY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) < 0) {
		error(rel, "cannot open the source", errno);
		return;
	}
	mfd = open(mp, O_RDONLY | O_CLOEXEC);
	if (mfd < 0) {
		error(rel, "cannot open through the mount", errno);
		close(sfd);
		return;
	}
	if (rand_r(seed) % 2 || st.st_size == 0) {
		check_range(rel, mfd, sfd, 0, (size_t)st.st_size + 1, a, b);
	} else {
		off_t off = (off_t)((size_t)rand_r(seed) % (size_t)st.st_size);

		check_range(rel, mfd, sfd, off, 1 + (size_t)rand_r(seed) % CHUNK, a, b);
	}
	atomic_fetch_add(&n_reads, 1);
	close(mfd);
	close(sfd);
}

static bool expired(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline.tv_sec ||
	       (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u ^ (unsigned)getpid();
	char *a = malloc(CHUNK), *b = malloc(CHUNK);

	while (a && b && !expired())
		read_one(&seed, a, b);
	if (!a || !b)
		error("(thread)", "out of memory", ENOMEM);
	free(a);
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tids[256];
	int threads;

	if (argc != 5 || atoi(argv[3]) <= 0 || (threads = atoi(argv[4])) <= 0 || threads > 256) {
		fprintf(stderr, "usage: readstress MOUNTED SOURCE SECONDS THREADS(1-256)\n");
		return 2;
	}
	mnt_root = argv[1], src_root = argv[2];
	src_len = strlen(src_root);
	if (nftw(src_root, collect, 64, FTW_PHYS) != 0 || nfiles == 0) {
		fprintf(stderr, "readstress: no files under '%s'\n", src_root);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += atoi(argv[3]);
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, reader, (void *)(uintptr_t)(i + 1)) != 0) {
			fprintf(stderr, "readstress: cannot start thread %d\n", i);
			return 1;
		}
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	printf("reads %llu bytes %llu errors %llu files %zu\n", (unsigned long long)n_reads,
	       (unsigned long long)n_bytes, (unsigned long long)n_errors, nfiles);
	return n_errors == 0 && n_reads > 0 ? 0 : 1;
}
