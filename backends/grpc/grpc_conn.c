/* grpc_conn.c - the one channel of a gRPC store. */
#include "backends/grpc/grpc_internal.h"

#include <grpc/grpc_security.h>
#include <stdlib.h>
#include <string.h>

/* A message larger than this is refused by gRPC itself (RESOURCE_EXHAUSTED,
 * hence -EIO): a Directory or PathInfo is far smaller, and blob chunks are
 * 4 KiB from snix (castore.md §1.2) and at most 1 MiB from storefs. */
#define GRPC_MAX_MESSAGE (16 * 1024 * 1024)

/* Reconnection after the daemon went away: gRPC core's default backoff
 * grows to 120 s, which would keep a restarted daemon unused for minutes.
 * Capped at 1 s, a restart is noticed within a second or so. Calls made
 * while the channel is down fail at once (they are not wait-for-ready),
 * so an outage is EIO, never a wait. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is
 * left alone: gRPC core takes it as the time a connection attempt gets to
 * finish its HTTP/2 handshake (20 s by default), and at 100 ms a daemon
 * slow to answer on a loaded machine was "failed to connect" (t62). */
#define GRPC_BACKOFF_INITIAL_MS 100
#define GRPC_BACKOFF_MAX_MS	1000

int grpc_conn_open(const struct grpc_store_url *u, struct grpc_conn **out)
{
	grpc_arg args[4] = {
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     .value.integer = GRPC_MAX_MESSAGE},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
	     .value.integer = GRPC_BACKOFF_INITIAL_MS},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
	     .value.integer = GRPC_BACKOFF_MAX_MS},
	    /* No retries of our calls by gRPC: a failure is reported, and
	     * the caller (a later lookup or read) tries again. */
	    {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
	};
	grpc_channel_args cargs = {.num_args = 4, .args = args};
	grpc_channel_credentials *creds;
	struct grpc_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	grpc_init();
	c->pkg_castore = u->tvix ? "tvix.castore.v1" : "snix.castore.v1";
	c->pkg_store = u->tvix ? "tvix.store.v1" : "snix.store.v1";
	c->rule = u->rule;
	creds = grpc_insecure_credentials_create();
	c->channel = creds ? grpc_channel_create(u->target, creds, &cargs) : NULL;
	if (creds)
		grpc_channel_credentials_release(creds);
	if (!c->channel) {
		grpc_shutdown();
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void grpc_conn_close(struct grpc_conn *c)
{
	if (!c)
		return;
	grpc_channel_destroy(c->channel);
	grpc_shutdown();
	free(c->location);
	free(c);
}
