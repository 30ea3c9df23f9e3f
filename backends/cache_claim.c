/* cache_claim.c - one fetch per digest into the cache (docs/services.md
 * "The cache"): the threads of a process through its table of digests in
 * flight, the processes sharing a cache directory (mounts on one host)
 * through a lock on one byte per digest of DIR/fetch.lock. The locks are
 * open file description locks (F_OFD_SETLK): the kernel drops them when
 * the process dies, so a crash leaves no claim behind. */
#include "backends/cache_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a claim waits for another process's fetch of the same digest
 * before fetching itself: a fetch has its own deadline (docs/limits.md),
 * so only a stopped process holds a claim longer; waiting for it would
 * hang the read. */
#define HOST_WAIT_MS 60000

static bool inflight_has(const struct inflight *f, const struct b3_digest *d)
{
	for (size_t i = 0; i < f->n; i++)
		if (b3_digest_eq(&f->v[i], d))
			return true;
	return false;
}

static int inflight_add(struct inflight *f, const struct b3_digest *d)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct b3_digest *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = *d;
	return 0;
}

static void inflight_remove(struct inflight *f, const struct b3_digest *d)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		if (b3_digest_eq(&f->v[i], d)) {
			f->v[i] = f->v[--f->n];
			break;
		}
	}
	pthread_cond_broadcast(&f->done);
	pthread_mutex_unlock(&f->lock);
}

/* The byte of fetch.lock that stands for `d` (62 bits of it: the lock's
 * end must stay below the largest offset). */
static off_t lock_byte(const struct b3_digest *d)
{
	uint64_t v;

	memcpy(&v, d->bytes, sizeof(v));
	return (off_t)(v >> 2);
}

static int host_lock_once(struct cached *c, const struct b3_digest *d, short type)
{
	struct flock fl = {
	    .l_type = type, .l_whence = SEEK_SET, .l_start = lock_byte(d), .l_len = 1};

	return fcntl(c->lock_fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* Takes `d`'s byte; without `wait`, -EAGAIN if another process holds it.
 * A lock that cannot be had otherwise only costs the collapse: 0. */
static int host_lock(struct cached *c, const struct b3_digest *d, bool wait)
{
	unsigned ms = 1, waited = 0;
	int rc;

	if (c->lock_fd < 0)
		return 0;
	while ((rc = host_lock_once(c, d, F_WRLCK)) == -EAGAIN || rc == -EACCES || rc == -EINTR) {
		if (!wait)
			return -EAGAIN;
		if (waited >= HOST_WAIT_MS)
			return 0;
		usleep(ms * 1000);
		waited += ms;
		ms = ms < 32 ? ms * 2 : ms;
	}
	return 0;
}

int cache_fetch_claim(struct cached *c, const struct b3_digest *d, bool *mine)
{
	struct inflight *f = &c->fetching;
	bool waited = false;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	while (inflight_has(f, d)) {
		pthread_cond_wait(&f->done, &f->lock);
		waited = true;
	}
	if (!waited)
		rc = inflight_add(f, d);
	pthread_mutex_unlock(&f->lock);
	*mine = !waited;
	if (rc == 0 && *mine)
		host_lock(c, d, true);
	return rc;
}

bool cache_fetch_try_claim(struct cached *c, const struct b3_digest *d)
{
	struct inflight *f = &c->fetching;
	bool mine;

	pthread_mutex_lock(&f->lock);
	mine = !inflight_has(f, d) && inflight_add(f, d) == 0;
	pthread_mutex_unlock(&f->lock);
	if (mine && host_lock(c, d, false) < 0) {
		inflight_remove(f, d);
		mine = false;
	}
	return mine;
}

void cache_fetch_done(struct cached *c, const struct b3_digest *d)
{
	if (c->lock_fd >= 0)
		host_lock_once(c, d, F_UNLCK);
	inflight_remove(&c->fetching, d);
}

void cache_claims_init(struct cached *c)
{
	pthread_mutex_init(&c->fetching.lock, NULL);
	pthread_cond_init(&c->fetching.done, NULL);
	c->lock_fd = -1;
}

void cache_claims_release(struct cached *c)
{
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->fetching.v);
	pthread_mutex_destroy(&c->fetching.lock);
	pthread_cond_destroy(&c->fetching.done);
}

void store_cached_share(struct store *st, const char *dir)
{
	struct cached *c = (struct cached *)st;
	char path[4096];
	int fd = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/fetch.lock", dir) >= sizeof(path))
		errno = ENAMETOOLONG;
	else
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		log_msg(LOG_WARN,
			"cannot open '%s/fetch.lock' (%s): mounts sharing the cache may fetch a "
			"blob each",
			dir, strerror(errno));
	c->lock_fd = fd;
}
