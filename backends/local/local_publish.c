/* local_publish.c - putting a finished blob file at blobs/ab/cd/<hex> and
 * making what was published durable (docs/store-format.md "Durability").
 *
 * Shard directories are created once per process (a bit per blobs/ab/cd),
 * not probed by a failing rename per blob. A file written through
 * O_TMPFILE has no name until it is linked into its shard, so a crash
 * leaves nothing in tmp/. Writeback of each file starts when it is
 * published (sync_file_range), so by the flush the disk has mostly caught
 * up; the flush then fsyncs exactly the files and directories this
 * process published into, instead of syncing the whole filesystem (other
 * processes' dirty pages included), from several threads at once. */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARDS (256 * 256)

struct local_publish {
	int rootfd;
	pthread_mutex_t lock; /* protects everything below */
	uint8_t shard_made[SHARDS / 8];
	uint8_t top_made[256 / 8];
	bool tmpfile_ok; /* O_TMPFILE works here and /proc/self/fd can link it */
	/* Published since the last sync: files, and directories that gained
	 * an entry (blobs/ab/cd as 2 bytes, blobs/ab as 1, blobs/ as 0). */
	struct b3_digest *files;
	size_t n, cap;
	uint8_t dirty_top[256 / 8];
	uint8_t dirty_shard[SHARDS / 8];
	bool dirty_blobs;
};

static bool bit_get(const uint8_t *v, unsigned i)
{
	return v[i / 8] >> (i % 8) & 1;
}

static void bit_set(uint8_t *v, unsigned i)
{
	v[i / 8] |= (uint8_t)(1u << (i % 8));
}

int local_publish_new(int rootfd, struct local_publish **out)
{
	struct local_publish *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->rootfd = rootfd;
	p->tmpfile_ok = access("/proc/self/fd", X_OK) == 0;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void local_publish_free(struct local_publish *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->files);
	free(p);
}

/* An unnamed file in blobs/ (same filesystem as every shard), or -1 with
 * errno when O_TMPFILE cannot be used: then the caller names one in tmp/. */
int local_publish_tmpfile(struct local_publish *p)
{
	int fd;

	if (!p->tmpfile_ok) {
		errno = EOPNOTSUPP;
		return -1;
	}
	fd = openat(p->rootfd, LOCAL_BLOBS_DIR, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		pthread_mutex_lock(&p->lock);
		p->tmpfile_ok = false; /* this filesystem has none: stop asking */
		pthread_mutex_unlock(&p->lock);
	}
	return fd;
}

