/* cmd_virtiofs.c - `storefs virtiofs`: serve the store to a virtual
 * machine as a vhost-user virtio-fs device. */
#include "cli/cli.h"
#include "cli/cli_fs.h"
#include "cli/commands.h"
#include "common/err.h"
#include "fs/virtio/virtiofs.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS_MAX 64

struct virtiofs_opts {
	const char *socket;
	bool list_root, no_xattr;
	unsigned long long threads; /* 0: default_threads() */
};

static const struct cli_opt virtiofs_options[] = {
    CLI_STRING_REQUIRED(0, "socket", struct virtiofs_opts, socket, "PATH",
			"the vhost-user socket to create"),
    CLI_BOOL(0, "list-root", struct virtiofs_opts, list_root,
	     "allow listing the root directory (default: EPERM)"),
    CLI_UINT(0, "threads", struct virtiofs_opts, threads, "N", 1, THREADS_MAX,
	     "serve up to N request queues, one thread each (1-64; default: the number of CPUs, "
	     "at most 16); QEMU's num-request-queues (default 1) must not exceed it"),
    CLI_BOOL(0, "no-xattr", struct virtiofs_opts, no_xattr,
	     "do not offer the user.storefs.castore.*.digest extended attributes"),
    {0},
};

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static int virtio_transport(struct fs *fs, const void *cfg)
{
	return virtiofs_serve(fs, cfg);
}

static int virtiofs_run(struct cli_ctx *c)
{
	const struct virtiofs_opts *o = c->opts;
	struct fs_config fc = {.list_root = o->list_root, .no_xattr = o->no_xattr};
	struct virtiofs_config dc = {
	    .socket = o->socket,
	    .threads = o->threads ? (unsigned)o->threads : default_threads(),
	};
	struct store *st;
	sigset_t set;
	int rc;

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
	rc = cli_ctx_open_store(c, STORE_OPEN_READONLY, &st);
	return rc ? rc : cli_fs_serve(st, &fc, virtio_transport, &dc, 0);
}

const struct cli_cmd cmd_virtiofs = {
    .name = "virtiofs",
    .summary = "serve the store to a virtual machine (vhost-user virtio-fs)",
    .about = "Serves the store read-only to a virtual machine: a vhost-user back-end for\n"
	     "the virtio-fs device on the unix socket PATH, which QEMU connects to:\n"
	     "\n"
	     "  qemu-system-x86_64 ... \\\n"
	     "    -object memory-backend-memfd,id=mem,size=1G,share=on \\\n"
	     "    -numa node,memdev=mem \\\n"
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
	     "status 0 when it disconnects (powers off) or on SIGTERM or SIGINT.\n",
    .exit_status = "0 the VM disconnected or a signal stopped it, 1 error, 2 usage error.",
    .flags = CLI_STORE | CLI_VERBOSE,
    .store_note = "opened read-only",
    .options = virtiofs_options,
    .opts_size = sizeof(struct virtiofs_opts),
    .run = virtiofs_run,
};
