/* cmd_mount.c - `storefs mount`: serve the store read-only over FUSE. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "store/store_gc.h"
#include "cli/commands.h"
#include "cli/substituter.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/fs.h"
#include "fs/fuse/fuse_transport.h"
#include "store/root_nodes_path_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct cli_cmd cmd = {
    "mount",
    "mount [--store URL|DIR] [--list-root] [--threads N] [--allow-other] [--no-xattr]\n"
    "             [--open=kernel|daemon|passthrough] [--read-ahead-kb N]\n"
    "             [-f|--foreground] [-v]\n"
    "             " CLI_SUBSTITUTER_USAGE " MOUNTPOINT",
    "Mounts the store read-only at MOUNTPOINT (an existing directory) with FUSE.\n"
    "Each store path appears at the root under its basename <hash>-<name>, like\n"
    "/nix/store. Directories 0555, files 0444, executables 0555, symlinks 0777,\n"
    "owner root, every timestamp 1. Paths imported while mounted appear at once.\n"
    "\n"
    "The command stays in the foreground (like snix-store mount) until the mount\n"
    "is unmounted (umount, fusermount3 -u) or it gets SIGINT, SIGTERM or SIGHUP,\n"
    "which unmount it; run it with '&' or under a service manager to detach.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR    the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                     as root, else $XDG_DATA_HOME/storefs); opened read-only,\n"
    "                     so imports into it may run while it is mounted\n"
    "  --list-root        allow listing the root directory (default: listing it\n"
    "                     fails with EPERM; names can still be looked up)\n"
    "  --threads N        at most N request threads (1-256; default: twice the\n"
    "                     number of CPUs, between 2 and 16)\n"
    "  --allow-other      let other users access the mount (needs root or\n"
    "                     user_allow_other in /etc/fuse.conf)\n"
    "  --no-xattr         do not offer the user.storefs.castore.*.digest\n"
    "                     extended attributes\n"
    "  --open=MODE        kernel (the default, chosen by bench/run: fastest for\n"
    "                     small files and needs no root): open(2) needs no\n"
    "                     request to the daemon; daemon: every open reaches the\n"
    "                     daemon; passthrough: like daemon, and files whose blob\n"
    "                     is one local file are handed to the kernel (FUSE\n"
    "                     passthrough, Linux 6.9+, root only) so their reads\n"
    "                     never reach the daemon: big sequential reads at disk\n"
    "                     speed (dd 256 MiB cold ~1.0x of ext4 vs ~1.5x), but\n"
    "                     every open costs round trips (warm tar of small files\n"
    "                     2-5x vs ~1x); falls back to daemon reads (said once\n"
    "                     in the log) where passthrough is not possible\n"
    "  --read-ahead-kb N  set the mount's readahead window to N KiB (0-65536;\n"
    "                     default 0: keep the kernel's 128; 1024 measured ~25%\n"
    "                     slower on cold dd with the daemon's splice replies)\n"
    "  -f, --foreground   accepted for compatibility (always in the foreground)\n"
    "  -v, --verbose      log more on stderr (twice: debug); with -v the inode\n"
    "                     table's size is logged at unmount\n"
    "  --debug-fuse       trace every FUSE request on stderr\n" CLI_SUBSTITUTER_HELP
    "  -h, --help         show this help\n"
    "\n"
    "Extended attributes: files have user.storefs.castore.blob.digest and\n"
    "directories user.storefs.castore.directory.digest, valued blake3-<base64>.\n"
    "\n"
    "Exit status: 0 unmounted cleanly, 1 error, 2 usage error.\n",
};

enum {
	OPT_LIST_ROOT = 256,
	OPT_THREADS,
	OPT_ALLOW_OTHER,
	OPT_NO_XATTR,
	OPT_OPEN,
	OPT_DEBUG,
	OPT_READ_AHEAD
};

/* bench: 1024 made cold sequential reads slower, see --help. */
#define READ_AHEAD_DEFAULT_KB 0

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"list-root", no_argument, NULL, OPT_LIST_ROOT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
    {"no-xattr", no_argument, NULL, OPT_NO_XATTR},
    {"open", required_argument, NULL, OPT_OPEN},
    {"read-ahead-kb", required_argument, NULL, OPT_READ_AHEAD},
    {"foreground", no_argument, NULL, 'f'},
    {"verbose", no_argument, NULL, 'v'},
    {"debug-fuse", no_argument, NULL, OPT_DEBUG},
    CLI_SUBSTITUTER_LONGOPTS,
    {0},
};

struct mount_opts {
	const char *store;
	struct cli_substituter subst;
	struct fs_config fs;
	struct fusedev_config dev;
	int verbose;
};

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_open(const char *s, enum fusedev_open_mode *out)
{
	if (!strcmp(s, "kernel"))
		*out = FUSEDEV_OPEN_KERNEL;
	else if (!strcmp(s, "daemon"))
		*out = FUSEDEV_OPEN_DAEMON;
	else if (!strcmp(s, "passthrough"))
		*out = FUSEDEV_OPEN_PASSTHROUGH;
	else
		return -EINVAL;
	return 0;
}

