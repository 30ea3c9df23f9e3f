/* cmd_virtiofs.c - `storefs virtiofs`: serve the store to a virtual
 * machine as a vhost-user virtio-fs device. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/fs.h"
#include "fs/virtio/virtiofs.h"
#include "store/root_nodes_path_info.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS_MAX 64

static const struct cli_cmd cmd = {
    "virtiofs",
    "virtiofs [--store URL|DIR] [--list-root] [--threads N] [--no-xattr] [-v]\n"
    "             --socket PATH",
    "Serves the store read-only to a virtual machine: a vhost-user back-end for\n"
    "the virtio-fs device on the unix socket PATH, which QEMU connects to:\n"
    "\n"
    "  qemu-system-x86_64 ... \\\n"
    "    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \\\n"
    "    -chardev socket,id=c,path=PATH \\\n"
    "    -device vhost-user-fs-pci,chardev=c,tag=nix-store\n"
    "\n"
    "and the guest mounts with 'mount -t virtiofs nix-store /nix/store'. The guest\n"
    "sees what 'storefs mount' shows: every store path at the root, directories\n"
    "0555, files 0444, executables 0555, symlinks 0777, owner root, timestamps 1,\n"
    "writes fail with EROFS. Paths imported while the VM runs appear on their\n"
    "next lookup.\n"
    "\n"
    "PATH appears once QEMU can connect. One VM is served; the command ends with\n"
    "status 0 when it disconnects (powers off) or on SIGTERM or SIGINT.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR    the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                     as root, else $XDG_DATA_HOME/storefs); opened read-only\n"
    "  --socket PATH      the vhost-user socket to create (required)\n"
    "  --list-root        allow listing the root directory (default: EPERM)\n"
    "  --threads N        serve up to N request queues, one thread each (1-64;\n"
    "                     default: the number of CPUs, at most 16); QEMU's\n"
    "                     num-request-queues (default 1) must not exceed it\n"
    "  --no-xattr         do not offer the user.storefs.castore.*.digest\n"
    "                     extended attributes\n"
    "  -v, --verbose      log more on stderr (twice: debug)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 the VM disconnected or a signal stopped it, 1 error, 2 usage\n"
    "error.\n",
};

enum { OPT_LIST_ROOT = 256, OPT_THREADS, OPT_SOCKET, OPT_NO_XATTR };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"list-root", no_argument, NULL, OPT_LIST_ROOT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"no-xattr", no_argument, NULL, OPT_NO_XATTR},
    {"verbose", no_argument, NULL, 'v'},
    {0},
};

struct virtiofs_opts {
	const char *store;
	struct fs_config fs;
	struct virtiofs_config dev;
	int verbose;
};

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static int parse_threads(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > THREADS_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* 0 to go on, or the exit status (help, usage error). */
static int parse_one(struct virtiofs_opts *o, int ch, int *done)
{
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
	case OPT_NO_XATTR:
		o->fs.no_xattr = true;
		break;
	case OPT_SOCKET:
		o->dev.socket = optarg;
		break;
	case OPT_THREADS:
		if (parse_threads(optarg, &o->dev.threads))
			return cli_usage(&cmd, "--threads wants a number from 1 to %d, not '%s'",
					 THREADS_MAX, optarg);
		break;
	case 'v':
		o->verbose++;
		break;
	default:
		return CLI_USAGE;
	}
	return 0;
}

static int parse_args(struct virtiofs_opts *o, int argc, char **argv, int *done)
{
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "hv", longopts)) != -1) {
		rc = parse_one(o, ch, done);
		if (rc || *done)
			return rc;
	}
	if (optind != argc)
		return cli_usage(&cmd, "unexpected argument '%s'", argv[optind]);
	if (!o->dev.socket || !*o->dev.socket)
		return cli_usage(&cmd, "--socket PATH is required");
	return 0;
}

/* Sets up store -> root nodes -> fs and serves; tears down in the order
 * `storefs mount` does. */
static int virtiofs_run(struct virtiofs_opts *o)
{
	struct store *st = NULL;
	struct root_nodes *rn = NULL;
	struct fs *fs = NULL;
	int rc;

	rc = cli_open_store(o->store, STORE_OPEN_READONLY, &st);
	if (!rc)
		rc = root_nodes_path_info_new(st->paths, &rn);
	o->fs.usage = cli_store_usage;
	o->fs.usage_ctx = st;
	if (!rc)
		rc = fs_new(st->blobs, st->dirs, rn, &o->fs, &fs);
	if (!rc)
		rc = virtiofs_serve(fs, &o->dev);
	if (st) {
		path_info_service_free(st->paths);
		st->paths = NULL;
	}
	fs_free(fs);
	root_nodes_free(rn);
	store_free(st);
	return rc;
}

int cmd_virtiofs(int argc, char **argv)
{
	struct virtiofs_opts o = {.dev.threads = default_threads()};
	sigset_t set;
	int done = 0, rc;

	rc = parse_args(&o, argc, argv, &done);
	if (rc || done)
		return rc;
	if (o.verbose)
		log_set_level(o.verbose > 1 ? LOG_DEBUG : LOG_INFO);
	/* Before any thread exists (the store may start some), so that every
	 * thread leaves SIGTERM and SIGINT to the server's signalfd. A shell
	 * starts background jobs with SIGINT ignored: an ignored signal is
	 * dropped even while blocked, and stopping on SIGINT is promised. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = virtiofs_run(&o);
	return rc ? cli_fail(&cmd, rc) : CLI_OK;
}
