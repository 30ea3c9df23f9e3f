/* cmd_mount.c - `storefs mount`: serve the store read-only over FUSE. */
#include "cli/cli.h"
#include "cli/cli_fs.h"
#include "cli/commands.h"
#include "cli/notify.h"
#include "cli/substituter.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/fuse/fuse_transport.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mount_opts {
	struct cli_substituter subst;
	bool list_root, allow_other, no_xattr, foreground, debug_fuse, nonempty;
	unsigned long long threads, read_ahead_kb;
	int open_mode; /* enum fusedev_open_mode: the index in open_modes */
};

static const char *const open_modes[] = {
    [FUSEDEV_OPEN_KERNEL] = "kernel",
    [FUSEDEV_OPEN_DAEMON] = "daemon",
    [FUSEDEV_OPEN_PASSTHROUGH] = "passthrough",
    NULL,
};

static const struct cli_opt mount_options[] = {
    CLI_BOOL(0, "list-root", struct mount_opts, list_root,
	     "allow listing the root directory (default: listing it fails with EPERM; names can "
	     "still be looked up)"),
    CLI_UINT(0, "threads", struct mount_opts, threads, "N", 1, 256,
	     "at most N request threads (1-256; default: twice the number of CPUs, between 2 and "
	     "16)"),
    CLI_BOOL(0, "allow-other", struct mount_opts, allow_other,
	     "let other users access the mount (needs root or user_allow_other in "
	     "/etc/fuse.conf)"),
    CLI_BOOL(0, "no-xattr", struct mount_opts, no_xattr,
	     "do not offer the user.storefs.castore.*.digest extended attributes"),
    CLI_CHOICE(0, "open", struct mount_opts, open_mode, open_modes,
	       "kernel (the default, chosen by bench/run: fastest for small files and needs no "
	       "root): open(2) needs no request to the daemon; daemon: every open reaches the "
	       "daemon; passthrough: like daemon, and files whose blob is one local file are "
	       "handed to the kernel (FUSE passthrough, Linux 6.9+, root only) so their reads "
	       "never reach the daemon: big sequential reads at disk speed (dd 256 MiB cold ~1.0x "
	       "of ext4 vs ~1.5x), but every open costs round trips (warm tar of small files 2-5x "
	       "vs ~1x); falls back to daemon reads (said once in the log) where passthrough is "
	       "not possible"),
    /* bench: 1024 made cold sequential reads slower, hence the default 0. */
    CLI_UINT(0, "read-ahead-kb", struct mount_opts, read_ahead_kb, "N", 0, 65536,
	     "set the mount's readahead window to N KiB (0-65536; default 0: keep the kernel's "
	     "128; 1024 measured ~25% slower on cold dd with the daemon's splice replies)"),
    CLI_BOOL(0, "nonempty", struct mount_opts, nonempty,
	     "mount even where MOUNTPOINT is not empty or is a mount point itself (hiding what "
	     "is there until unmounted)"),
    CLI_BOOL('f', "foreground", struct mount_opts, foreground,
	     "accepted for compatibility (always in the foreground)"),
    CLI_BOOL(0, "debug-fuse", struct mount_opts, debug_fuse, "trace every FUSE request on stderr"),
    CLI_SUBSTITUTER_OPTIONS(struct mount_opts, subst),
    {0},
};

/* Whether `path` is the root of a mount: statx says so where the kernel
 * knows (5.8+), else a device that differs from its parent's. */
static bool is_mount_root(const char *path, const struct stat *sb)
{
	struct statx sx;
	struct stat parent;
	char *up;
	bool root;

	if (statx(AT_FDCWD, path, 0, 0, &sx) == 0 &&
	    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return sx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
	if (asprintf(&up, "%s/..", path) < 0)
		return false; /* not known: mounting decides */
	root =
	    stat(up, &parent) == 0 && (parent.st_dev != sb->st_dev || parent.st_ino == sb->st_ino);
	free(up);
	return root;
}

static int check_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return sf_err_sys(errno, "cannot read mountpoint '%s'", path);
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	if (!empty)
		return sf_err(-ENOTEMPTY,
			      "mountpoint '%s' is not empty (--nonempty mounts over what is there)",
			      path);
	return 0;
}