/* 0 to go on, or the exit status (help, usage error). */
static int parse_one(struct mount_opts *o, int ch, int *done)
{
	int taken = cli_substituter_option(&o->subst, ch, optarg);

	if (taken < 0)
		return cli_usage(&cmd, "%s", sf_errmsg(-EINVAL));
	if (taken)
		return 0;
	switch (ch) {
	case CLI_OPT_STORE:
		o->store = optarg;
		break;
	case CLI_OPT_HELP:
		*done = 1;
		return cli_help(&cmd);
	case OPT_LIST_ROOT:
		o->fs.list_root = true;
		break;
	case OPT_ALLOW_OTHER:
		o->dev.allow_other = true;
		break;
	case OPT_NO_XATTR:
		o->fs.no_xattr = true;
		break;
	case OPT_DEBUG:
		o->dev.debug = true;
		break;
	case 'f':
		break;
	case 'v':
		o->verbose++;
		break;
	case OPT_THREADS:
		if (parse_uint(optarg, 1, 256, &o->dev.threads))
			return cli_usage(&cmd, "--threads wants a number from 1 to 256, not '%s'",
					 optarg);
		break;
	case OPT_OPEN:
		if (parse_open(optarg, &o->dev.open_mode))
			return cli_usage(
			    &cmd, "--open wants 'kernel', 'daemon' or 'passthrough', not '%s'",
			    optarg);
		break;
	case OPT_READ_AHEAD:
		if (parse_uint(optarg, 0, 65536, &o->dev.read_ahead_kb))
			return cli_usage(&cmd,
					 "--read-ahead-kb wants a number from 0 to 65536, not '%s'",
					 optarg);
		break;
	default:
		return CLI_USAGE;
	}
	return 0;
}

static int parse_args(struct mount_opts *o, int argc, char **argv, int *done)
{
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "hfv", longopts)) != -1) {
		rc = parse_one(o, ch, done);
		if (rc || *done)
			return rc;
	}
	if (optind != argc - 1)
		return cli_usage(&cmd, optind == argc ? "a MOUNTPOINT is required"
						      : "exactly one MOUNTPOINT is expected");
	o->dev.mountpoint = argv[optind];
	return 0;
}

static int check_mountpoint(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return sf_err_sys(errno, "cannot use mountpoint '%s'", path);
	if (!S_ISDIR(sb.st_mode))
		return sf_err(-ENOTDIR, "mountpoint '%s' is not a directory", path);
	return 0;
}

static void log_table_stats(struct fs *fs)
{
	struct inode_table_stats s;

	fs_stats(fs, &s);
	log_info("inode table: %llu inodes, %llu bytes (%.1f bytes per inode), %llu directories "
		 "populated",
		 (unsigned long long)s.inodes, (unsigned long long)s.bytes,
		 s.inodes ? (double)s.bytes / (double)s.inodes : 0.0,
		 (unsigned long long)s.populated);
}

/* Every path the mount looks up is a temporary GC root (docs/gc.md). */
static int pin_temp_root(void *ctx, const struct store_path *p)
{
	return store_temp_root_add(ctx, p);
}

/* Sets up store -> root nodes -> fs, serves, and tears down in the order
 * the watch contract needs: the PathInfo service (ending its watches)
 * first, then the filesystem and the root nodes, then the rest. */
static int mount_run(struct mount_opts *o)
{
	struct store *st = NULL;
	struct root_nodes *rn = NULL;
	struct fs *fs = NULL;
	int rc;

	rc = check_mountpoint(o->dev.mountpoint);
	if (!rc)
		rc = cli_substituter_open_store(&o->subst, o->store, STORE_OPEN_READONLY, &st);
	if (!rc)
		rc = root_nodes_path_info_new(st->paths, &rn);
	o->fs.usage = cli_store_usage;
	o->fs.usage_ctx = st;
	if (!rc)
		root_nodes_path_info_set_pin(rn, pin_temp_root, st);
	if (!rc)
		rc = fs_new(st->blobs, st->dirs, rn, &o->fs, &fs);
	if (o->subst.url) {
		o->dev.root_negative_finite = true;
		o->dev.root_negative_ttl =
		    o->subst.negative_ttl_set ? o->subst.negative_ttl : CLI_NEGATIVE_TTL_DEFAULT;
	}
	if (!rc)
		rc = fusedev_serve(fs, &o->dev);
	if (fs && o->verbose)
		log_table_stats(fs);
	if (st) {
		path_info_service_free(st->paths);
		st->paths = NULL;
	}
	fs_free(fs);
	root_nodes_free(rn);
	store_free(st);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	struct mount_opts o = {.dev.read_ahead_kb = READ_AHEAD_DEFAULT_KB};
	int done = 0, rc;

	rc = parse_args(&o, argc, argv, &done);
	if (rc || done)
		return rc;
	if (o.verbose)
		log_set_level(o.verbose > 1 ? LOG_DEBUG : LOG_INFO);
	rc = mount_run(&o);
	return rc ? cli_fail(&cmd, rc) : CLI_OK;
}
