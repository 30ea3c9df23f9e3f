/* rpc.h - inside the daemon: a call's life and the method handlers.
 *
 * Every tag on the completion queue is a struct rpc_tag, whose `done` the
 * polling thread calls with the event's success. A call holds two tags:
 * `step`, for the one batch of sends and receives it has in flight at a
 * time (so its steps never run concurrently), and `close`, for
 * RECV_CLOSE_ON_SERVER, posted when the call starts, which completes when
 * the call is over or cancelled. The call is freed when both are done.
 *
 * A method is a table entry: its paths under both package names, its
 * shape, and handlers that see whole messages as bytes and return 0, a
 * negative errno with a message (mapped by rpc_status()), or
 * rpc_fail()'s explicit status. */
#ifndef STOREFS_DAEMON_RPC_H
#define STOREFS_DAEMON_RPC_H

#include "daemon/daemon.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Messages a client sends are refused (RESOURCE_EXHAUSTED, before they
 * are buffered) past this size; Directories of ~100 000 entries fit. */
#define DAEMON_MAX_RECV_MESSAGE (16 << 20)
/* Blob bytes per BlobChunk that Read sends. */
#define DAEMON_READ_CHUNK (64 << 10)
/* Streams a client may have open on one connection. */
#define DAEMON_MAX_STREAMS 256
/* Threads polling the completion queue; a call's handler runs on one, and
 * store work (reads, NAR rendering) blocks only that one. */
#define DAEMON_THREADS 8

/* What gRPC may buffer in all (messages being received, above all): gRPC
 * core 1.51 takes a message's bytes until the whole message is in, however
 * large its length prefix, and checks DAEMON_MAX_RECV_MESSAGE only then;
 * past the quota it stops reading and drops the connections that hold the
 * most. */
#define DAEMON_MEMORY_QUOTA (128 << 20)

struct rpc_tag {
	void (*done)(struct rpc_tag *t, bool ok);
};

struct rpc;

struct daemon {
	struct daemon_config cfg;
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_resource_quota *quota;
	pthread_t threads[DAEMON_THREADS];
	size_t n_threads;

	pthread_mutex_t lock; /* watchers, stopping, shut_down */
	pthread_cond_t cond;
	struct rpc *watchers; /* Health Watch calls waiting for their end */
	bool stopping;	      /* daemon_stop() has begun */
	bool shut_down;	      /* the server's shutdown tag has come */
	struct rpc_tag shutdown_tag;
};

/* A message to send: malloc'd bytes, given to gRPC. */
struct rpc_msg {
	uint8_t *buf;
	size_t len;
	bool set;
};

enum rpc_shape { RPC_UNARY, RPC_SERVER_STREAM, RPC_CLIENT_STREAM, RPC_BIDI };

/* next() results besides 0 (end of stream) and errors. */
#define RPC_MORE 1 /* *out is the next message */
#define RPC_WAIT 2 /* nothing until the call ends (Health Watch) */

struct rpc_method {
	const char *paths[2]; /* "/snix.castore.v1.BlobService/Stat", the tvix one */
	enum rpc_shape shape;
	bool writes;	   /* refused unless --allow-writes */
	size_t state_size; /* zeroed handler state, rpc->state */
	/* RPC_UNARY and RPC_SERVER_STREAM: the request. A unary method sets
	 * its response with rpc_respond(). */
	int (*request)(struct rpc *r, const uint8_t *buf, size_t len);
	/* RPC_SERVER_STREAM: the next message (RPC_MORE), 0 at the end. */
	int (*next)(struct rpc *r, struct rpc_msg *out);
	/* RPC_CLIENT_STREAM: each message, then done() at the stream's end,
	 * which sets the response. */
	int (*message)(struct rpc *r, const uint8_t *buf, size_t len);
	int (*done)(struct rpc *r);
	/* RPC_BIDI: the answer to each message; the call ends OK when the
	 * client's stream does. */
	int (*reply)(struct rpc *r, const uint8_t *buf, size_t len, struct rpc_msg *out);
	/* Frees the state, on every path (may be NULL). */
	void (*release)(struct rpc *r);
};

struct rpc {
	struct rpc_tag step, close;
	struct daemon *d;
	const struct rpc_method *m;
	void *state;

	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *in, *out;
	grpc_slice status_details;
	int cancelled;
	atomic_int refs;
	int phase;
	bool md_sent, closed, watching;
	struct rpc *watch_next, **watch_prev;

	struct rpc_msg resp;
	grpc_status_code code; /* rpc_fail()'s, when `msg` is set */
	char *msg;
};

static inline struct store *rpc_store(const struct rpc *r)
{
	return r->d->cfg.st;
}

/* Sets an explicit status for the failure; returns -ECANCELED for the
 * handler to return. */
int rpc_fail(struct rpc *r, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The status for a negative errno of the store (docs/grpc.md §2.2). */
grpc_status_code rpc_status(int rc);

/* Packs a protobuf-c message into `out` (a unary response or a stream's
 * next message). -ENOMEM. */
int rpc_pack(const void *protobuf_c_message, struct rpc_msg *out);
/* Takes malloc'd bytes as the message. */
void rpc_msg_take(struct rpc_msg *out, uint8_t *buf, size_t len);
int rpc_respond(struct rpc *r, const void *protobuf_c_message);

/* Posts a request for the next incoming call. */
void rpc_accept(struct daemon *d);

/* Ends the Health Watch calls (daemon_stop). */
void rpc_end_watchers(struct daemon *d);

/* The method tables. */
extern const struct rpc_method rpc_blob_methods[];
extern const struct rpc_method rpc_dir_methods[];
extern const struct rpc_method rpc_path_info_methods[];
extern const struct rpc_method rpc_health_methods[];
extern const struct rpc_method rpc_reflection_methods[];

/* Whether `service` ("snix.castore.v1.BlobService", "" for all) is one
 * the daemon serves. */
bool rpc_serves(const char *service, size_t len);

#endif
