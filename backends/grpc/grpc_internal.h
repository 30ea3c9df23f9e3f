/* grpc_internal.h - what the gRPC client services share: the channel, one
 * call at a time with its deadline, and the service constructors.
 *
 * One channel per store, made at open and used by every call of every
 * service from every thread: gRPC core multiplexes the calls over one
 * HTTP/2 connection and, when the peer goes away, reconnects on its own
 * (with the short backoff set in grpc_conn.c), so a restarted daemon is
 * used again without reopening the store. Each call has its own completion
 * queue, with at most one batch in flight besides the one that receives
 * its status, so a call is a plain sequence of waits that any thread may
 * run. */
#ifndef STOREFS_BACKENDS_GRPC_INTERNAL_H
#define STOREFS_BACKENDS_GRPC_INTERNAL_H

#include "backends/grpc/grpc_store.h"

#include "castore/digest_map.h"
#include "castore/directory.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct grpc_conn {
	grpc_channel *channel;
	char *location;		 /* the store URL, for messages */
	const char *pkg_castore; /* "snix.castore.v1" or "tvix.castore.v1" */
	const char *pkg_store;	 /* "snix.store.v1" or "tvix.store.v1" */
	struct deadline_rule rule;
};

/* One call in progress (a unary or server-streaming RPC). */
struct grpc_rpc {
	struct grpc_conn *conn;
	grpc_call *call;
	grpc_completion_queue *cq;
	grpc_metadata_array initial, trailing;
	char method[96];
	uint64_t start_ms;
	uint64_t moved; /* message bytes sent and received: they extend the deadline */
	bool ended;	/* the server closed the stream (status read) */
	/* The status is asked for as soon as the call starts, in a batch of
	 * its own (tag: &status), so it is there when the last message is
	 * read instead of costing one more wait; `first` is the first
	 * response message, received by grpc_rpc_start's batch. */
	grpc_status_code status;
	grpc_slice status_details;
	bool status_posted, status_done, have_first;
	grpc_byte_buffer *first;
};

int grpc_conn_open(const struct grpc_store_url *u, struct grpc_conn **out);
void grpc_conn_close(struct grpc_conn *c);

/* Starts `service`/`method` of package `pkg` with one request message
 * (`req`, `len` bytes; a zero-length message is valid). */
int grpc_rpc_start(struct grpc_conn *c, const char *pkg, const char *service, const char *method,
		   const void *req, size_t len, struct grpc_rpc *out);

/* A client-streaming call (an upload): grpc_rpc_open_upload sends the
 * headers, grpc_rpc_send one message each (a refusal by the server ends
 * the call: its status is the error), grpc_rpc_close_send says there
 * are no more; then grpc_rpc_next reads the response like any other. */
int grpc_rpc_open_upload(struct grpc_conn *c, const char *pkg, const char *service,
			 const char *method, struct grpc_rpc *out);
int grpc_rpc_send(struct grpc_rpc *r, const void *msg, size_t len);
int grpc_rpc_close_send(struct grpc_rpc *r);

/* The next response message, malloc'd into *msg (free it), or *msg NULL
 * when the stream ended with status OK. A non-OK status is its errno
 * (NOT_FOUND: -ENOENT, anything else -EIO with one message); a missed
 * deadline is -EIO. After an error or the end, only grpc_rpc_finish. */
int grpc_rpc_next(struct grpc_rpc *r, uint8_t **msg, size_t *len);

/* Ends the call (cancelling it if the stream has not ended) and frees it. */
void grpc_rpc_finish(struct grpc_rpc *r);

/* A unary call: exactly one response message (a second is -EIO). */
int grpc_unary(struct grpc_conn *c, const char *pkg, const char *service, const char *method,
	       const void *req, size_t len, uint8_t **resp, size_t *resp_len);

/* Directories received ahead of their Get (grpc_dirahead.c). */
struct grpc_dirahead {
	pthread_mutex_t mu;
	struct digest_map map; /* digest -> struct directory *, or a mark once taken */
	size_t held;	       /* Directories kept, not yet taken */
	size_t bytes;	       /* their message bytes (and those taken since the last drop) */
};

void grpc_dirahead_init(struct grpc_dirahead *a);
void grpc_dirahead_release(struct grpc_dirahead *a);
enum grpc_ahead {
	GRPC_AHEAD_MISS,  /* nothing known: get it alone */
	GRPC_AHEAD_TAKEN, /* kept: *out handed over (the caller frees it) */
	GRPC_AHEAD_DOWN,  /* a child of one got alone: get it recursively */
};
enum grpc_ahead grpc_dirahead_take(struct grpc_dirahead *a, const struct b3_digest *dg,
				   struct directory **out);
/* Marks the child Directories of `d` (got alone) for a recursive Get. */
void grpc_dirahead_want_children(struct grpc_dirahead *a, const struct directory *d);
/* Before a recursive Get whose Directories will be kept. */
void grpc_dirahead_make_room(struct grpc_dirahead *a);
/* Keeps `d` (taking it over); false once this stream (`*kept` so far)
 * has kept its share or the bound is reached: then d is freed. */
bool grpc_dirahead_keep(struct grpc_dirahead *a, const struct b3_digest *dg, struct directory *d,
			size_t len, size_t *kept);

int grpc_blob_service_new(struct grpc_conn *c, struct blob_service **out);
int grpc_dir_service_new(struct grpc_conn *c, struct dir_service **out);
int grpc_path_info_service_new(struct grpc_conn *c, struct path_info_service **out);

#endif
