/* fusedev_internal.h - what the three parts of the /dev/fuse transport
 * share: the session (session.c: mount, loop, unmount), the operations
 * table (ops.c: requests -> fs_*() -> one reply) and the passthrough shim
 * (passthrough.c: backing files handed to the kernel). */
#ifndef STOREFS_FUSEDEV_INTERNAL_H
#define STOREFS_FUSEDEV_INTERNAL_H

#include "fs/fuse/fuse_transport.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FUSEDEV_PT_BUCKETS 1024

struct fusedev_pt_backing;

/* The passthrough shim's state (passthrough.c); inactive while devfd < 0. */
struct fusedev_pt {
	int devfd;		/* our own /dev/fuse descriptor, or -1 */
	bool force_fail;	/* STOREFS_TEST_PASSTHROUGH_FAIL */
	_Atomic bool init_seen; /* the INIT request went by */
	_Atomic uint64_t init_unique;
	_Atomic bool init_patched;   /* the INIT reply went by */
	_Atomic bool dirops_offered; /* the kernel offered parallel dirops */
	_Atomic bool offered;	     /* the kernel offered passthrough in INIT */
	_Atomic bool on;	     /* ... and the INIT reply accepted it */
	atomic_flag told_refused;    /* "said so once in the log" */
	atomic_flag told_no_fd;
	pthread_mutex_t mu;
	struct fusedev_pt_backing *backing[FUSEDEV_PT_BUCKETS]; /* protected by mu */
};

/* Pushing threads: their blocking reads of the store keep a queue deeper
 * than the one READ the reader waits for: the disk's for a local store,
 * requests in flight for a remote one (docs/fuse.md "Pushing small
 * files" says what 16 bought over S3). */
#define FUSEDEV_PUSH_THREADS 16

struct fusedev_push;

/* What one pushing thread is fetching; protected by the pusher's mu. */
struct fusedev_push_slot {
	struct fusedev_push *owner;
	uint64_t ino;	  /* 0: none */
	bool fetching;	  /* its bytes are not in buf yet */
	int rc;		  /* the fetch's result, once !fetching */
	size_t n;	  /* bytes in buf, once !fetching */
	unsigned readers; /* READs copying buf: it stays until they are done */
	uint8_t *buf;
};

/* The pusher of small files (push.c); inactive unless running. */
struct fusedev_push {
	struct fusedev *dev;
	pthread_t threads[FUSEDEV_PUSH_THREADS];
	struct fusedev_push_slot slots[FUSEDEV_PUSH_THREADS];
	unsigned nthreads;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* work for the threads */
	pthread_cond_t done; /* a slot's fetch ended, or its readers left */
	/* protected by mu: the window [lo, hi) last asked for; the inodes
	 * [next, end) are still to push */
	bool stop;
	uint64_t lo, hi, next, end;
};

struct fusedev {
	struct fs *fs;
	const struct fusedev_config *cfg;
	struct fuse_session *se;
	bool zero_open, zero_opendir; /* set once in init */
	struct fusedev_pt pt;
	struct fusedev_push push;

	char *realmp;	     /* the mountpoint's real path, or NULL */
	atomic_flag ra_done; /* read_ahead_kb was set (or tried) */
};

/* --- ops.c --- */

extern const struct fuse_lowlevel_ops fusedev_ops;

/* --- session.c --- */

/* Raises the mount's readahead window to cfg->read_ahead_kb once, on the
 * first request after INIT (the INIT reply caps it at the kernel's
 * offer). Best effort. */
void fusedev_read_ahead_once(struct fusedev *dev);

/* --- push.c --- */

/* Starts the pusher thread. 0 or a negative errno (then nothing is
 * pushed and every other function here is a no-op). */
int fusedev_push_start(struct fusedev *dev);
/* Tells the thread to stop (before unmounting: a push may wait for a READ
 * that only the session loop or the unmount's abort ends). */
void fusedev_push_stop(struct fusedev *dev);
/* Waits for it and frees its state (after unmounting). */
void fusedev_push_join(struct fusedev *dev);
/* A READ at offset 0 of file `ino` arrived. */
void fusedev_push_hint(struct fusedev *dev, uint64_t ino);
/* A READ of up to `size` bytes at `off` of `ino`: if a pushing thread is
 * fetching that file or holds its bytes, waits for them and replies with
 * them (true), so that a file is fetched once even when the reader caught
 * up with the pusher, or the kernel asks for it in several READs while it
 * is being pushed; false if no thread has it, or its fetch failed (the
 * caller serves the READ and meets the failure itself). */
bool fusedev_push_reply(struct fusedev *dev, fuse_req_t req, uint64_t ino, uint64_t off,
			size_t size);

/* --- passthrough.c --- */

void fusedev_pt_init(struct fusedev_pt *pt);
/* Frees the backing records left at the end (the kernel drops the ids
 * with the connection anyway). */
void fusedev_pt_release_all(struct fusedev_pt *pt);
/* Mounts cfg->mountpoint on a /dev/fuse descriptor of our own and puts the
 * shim between libfuse and it. 0, or a negative errno (then nothing is
 * mounted and the caller mounts through libfuse). */
int fusedev_pt_mount(struct fusedev *dev);
/* Puts the shim's hooks on libfuse's own descriptor after
 * fuse_session_mount() (no passthrough then), so that the INIT reply
 * carries FUSE_PARALLEL_DIROPS (docs/limits.md "Parallel lookups"). 0 or
 * a negative errno. */
int fusedev_hook_init(struct fusedev *dev);
/* Logs what INIT settled about passthrough (called from init). */
void fusedev_pt_log_init(struct fusedev *dev);
/* Answers an OPEN of `f` by passthrough if it can: true if it replied
 * (and took over `f`'s reference), false if the caller must serve the
 * open itself. */
bool fusedev_pt_open(fuse_req_t req, fuse_ino_t ino, struct fs_file *f, struct fuse_file_info *fi);
/* True if fi->fh is a passthrough handle. */
bool fusedev_pt_is_handle(uint64_t fh);
/* The RELEASE of a passthrough handle of `ino`. */
void fusedev_pt_release(struct fusedev *dev, fuse_ino_t ino);

#endif
