/* cmd_daemon.c - `storefs daemon`: the store's services over gRPC
 * (docs/grpc.md). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "common/log.h"
#include "daemon/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct opts {
	struct cli_list listen;
	bool allow_writes;
};

static const struct cli_opt daemon_options[] = {
    CLI_LIST(0, "listen", struct opts, listen, "ADDR",
	     "listen on ADDR: HOST:PORT, [IPv6]:PORT or unix:/path (default " DAEMON_DEFAULT_LISTEN
	     "; may be given several times; port 0 picks a free one)"),
    CLI_BOOL(0, "allow-writes", struct opts, allow_writes,
	     "accept the Put calls (checked as docs/grpc.md says); without it the daemon "
	     "is read-only and they are PERMISSION_DENIED"),
    {0},
};

static void print_urls(char **urls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		printf("%s\n", urls[i]);
		free(urls[i]);
	}
	free(urls);
}

/* Serves until SIGINT or SIGTERM, which every thread (gRPC's too) leaves
 * to sigwait(). */
static int daemon_run(struct cli_ctx *c)
{
	const struct opts *o = c->opts;
	static const char *const fallback[] = {DAEMON_DEFAULT_LISTEN};
	struct daemon_config cfg = {
	    .st = c->store,
	    .listen = o->listen.n ? o->listen.v : fallback,
	    .n_listen = o->listen.n ? o->listen.n : 1,
	    .allow_writes = o->allow_writes,
	    .verbose = c->verbose > 0,
	};
	struct daemon *d;
	char **urls;
	sigset_t set;
	int sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	rc = -pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rc == 0)
		rc = daemon_start(&cfg, &d, &urls);
	if (rc < 0)
		return rc;
	print_urls(urls, cfg.n_listen);
	rc = cli_flush_stdout();
	if (rc == 0)
		log_info("serving '%s' over gRPC%s", c->store->location,
			 o->allow_writes ? " (writes allowed)" : "");
	while (rc == 0 && sigwait(&set, &sig) != 0)
		;
	log_info("stopping: calls in flight finish, new ones are refused");
	daemon_stop(d);
	return rc;
}

static int daemon_check(struct cli_ctx *c)
{
	const struct opts *o = c->opts;

	c->open_flags |= o->allow_writes ? STORE_OPEN_CREATE : STORE_OPEN_READONLY;
	return 0;
}

const struct cli_cmd cmd_daemon = {
    .name = "daemon",
    .summary = "serve the store over gRPC (snix/tvix-store protocol)",
    .about = "Serves the store's blob, Directory and PathInfo services over gRPC until SIGINT\n"
	     "or SIGTERM, wire-compatible with snix-store and tvix-store: BlobService (Stat,\n"
	     "Read, Put), DirectoryService (Get, Put) and PathInfoService (Get, Put,\n"
	     "CalculateNAR, List), each under both package names (snix.castore.v1 and\n"
	     "tvix.castore.v1, snix.store.v1 and tvix.store.v1), grpc.health.v1.Health and\n"
	     "server reflection (grpc.reflection.v1 and v1alpha).\n"
	     "Prints the URL of each listener (grpc+http://HOST:PORT, grpc+unix:///path) on\n"
	     "standard output, for --store of another storefs.\n"
	     "\n"
	     "Read-only unless --allow-writes. With it, a blob is acknowledged with the\n"
	     "digest the daemon computed, once durable; a Directory stream is stored only as\n"
	     "a complete closure, leaves first; a PathInfo is registered only if its root is\n"
	     "stored, rendering it gives its NAR hash and size, its references are registered\n"
	     "and a CA it claims is true, and a path never changes (docs/trust.md).\n"
	     "\n"
	     "On SIGTERM the daemon refuses new calls, lets those in flight finish (for up\n"
	     "to 30 s, then cancels them) and exits 0.\n",
    .notes = "With -v, one line per call is logged on standard error.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE | CLI_VERBOSE,
    .options = daemon_options,
    .opts_size = sizeof(struct opts),
    .check = daemon_check,
    .run = daemon_run,
};
