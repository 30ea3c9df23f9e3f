/* fuse_transport.h - serves a struct fs over /dev/fuse with the libfuse3
 * lowlevel API: mounts, runs a multithreaded session loop, unmounts.
 *
 * The session asks the kernel to cache everything (the data never
 * changes): infinite entry and attribute timeouts, cached negative
 * entries, cached symlinks, always-on readdirplus, zero-message opendir
 * (the kernel then caches listings) and, in FUSEDEV_OPEN_KERNEL mode,
 * zero-message open: reads then arrive without a file handle and are
 * served from the filesystem's bounded cache of open blobs. Reads of blobs
 * that are one local file are answered from that descriptor (splice). New
 * root names invalidate the root's cached entry and listing.
 *
 * In FUSEDEV_OPEN_PASSTHROUGH mode the daemon mounts by itself (mount(2),
 * root only) and patches libfuse 3.14's INIT and OPEN replies through
 * fuse_session_custom_io() so that opens of blobs that are one local file
 * hand that file to the kernel (FUSE passthrough, Linux 6.9+): their reads
 * and mmaps never reach the daemon. Whatever cannot be passed through (no
 * root, kernel without passthrough, refused ioctl, blob without a local
 * file) is served like FUSEDEV_OPEN_DAEMON, and said once in the log. The
 * environment variable STOREFS_TEST_PASSTHROUGH_FAIL makes every backing
 * ioctl fail with EPERM (tests of that fallback). */
#ifndef STOREFS_FUSE_TRANSPORT_H
#define STOREFS_FUSE_TRANSPORT_H

#include "fs/fs.h"

#include <stdbool.h>

enum fusedev_open_mode {
	/* No OPEN/RELEASE round trips when the kernel supports it (falls
	 * back to FUSEDEV_OPEN_DAEMON otherwise). */
	FUSEDEV_OPEN_KERNEL = 0,
	/* Every open(2) reaches the daemon, which replies keep_cache; the
	 * basis for passthrough of local blob files. */
	FUSEDEV_OPEN_DAEMON = 1,
	/* FUSEDEV_OPEN_DAEMON plus passthrough of local blob files. */
	FUSEDEV_OPEN_PASSTHROUGH = 2,
};

struct fusedev_config {
	const char *mountpoint; /* an existing directory */
	bool allow_other;
	unsigned threads; /* worker threads at most; 0: twice the cores, 2..16 */
	enum fusedev_open_mode open_mode;
	bool debug; /* libfuse's request trace on stderr */
	/* The mount's bdi read_ahead_kb (the size of sequential READs); 0
	 * keeps the kernel's default (128). Best effort. */
	unsigned read_ahead_kb;
	/* How long the kernel may remember that a name is missing at the
	 * root: forever unless root_negative_finite (a local store tells us
	 * about new names; a substituter's cache does not). */
	bool root_negative_finite;
	unsigned root_negative_ttl; /* seconds */
	/* Called once the mount is up and about to be served (a readiness
	 * line, a service manager's notification); may be NULL. */
	void (*mounted)(void *ctx);
	void *mounted_ctx;
};

/* The default worker thread count for this machine. */
unsigned fusedev_default_threads(void);

/* Mounts `fs` read-only at cfg->mountpoint and serves it until the mount
 * is unmounted from outside (umount, fusermount3 -u) or SIGINT, SIGTERM or
 * SIGHUP arrives (then it unmounts itself). Returns 0 in both cases, or a
 * negative errno with a message if the session cannot be set up or fails.
 * Installs signal handlers for the duration; one call at a time per
 * process. */
int fusedev_serve(struct fs *fs, const struct fusedev_config *cfg);

#endif
