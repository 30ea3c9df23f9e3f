/* cmd_mount.c - `storefs mount`: serve the store read-only over FUSE. */
#include "cli/cli.h"
#include "cli/cli_fs.h"
#include "cli/commands.h"
#include "cli/substituter.h"
#include "common/err.h"
#include "fs/fuse/fuse_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mount_opts {
	struct cli_substituter subst;
	bool list_root, allow_other, no_xattr, foreground, debug_fuse;
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
    CLI_BOOL('f', "foreground", struct mount_opts, foreground,
	     "accepted for compatibility (always in the foreground)"),
    CLI_BOOL(0, "debug-fuse", struct mount_opts, debug_fuse, "trace every FUSE request on stderr"),
    CLI_SUBSTITUTER_OPTIONS(struct mount_opts, subst),
    {0},
};

static int check_mountpoint(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return sf_err_sys(errno, "cannot use mountpoint '%s'", path);
	if (!S_ISDIR(sb.st_mode))
		return sf_err(-ENOTDIR, "mountpoint '%s' is not a directory", path);
	return 0;
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
	struct store *st;
	int rc = check_mountpoint(dc.mountpoint);

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
    .about = "Mounts the store read-only at MOUNTPOINT (an existing directory) with FUSE.\n"
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