/* Mounting over a mount or over files hides them: only when asked. */
static int check_mountpoint(const char *path, bool nonempty)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return sf_err_sys(errno, "cannot use mountpoint '%s'", path);
	if (!S_ISDIR(sb.st_mode))
		return sf_err(-ENOTDIR, "mountpoint '%s' is not a directory", path);
	if (nonempty)
		return 0;
	if (is_mount_root(path, &sb))
		return sf_err(-EBUSY,
			      "mountpoint '%s' is already a mount point (unmount it first, or "
			      "--nonempty mounts over it)",
			      path);
	return check_empty(path);
}

/* The readiness line, for a person watching (stdout or stderr a TTY). */
struct mounted_note {
	const char *store, *dir;
};

static void on_mounted(void *ctx)
{
	const struct mounted_note *m = ctx;
	FILE *f = isatty(STDOUT_FILENO) ? stdout : isatty(STDERR_FILENO) ? stderr : NULL;
	char status[256];
	int rc;

	if (f) {
		fprintf(f, "mounted %s at %s\n", m->store, m->dir);
		fflush(f);
	}
	/* Under systemd (Type=notify) the unit is started now. */
	snprintf(status, sizeof(status), "mounted at %s", m->dir);
	rc = cli_notify_ready(status);
	if (rc < 0)
		log_warn("%s", sf_errmsg(rc));
}

static int fuse_transport(struct fs *fs, const void *cfg)
{
	return fusedev_serve(fs, cfg);
}

static int mount_run(struct cli_ctx *c)
{
	const struct mount_opts *o = c->opts;
	struct fs_config fc = {.list_root = o->list_root, .no_xattr = o->no_xattr};
	struct fusedev_config dc = {
	    .mountpoint = c->argv[0],
	    .threads = (unsigned)o->threads,
	    .allow_other = o->allow_other,
	    .debug = o->debug_fuse,
	    .open_mode = (enum fusedev_open_mode)o->open_mode,
	    .read_ahead_kb = (unsigned)o->read_ahead_kb,
	};
	struct mounted_note note = {.dir = c->argv[0]};
	struct store *st;
	int rc = check_mountpoint(dc.mountpoint, o->nonempty);

	/* With a substituter a path may be published at any time: a miss at
	 * the root is remembered for --negative-ttl only (docs/limits.md). */
	if (o->subst.url) {
		dc.root_negative_finite = true;
		dc.root_negative_ttl = o->subst.negative_ttl != CLI_NEGATIVE_TTL_UNSET
					   ? (unsigned)o->subst.negative_ttl
					   : CLI_NEGATIVE_TTL_DEFAULT;
	}
	if (!rc)
		rc = cli_substituter_open_store(&o->subst, c, STORE_OPEN_READONLY, &st);
	if (!rc) {
		note.store = st->location;
		dc.mounted = on_mounted, dc.mounted_ctx = &note;
	}
	if (!rc)
		rc = cli_fs_serve(st, &fc, fuse_transport, &dc,
				  CLI_FS_PIN | (c->verbose ? CLI_FS_STATS : 0));
	return rc;
}

const struct cli_cmd cmd_mount = {
    .name = "mount",
    .summary = "mount the store read-only with FUSE",
    .operands = "MOUNTPOINT",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Mounts the store read-only at MOUNTPOINT (an existing, empty directory that\n"
	     "is not a mount point itself, unless --nonempty) with FUSE. On a terminal it\n"
	     "says \"mounted STORE at MOUNTPOINT\" once the mount is up.\n"
	     "Each store path appears at the root under its basename <hash>-<name>, like\n"
	     "/nix/store. Directories 0555, files 0444, executables 0555, symlinks 0777,\n"
	     "owner root, every timestamp 1. Paths imported while mounted appear at once.\n"
	     "\n"
	     "The command stays in the foreground (like snix-store mount) until the mount\n"
	     "is unmounted (umount, fusermount3 -u) or it gets SIGINT, SIGTERM or SIGHUP,\n"
	     "which unmount it; run it with '&' or under a service manager to detach.\n",
    .notes = "Extended attributes: files have user.storefs.castore.blob.digest and\n"
	     "directories user.storefs.castore.directory.digest, valued blake3-<base64>.\n"
	     "With -v the inode table's size is logged at unmount.\n",
    .exit_status = "0 unmounted cleanly, 1 error, 2 usage error.",
    .flags = CLI_STORE | CLI_VERBOSE,
    .store_note = "opened read-only, so imports into it may run while it is mounted",
    .options = mount_options,
    .opts_size = sizeof(struct mount_opts),
    .defaults = &(const struct mount_opts){.subst.negative_ttl = CLI_NEGATIVE_TTL_UNSET},
    .run = mount_run,
};