static int mkdir_once(int rootfd, const char *dir)
{
	return mkdirat(rootfd, dir, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* Creates blobs/ab/ and blobs/ab/cd/ for `d` unless this process did. */
static int shard_make(struct local_publish *p, const struct b3_digest *d)
{
	unsigned top = d->bytes[0], shard = top << 8 | d->bytes[1];
	char dir[sizeof(LOCAL_BLOBS_DIR) + 8];
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (!bit_get(p->top_made, top)) {
		snprintf(dir, sizeof(dir), LOCAL_BLOBS_DIR "/%02x", top);
		rc = mkdir_once(p->rootfd, dir);
		if (rc == 0)
			bit_set(p->top_made, top), p->dirty_blobs = true;
	}
	if (rc == 0 && !bit_get(p->shard_made, shard)) {
		snprintf(dir, sizeof(dir), LOCAL_BLOBS_DIR "/%02x/%02x", top, d->bytes[1]);
		rc = mkdir_once(p->rootfd, dir);
		if (rc == 0)
			bit_set(p->shard_made, shard), bit_set(p->dirty_top, top);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Forgets the shard of `d` (someone removed it): the next link makes it. */
static void shard_forget(struct local_publish *p, const struct b3_digest *d)
{
	unsigned shard = (unsigned)d->bytes[0] << 8 | d->bytes[1];

	pthread_mutex_lock(&p->lock);
	p->shard_made[shard / 8] &= (uint8_t) ~(1u << (shard % 8));
	p->top_made[d->bytes[0] / 8] &= (uint8_t) ~(1u << (d->bytes[0] % 8));
	pthread_mutex_unlock(&p->lock);
}

/* Gives the unnamed file `fd` the name `rel` (never replacing one). */
static int link_tmpfile(int rootfd, int fd, const char *rel)
{
	char proc[32];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, rootfd, rel, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

/* Moves the named temp file `tmp` to `rel` unless a file is there, like
 * git's loose objects. */
static int rename_noreplace(int rootfd, const char *tmp, const char *rel)
{
	if (renameat2(rootfd, tmp, rootfd, rel, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* A filesystem without RENAME_NOREPLACE: a hard link does not
	 * replace either. */
	if (linkat(rootfd, tmp, rootfd, rel, 0) < 0)
		return -errno;
	/* Ignored: a temp file left behind is removed by a later open. */
	unlinkat(rootfd, tmp, 0);
	return 0;
}

int local_publish_noreplace(struct local_publish *p, int fd, const char *tmp,
			    const struct b3_digest *d, const char *rel)
{
	int rc = shard_make(p, d);

	for (int tries = 0; rc == 0 && tries < 2; tries++) {
		rc = tmp[0] ? rename_noreplace(p->rootfd, tmp, rel)
			    : link_tmpfile(p->rootfd, fd, rel);
		if (rc != -ENOENT)
			break;
		shard_forget(p, d);
		rc = shard_make(p, d);
	}
	return rc;
}

int local_publish_note(struct local_publish *p, const struct b3_digest *d)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct b3_digest *v = reallocarray(p->files, cap, sizeof(*v));

		if (v)
			p->files = v, p->cap = cap;
		rc = v ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		p->files[p->n++] = *d;
		bit_set(p->dirty_shard, (unsigned)d->bytes[0] << 8 | d->bytes[1]);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int fsync_at(int rootfd, const char *rel, int flags)
{
	int fd = openat(rootfd, rel, O_RDONLY | O_CLOEXEC | flags);
	int rc = fd < 0 || fsync(fd) < 0 ? -errno : 0;

	if (fd >= 0)
		close(fd);
	return rc;
}

/* One batch of fsyncs: names relative to the store root, all files or all
 * directories. Done by several threads at once because each fsync mostly
 * waits for the disk: concurrent ones share journal commits and cache
 * flushes instead of paying one each (docs/store-format.md "Durability"). */
struct sync_batch {
	int rootfd, flags;
	char (*rel)[LOCAL_BLOB_REL_MAX];
	size_t n;
	atomic_size_t next;
	atomic_int err;	      /* the first error, negative errno */
	atomic_size_t failed; /* its index */
};

static void *sync_worker(void *arg)
{
	struct sync_batch *b = arg;
	size_t i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->n) {
		int rc = fsync_at(b->rootfd, b->rel[i], b->flags);
		int none = 0;

		/* A blob gone: a collection deleted it since; nothing refers to it. */
		if (rc < 0 && !(rc == -ENOENT && !b->flags) &&
		    atomic_compare_exchange_strong(&b->err, &none, rc))
			atomic_store(&b->failed, i);
	}
	return NULL;
}

static unsigned sync_threads(size_t n)
{
	const char *e = getenv("STOREFS_SYNC_THREADS");
	unsigned t = e && *e ? (unsigned)strtoul(e, NULL, 10) : LOCAL_SYNC_THREADS;

	if (t < 1)
		t = 1;
	return n < t ? (unsigned)n : t;
}

static int sync_batch_run(struct sync_batch *b, const char *root)
{
	pthread_t tid[LOCAL_SYNC_THREADS_MAX];
	unsigned want = sync_threads(b->n), started = 0;

	if (want > LOCAL_SYNC_THREADS_MAX)
		want = LOCAL_SYNC_THREADS_MAX;
	/* This thread works too; a thread that cannot start leaves its
	 * share to the others. */
	while (started + 1 < want && pthread_create(&tid[started], NULL, sync_worker, b) == 0)
		started++;
	sync_worker(b);
	while (started)
		pthread_join(tid[--started], NULL);
	if (atomic_load(&b->err) == 0)
		return 0;
	return sf_err_sys(-atomic_load(&b->err), "cannot sync '%s/%s'", root,
			  b->rel[atomic_load(&b->failed)]);
}

/* The names to sync: the files, then the directories that gained a name
 * (blobs/ab/cd, blobs/ab, blobs). */
static int sync_names(struct local_publish *p, char (**out)[LOCAL_BLOB_REL_MAX], size_t *nf,
		      size_t *nd)
{
	size_t cap = p->n + 1, k = 0;
	char(*rel)[LOCAL_BLOB_REL_MAX];

	for (unsigned i = 0; i < SHARDS; i++)
		cap += bit_get(p->dirty_shard, i);
	for (unsigned i = 0; i < 256; i++)
		cap += bit_get(p->dirty_top, i);
	rel = calloc(cap, sizeof(*rel));
	if (!rel)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++)
		local_blob_relpath(&p->files[i], rel[k++]);
	*nf = k;
	for (unsigned i = 0; i < SHARDS; i++)
		if (bit_get(p->dirty_shard, i))
			snprintf(rel[k++], sizeof(*rel), LOCAL_BLOBS_DIR "/%02x/%02x", i >> 8,
				 i & 0xff);
	for (unsigned i = 0; i < 256; i++)
		if (bit_get(p->dirty_top, i))
			snprintf(rel[k++], sizeof(*rel), LOCAL_BLOBS_DIR "/%02x", i);
	if (p->dirty_blobs)
		snprintf(rel[k++], sizeof(*rel), "%s", LOCAL_BLOBS_DIR);
	*nd = k - *nf;
	*out = rel;
	return 0;
}

/* Nothing refers to these blobs until this returns, so the order among the
 * fsyncs does not matter, only that all of them succeeded. */
static int sync_all(struct local_publish *p, const char *root)
{
	struct sync_batch files = {.rootfd = p->rootfd}, dirs = {.rootfd = p->rootfd};
	int rc = sync_names(p, &files.rel, &files.n, &dirs.n);

	if (rc < 0)
		return rc;
	dirs.flags = O_DIRECTORY;
	dirs.rel = files.rel + files.n;
	rc = sync_batch_run(&files, root);
	if (rc == 0)
		rc = sync_batch_run(&dirs, root);
	free(files.rel);
	return rc;
}

int local_publish_sync(struct local_publish *p, const char *root)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = sync_all(p, root);
	if (rc == 0) {
		p->n = 0;
		memset(p->dirty_shard, 0, sizeof(p->dirty_shard));
		memset(p->dirty_top, 0, sizeof(p->dirty_top));
		p->dirty_blobs = false;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}
