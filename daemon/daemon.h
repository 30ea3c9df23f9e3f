/* daemon.h - `storefs daemon`: a store's three services over gRPC, under
 * the snix and tvix package names, plus grpc.health.v1 (docs/grpc.md).
 *
 * Built on gRPC core's C API (libgrpc-dev): one completion queue polled by
 * a few threads, each call a small state machine advanced by the
 * completions of its batches. */
#ifndef STOREFS_DAEMON_H
#define STOREFS_DAEMON_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

#define DAEMON_DEFAULT_LISTEN "[::1]:8000"

struct daemon_config {
	struct store *st;	   /* borrowed; outlives the daemon */
	const char *const *listen; /* "HOST:PORT", "[V6]:PORT" or "unix:/path" */
	size_t n_listen;
	bool allow_writes; /* Put calls; otherwise PERMISSION_DENIED */
	bool verbose;	   /* one log line per call */
	/* How long daemon_stop() lets calls in flight finish before it
	 * cancels them (0: DAEMON_GRACE_MS_DEFAULT). */
	unsigned grace_ms;
};

#define DAEMON_GRACE_MS_DEFAULT 30000

struct daemon;

/* Listens on every address and starts serving. `urls` (may be NULL)
 * receives n_listen malloc'd strings, the address each listener is bound
 * to as a store URL ("grpc+http://[::1]:8000", "grpc+unix:///path"; a
 * port 0 is replaced by the one chosen). -EADDRINUSE (or another errno)
 * with a message naming the address if one cannot be bound; -ENOMEM.
 * Callers block SIGINT/SIGTERM first if they sigwait() for them: the
 * daemon's threads and gRPC's inherit the signal mask. */
int daemon_start(const struct daemon_config *cfg, struct daemon **out, char ***urls);

/* Graceful stop: refuses new calls, lets those in flight finish (Health
 * Watch streams end at once), cancels what is left after the grace
 * period, and frees everything. */
void daemon_stop(struct daemon *d);

#endif
