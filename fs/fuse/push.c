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

static void push_one(struct fusedev_push *p, uint8_t *buf, uint64_t ino)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	size_t n = 0;
	int rc = fs_file_fetch(p->dev->fs, ino, buf, PUSH_FILE_MAX, &n);

	if (rc == -EIO || rc == -ENOMEM) {
		/* The READ that follows, if any, fails the same way and says so. */
		log_debug("push of inode %llu: %s", (unsigned long long)ino, sf_errmsg(rc));
		sf_err_clear();
	}
	if (rc || n == 0)
		return;
	bv.buf[0].size = n;
	bv.buf[0].mem = buf;
	/* -ENOENT: the kernel holds no inode of that number (never looked
	 * up, or forgotten); then it reads the file if it ever opens it. */
	rc = fuse_lowlevel_notify_store(p->dev->se, ino, 0, &bv, FUSE_BUF_NO_SPLICE);
	if (rc == 0) {
		fs_file_pushed(p->dev->fs, ino);
		fs_count(p->dev->fs, FS_COUNT_PUSH);
	}
}

static void *push_main(void *arg)
{
	struct fusedev_push *p = arg;
	uint8_t *buf = malloc(PUSH_FILE_MAX);
	uint64_t ino;

	if (!buf)
		return NULL; /* the other threads push */
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->next >= p->end)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		ino = p->next++;
		pthread_mutex_unlock(&p->mu);
		push_one(p, buf, ino);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	free(buf);
	return NULL;
}

int fusedev_push_start(struct fusedev *dev)
{
	struct fusedev_push *p = &dev->push;
	int rc = 0;

	p->dev = dev;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (p->nthreads = 0; p->nthreads < FUSEDEV_PUSH_THREADS && rc == 0; p->nthreads++)
		rc = pthread_create(&p->threads[p->nthreads], NULL, push_main, p);
	if (rc)
		p->nthreads--;
	p->running = p->nthreads > 0;
	if (!p->running) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
	}
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
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
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
