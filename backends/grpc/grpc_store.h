/* grpc_store.h - a store whose three services are a remote gRPC daemon's
 * (snix-store / tvix-store / storefs daemon), docs/grpc.md.
 *
 * URLs (exact: other tools write them):
 *	grpc+http://HOST:PORT[?OPTIONS]		TCP, no TLS (HOST may be [v6])
 *	grpc+unix:///path/to/socket[?OPTIONS]	a Unix domain socket
 * OPTIONS, '&'-separated:
 *	timeout=SECONDS	the deadline of a call (common/deadline.h's base;
 *			a blob read also gets its bytes at the minimum rate)
 *	package=snix|tvix the method paths: snix.castore.v1/snix.store.v1
 *			(default) or tvix.castore.v1/tvix.store.v1
 *
 * Every Directory and PathInfo received is validated and its digest or
 * name checked against the one asked for; every blob byte is checked
 * against the blob's BLAKE3 before a reader returns it. Any transport
 * failure, bad status, missed deadline or lie is -EIO with one message;
 * NOT_FOUND is -ENOENT. The services are thread-safe. Writes go to the
 * daemon's Put methods (it may refuse them: EIO with its status); a blob
 * writer checks the digest the daemon names, a Directory batch is sent as
 * one stream (a whole closure, leaves first). */
#ifndef STOREFS_BACKENDS_GRPC_STORE_H
#define STOREFS_BACKENDS_GRPC_STORE_H

#include "common/deadline.h"
#include "store/store.h"

#include <stdbool.h>

struct grpc_store_url {
	char *target; /* for grpc_channel_create: "HOST:PORT" or "unix:///path" */
	bool tvix;    /* package=tvix */
	struct deadline_rule rule;
};

/* Parses a grpc+http:// or grpc+unix:// URL. -EINVAL with a message for
 * anything else (unknown option, missing port, relative socket path). */
int grpc_store_url_parse(const char *url, struct grpc_store_url *out);
void grpc_store_url_release(struct grpc_store_url *u);

/* Opens the store at `url`: parses it and makes the channel. No call is
 * made yet (a daemon that is down now may be up at the first lookup).
 * STORE_OPEN_NATIVE_SIZE selects the size formula reported for it. */
int grpc_store_open(const char *url, unsigned flags, struct store **out);

#endif
