/* session.c - the /dev/fuse session: mount (through libfuse, or our own
 * for passthrough), the multithreaded loop, root invalidations, unmount. */
#include "fs/fuse/fusedev_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* The major:minor of the mount at `path` from mountinfo (the last one
 * mounted there); not stat(), which would be a request to ourselves. A
 * mountpoint with characters mountinfo escapes is not found. */
static int mount_devnum(const char *path, char *out, size_t size)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096], dev[32], mnt[PATH_MAX];
	int rc = -ENOENT;

	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, mnt) == 2 && !strcmp(mnt, path) &&
		    strlen(dev) < size) {
			strcpy(out, dev);
			rc = 0;
		}
	}
	fclose(fp);
	return rc;
}

static int write_number(const char *path, unsigned v)
{
	FILE *fp = fopen(path, "we");
	int rc;

	if (!fp)
		return -errno;
	rc = fprintf(fp, "%u\n", v) < 0 ? -EIO : 0;
	if (fclose(fp) && !rc)
		rc = -errno;
	return rc;
}

/* Sets the mount's readahead window, the size of sequential READs. Best
 * effort: said once (here) if it fails. */
static void set_read_ahead(const char *realmp, unsigned kb)
{
	char dev[32], path[96];
	int rc;

	if (!kb)
		return;
	rc = realmp ? mount_devnum(realmp, dev, sizeof(dev)) : -ENOENT;
	if (rc == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
		rc = write_number(path, kb);
	}
	if (rc)
		log_info("fuse: read_ahead_kb stays at the kernel's default: %s", strerror(-rc));
}

/* The INIT reply sets the readahead window to at most what the kernel
 * offered (its 128 KiB default), so it can only be raised after INIT: on
 * the first request, which the kernel sends only once INIT is done. */
void fusedev_read_ahead_once(struct fusedev *dev)
{
	if (!atomic_flag_test_and_set(&dev->ra_done))
		set_read_ahead(dev->realmp, dev->cfg->read_ahead_kb);
}

unsigned fusedev_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	n *= 2;
	return (unsigned)(n < 2 ? 2 : n > 16 ? 16 : n);
}

/* A new name at the root: drop the kernel's cached miss for it and the
 * root's cached listing. Runs on the root watch thread, never inside a
 * request, as libfuse requires. */
static void on_new_root(void *ctx, const uint8_t *name, size_t len)
{
	struct fusedev *dev = ctx;
	int rc;

	rc = fuse_lowlevel_notify_inval_entry(dev->se, FUSE_ROOT_ID, (const char *)name, len);
	if (rc && rc != -ENOENT)
		log_debug("cannot invalidate root entry '%.*s': %s", (int)len, name, strerror(-rc));
	rc = fuse_lowlevel_notify_inval_inode(dev->se, FUSE_ROOT_ID, 0, 0);
	if (rc && rc != -ENOENT)
		log_debug("cannot invalidate the root listing: %s", strerror(-rc));
}

/* STOREFS_FUSE_PUSH=0 turns the pusher off (measurements, docs/fuse.md). */
static bool push_wanted(void)
{
	const char *v = getenv("STOREFS_FUSE_PUSH");

	return !v || strcmp(v, "0") != 0;
}

static int session_create(struct fusedev *dev, struct fuse_session **out)
{
	char opts[128];
	char *argv[4] = {"storefs", "-o", opts, NULL};
	struct fuse_args args;
	int argc = 3;

	snprintf(opts, sizeof(opts), "ro,default_permissions,fsname=storefs,subtype=storefs%s",
		 dev->cfg->allow_other ? ",allow_other" : "");
	if (dev->cfg->debug)
		argv[argc++] = "-d";
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	*out = fuse_session_new(&args, &fusedev_ops, sizeof(fusedev_ops), dev);
	fuse_opt_free_args(&args);
	if (!*out)
		return sf_err(-EIO, "cannot create a FUSE session");
	return 0;
}

/* The session a stop signal ends, and the thread that waits in
 * fuse_session_loop_mt(). One session per process. */
static struct fuse_session *stop_se;
static pthread_t stop_waiter;

/* libfuse's handler only marks the session exited; the loop notices when
 * its waiting thread's sem_wait() is interrupted. libfuse's workers block
 * the stop signals (HUP, INT, QUIT, TERM), and the waiting thread blocks
 * them while it starts workers: a stop signal then goes to any other
 * thread that takes it, and a backend's own threads (gRPC's executors and
 * timers) do. Marked but never woken,
 * the mount stayed up (t63's SIGTERM right after a grpc+http:// mount hung
 * once in two runs). So the signal is passed on to the waiting thread, to
 * be taken when it unblocks. pthread_kill() and pthread_self() are
 * async-signal-safe. */
static void on_stop_signal(int sig)
{
	fuse_session_exit(stop_se);
	if (!pthread_equal(pthread_self(), stop_waiter))
		pthread_kill(stop_waiter, sig);
}

