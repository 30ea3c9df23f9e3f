/* push.c - small files pushed into the kernel's page cache ahead of reads
 * (FUSE_NOTIFY_STORE), so that a walk that reads every file (tar, cp -r,
 * a build reading headers) does not wait for one READ round trip per file
 * (docs/fuse.md "Pushing small files").
 *
 * Why inode numbers: a directory's children are interned in name order
 * when it is populated, so on a first walk the files of one directory have
 * consecutive numbers, in the order readdir lists them. A READ at offset 0
 * of file N is taken as a sign that N+1, N+2, ... will be read next, like
 * the kernel's readahead takes a read of block N for N+1: one thread of
 * ours reads (and verifies) the next files and stores them in the kernel's
 * cache while the reader is busy with N. A walk that never reads (find,
 * du, ls -l) sends no READ and triggers nothing. */
#include "fs/fuse/fusedev_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Files looked at per window, and the size of the largest file pushed
 * (larger ones are read through the kernel's readahead as usual). */
#define PUSH_WINDOW   64
#define PUSH_FILE_MAX ((size_t)64 << 10)

/* The slot of the thread that has `ino` in hand, or NULL; p->mu held. */
static struct fusedev_push_slot *slot_of(struct fusedev_push *p, uint64_t ino)
{
	for (unsigned i = 0; i < FUSEDEV_PUSH_THREADS; i++)
		if (p->slots[i].ino == ino)
			return &p->slots[i];
	return NULL;
}

/* Stores the fetched bytes of slot `s` in the kernel's cache of its inode. */
static void push_store(struct fusedev_push *p, struct fusedev_push_slot *s)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	int rc;

	if (s->rc == -EIO || s->rc == -ENOMEM) {
		/* The READ that follows, if any, fails the same way and says so. */
		log_debug("push of inode %llu: %s", (unsigned long long)s->ino, sf_errmsg(s->rc));
		sf_err_clear();
	}
	if (s->rc || s->n == 0)
		return;
	bv.buf[0].size = s->n;
	bv.buf[0].mem = s->buf;
	/* -ENOENT: the kernel holds no inode of that number (never looked
	 * up, or forgotten); then it reads the file if it ever opens it. */
	rc = fuse_lowlevel_notify_store(p->dev->se, s->ino, 0, &bv, FUSE_BUF_NO_SPLICE);
	if (rc == 0) {
		fs_file_pushed(p->dev->fs, s->ino);
		fs_count(p->dev->fs, FS_COUNT_PUSH);
	}
}

/* Fetches s->ino into s->buf and pushes it; p->mu held, dropped meanwhile.
 * While the bytes are in buf a READ of that file may take them
 * (fusedev_push_reply()), so buf is reused only once those READs left. */
static void push_one(struct fusedev_push *p, struct fusedev_push_slot *s)
{
	size_t n = 0;
	int rc;

	s->fetching = true;
	pthread_mutex_unlock(&p->mu);
	rc = fs_file_fetch(p->dev->fs, s->ino, s->buf, PUSH_FILE_MAX, &n);
	pthread_mutex_lock(&p->mu);
	s->rc = rc;
	s->n = n;
	s->fetching = false;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->mu);
	push_store(p, s);
	pthread_mutex_lock(&p->mu);
	while (s->readers)
		pthread_cond_wait(&p->done, &p->mu);
	s->ino = 0;
}

static void *push_main(void *arg)
{
	struct fusedev_push_slot *s = arg;
	struct fusedev_push *p = s->owner;
	uint64_t ino;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->next >= p->end)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		ino = p->next++;
		if (slot_of(p, ino))
			continue; /* another thread is fetching it: one request per file */
		s->ino = ino;
		push_one(p, s);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void push_free(struct fusedev_push *p)
{
	for (unsigned i = 0; i < FUSEDEV_PUSH_THREADS; i++)
		free(p->slots[i].buf);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

int fusedev_push_start(struct fusedev *dev)
{
	struct fusedev_push *p = &dev->push;
	int rc = 0;

	*p = (struct fusedev_push){.dev = dev};
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->done, NULL);
	for (p->nthreads = 0; p->nthreads < FUSEDEV_PUSH_THREADS && rc == 0; p->nthreads++) {
		struct fusedev_push_slot *s = &p->slots[p->nthreads];

		*s = (struct fusedev_push_slot){.owner = p, .buf = malloc(PUSH_FILE_MAX)};
		rc = s->buf ? pthread_create(&p->threads[p->nthreads], NULL, push_main, s) : ENOMEM;
	}
	if (rc)
		p->nthreads--; /* the others push */
	p->running = p->nthreads > 0;
	if (!p->running)
		push_free(p);
	return p->running ? 0 : -rc;
}

void fusedev_push_stop(struct fusedev *dev)
{
	struct fusedev_push *p = &dev->push;

	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void fusedev_push_join(struct fusedev *dev)
{
	struct fusedev_push *p = &dev->push;

	if (!p->running)
		return;
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->running = false;
	push_free(p);
}

bool fusedev_push_reply(struct fusedev *dev, fuse_req_t req, uint64_t ino, uint64_t off,
			size_t size)
{
	struct fusedev_push *p = &dev->push;
	struct fusedev_push_slot *s;
	bool have;

	if (!p->running)
		return false;
	pthread_mutex_lock(&p->mu);
	while ((s = slot_of(p, ino)) && s->fetching)
		pthread_cond_wait(&p->done, &p->mu);
	have = s && s->rc == 0;
	if (have)
		s->readers++;
	pthread_mutex_unlock(&p->mu);
	if (!have)
		return false;
	/* buf holds the whole file (at most PUSH_FILE_MAX bytes) */
	if (off >= s->n)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, (const char *)s->buf + off,
			       size < s->n - off ? size : s->n - off);
	pthread_mutex_lock(&p->mu);
	s->readers--;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->mu);
	return true;
}

/* A READ at offset 0 of `ino`. A small file read by the daemon was not
 * pushed: not yet (the reader is ahead of us), or the kernel had no inode
 * for it when its turn came (its directory was not listed yet); either way
 * the window starts again after it. A large file is read by the kernel's
 * readahead: inside the window it only slides the window on. */
void fusedev_push_hint(struct fusedev *dev, uint64_t ino)
{
	struct fusedev_push *p = &dev->push;
	uint64_t size;
	bool small;

	if (!p->running || fs_file_length(dev->fs, ino, &size))
		return;
	small = size <= PUSH_FILE_MAX;
	pthread_mutex_lock(&p->mu);
	if (!small && ino >= p->lo && ino < p->hi) {
		if (p->hi - ino <= PUSH_WINDOW / 2)
			p->hi = p->end = ino + 1 + PUSH_WINDOW;
	} else {
		p->lo = ino;
		p->next = ino + 1;
		p->hi = p->end = ino + 1 + PUSH_WINDOW;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}
