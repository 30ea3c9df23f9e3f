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
 * processes' dirty pages included). */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <fcntl.h>
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

static int sync_files(struct local_publish *p, const char *root)
{
	char rel[LOCAL_BLOB_REL_MAX];

	for (size_t i = 0; i < p->n; i++) {
		int rc;

		local_blob_relpath(&p->files[i], rel);
		rc = fsync_at(p->rootfd, rel, 0);
		/* Gone: a collection deleted it since; nothing refers to it. */
		if (rc < 0 && rc != -ENOENT)
			return sf_err_sys(-rc, "cannot sync blob '%s/%s'", root, rel);
	}
	return 0;
}

static int sync_dirs(struct local_publish *p, const char *root)
{
	char dir[sizeof(LOCAL_BLOBS_DIR) + 8];
	int rc = 0;

	for (unsigned i = 0; i < SHARDS && rc == 0; i++) {
		if (!bit_get(p->dirty_shard, i))
			continue;
		snprintf(dir, sizeof(dir), LOCAL_BLOBS_DIR "/%02x/%02x", i >> 8, i & 0xff);
		rc = fsync_at(p->rootfd, dir, O_DIRECTORY);
	}
	for (unsigned i = 0; i < 256 && rc == 0; i++) {
		if (!bit_get(p->dirty_top, i))
			continue;
		snprintf(dir, sizeof(dir), LOCAL_BLOBS_DIR "/%02x", i);
		rc = fsync_at(p->rootfd, dir, O_DIRECTORY);
	}
	if (rc == 0 && p->dirty_blobs)
		rc = fsync_at(p->rootfd, LOCAL_BLOBS_DIR, O_DIRECTORY);
	return rc < 0 ? sf_err_sys(-rc, "cannot sync '%s/%s'", root, dir) : 0;
}

int local_publish_sync(struct local_publish *p, const char *root)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = sync_files(p, root);
	if (rc == 0)
		rc = sync_dirs(p, root);
	if (rc == 0) {
		p->n = 0;
		memset(p->dirty_shard, 0, sizeof(p->dirty_shard));
		memset(p->dirty_top, 0, sizeof(p->dirty_top));
		p->dirty_blobs = false;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}