static void stop_signals_remove(struct fuse_session *se)
{
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	fuse_remove_signal_handlers(se);
}

static int stop_signals_set(struct fuse_session *se)
{
	static const int sigs[] = {SIGHUP, SIGINT, SIGTERM};
	struct sigaction sa = {.sa_handler = on_stop_signal};

	/* libfuse's for SIGPIPE (ignored); ours for the stop signals. */
	if (fuse_set_signal_handlers(se))
		return -EIO;
	stop_se = se;
	stop_waiter = pthread_self();
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* An ignored SIGHUP (nohup) stays ignored, as libfuse leaves it. */
		if (sigs[i] == SIGHUP && sigaction(SIGHUP, NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		if (sigaction(sigs[i], &sa, NULL) < 0) {
			int rc = -errno;

			stop_signals_remove(se);
			return rc;
		}
	}
	return 0;
}

static int session_loop(struct fusedev *dev)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	unsigned threads = dev->cfg->threads ? dev->cfg->threads : fusedev_default_threads();
	int rc;

	if (!lc)
		return -ENOMEM;
	/* Also with the passthrough custom io: libfuse clones /dev/fuse per
	 * thread and calls the hooks with each clone's fd; the backing
	 * ioctls go to the session's own fd, of the same connection. */
	fuse_loop_cfg_set_clone_fd(lc, 1);
	fuse_loop_cfg_set_max_threads(lc, threads);
	fuse_loop_cfg_set_idle_threads(lc, threads);
	rc = fuse_session_loop_mt(dev->se, lc);
	fuse_loop_cfg_destroy(lc);
	/* > 0: the signal that ended the loop. */
	if (rc < 0)
		return sf_err(rc, "the FUSE session failed: %s", strerror(-rc));
	return 0;
}

/* Mounts: by itself with passthrough hooks in passthrough mode (falling
 * back to libfuse's mount when that is not allowed), else via libfuse. */
static int session_mount(struct fusedev *dev)
{
	int rc;

	if (dev->cfg->open_mode == FUSEDEV_OPEN_PASSTHROUGH) {
		rc = fusedev_pt_mount(dev);
		if (rc == 0)
			return 0;
		log_warn("fuse: cannot mount for passthrough (%s); files are read through the "
			 "daemon",
			 strerror(-rc));
	}
	if (fuse_session_mount(dev->se, dev->cfg->mountpoint))
		return sf_err(-EIO, "cannot mount on '%s'", dev->cfg->mountpoint);
	if (fusedev_hook_init(dev))
		log_warn("fuse: cannot hook the INIT reply; lookups in one directory run one at a "
			 "time");
	return 0;
}

/* Our own mount: unmount unless it is gone already (then the device
 * reports an error, as libfuse checks too). */
static void session_unmount(struct fusedev *dev)
{
	struct pollfd p = {.fd = dev->pt.devfd, .events = POLLIN};

	if (dev->pt.devfd < 0) {
		fuse_session_unmount(dev->se);
		return;
	}
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
		return;
	if (umount2(dev->cfg->mountpoint, MNT_DETACH) < 0)
		log_warn("cannot unmount '%s': %s", dev->cfg->mountpoint, strerror(errno));
}

int fusedev_serve(struct fs *fs, const struct fusedev_config *cfg)
{
	struct fusedev dev = {.fs = fs, .cfg = cfg, .ra_done = ATOMIC_FLAG_INIT};
	int rc;

	/* Now: after mounting, resolving the path would ask the mount. */
	dev.realmp = realpath(cfg->mountpoint, NULL);

	fusedev_pt_init(&dev.pt);
	rc = session_create(&dev, &dev.se);
	if (rc)
		goto out_free;
	/* Stopping on SIGINT is promised, also where a shell started us as a
	 * background job with SIGINT ignored: our handlers replace that. */
	if (stop_signals_set(dev.se)) {
		rc = sf_err(-EIO, "cannot install signal handlers");
		goto out_destroy;
	}
	rc = session_mount(&dev);
	if (rc)
		goto out_signals;
	rc = fs_watch_root(fs, on_new_root, &dev);
	if (rc)
		log_info("new store paths will not appear until remount: %s", sf_errmsg(rc));
	log_info("mounted on '%s'", cfg->mountpoint);
	if (cfg->mounted)
		cfg->mounted(cfg->mounted_ctx);
	if (cfg->open_mode != FUSEDEV_OPEN_PASSTHROUGH && push_wanted() && fusedev_push_start(&dev))
		log_info("fuse: small files are not pushed ahead of reads");
	rc = session_loop(&dev);
	fs_unwatch_root(fs);
	fusedev_push_stop(&dev);
	session_unmount(&dev);
	fusedev_push_join(&dev);
out_signals:
	stop_signals_remove(dev.se);
out_destroy:
	fuse_session_destroy(dev.se);
out_free:
	fusedev_pt_release_all(&dev.pt);
	free(dev.realmp);
	return rc;
}
