/* rpc.c - a call's life: accept, dispatch, receive, send, finish
 * (see rpc.h for the two tags a call holds). */
#include "daemon/rpc.h"

#include "common/err.h"
#include "common/log.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

enum phase { P_RECV, P_SEND, P_FINISH };

static const struct rpc_method *const method_tables[] = {rpc_blob_methods,	 rpc_dir_methods,
							 rpc_path_info_methods,	 rpc_health_methods,
							 rpc_reflection_methods, NULL};

static void step_done(struct rpc_tag *t, bool ok);

/* --- statuses --- */

int rpc_fail(struct rpc *r, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	free(r->msg);
	va_start(ap, fmt);
	if (vasprintf(&r->msg, fmt, ap) < 0)
		r->msg = NULL;
	va_end(ap);
	r->code = code;
	return -ECANCELED;
}

grpc_status_code rpc_status(int rc)
{
	switch (-rc) {
	case ENOENT:
		return GRPC_STATUS_NOT_FOUND;
	case EINVAL:
	case ELOOP:
	case EOVERFLOW:
	case ENAMETOOLONG:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case EEXIST:
		return GRPC_STATUS_ALREADY_EXISTS;
	case EROFS:
	case EPERM:
	case EACCES:
		return GRPC_STATUS_PERMISSION_DENIED;
	case ENOMEM:
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case EIO:
		return GRPC_STATUS_DATA_LOSS;
	case EBUSY:
	case EAGAIN:
		return GRPC_STATUS_UNAVAILABLE;
	case ENOTSUP:
		return GRPC_STATUS_UNIMPLEMENTED;
	case ETIMEDOUT:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

/* --- messages --- */

void rpc_msg_take(struct rpc_msg *out, uint8_t *buf, size_t len)
{
	out->buf = buf;
	out->len = len;
	out->set = true;
}

int rpc_pack(const void *msg, struct rpc_msg *out)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	/* malloc(0) may be NULL: an empty message still needs a buffer. */
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	rpc_msg_take(out, buf, len);
	return 0;
}

int rpc_respond(struct rpc *r, const void *msg)
{
	return rpc_pack(msg, &r->resp);
}

static void free_slice(void *p, size_t len)
{
	free(p);
}

/* The bytes go to gRPC without a copy; it frees them with the slice. */
static grpc_byte_buffer *msg_buffer(struct rpc_msg *m)
{
	grpc_slice s =
	    m->len ? grpc_slice_new_with_len(m->buf, m->len, free_slice) : grpc_empty_slice();
	grpc_byte_buffer *bb;

	if (!m->len)
		free(m->buf);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	*m = (struct rpc_msg){0};
	return bb;
}

/* One contiguous slice of a received message. */
static bool flatten(grpc_byte_buffer *bb, grpc_slice *out)
{
	grpc_byte_buffer_reader rd;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return false;
	*out = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return true;
}

/* --- the call's end --- */

static void rpc_free(struct rpc *r)
{
	if (r->call)
		grpc_call_unref(r->call);
	grpc_call_details_destroy(&r->details);
	grpc_metadata_array_destroy(&r->md);
	if (r->in)
		grpc_byte_buffer_destroy(r->in);
	if (r->out)
		grpc_byte_buffer_destroy(r->out);
	grpc_slice_unref(r->status_details);
	free(r->resp.buf);
	free(r->msg);
	free(r);
}

static void rpc_unref(struct rpc *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		rpc_free(r);
}

static void release_state(struct rpc *r)
{
	if (r->state && r->m->release)
		r->m->release(r);
	free(r->state);
	r->state = NULL;
}

static void log_call(const struct rpc *r, grpc_status_code code, const char *msg)
{
	if (!r->d->cfg.verbose)
		return;
	log_info("%.*s: %d%s%s", (int)GRPC_SLICE_LENGTH(r->details.method),
		 (const char *)GRPC_SLICE_START_PTR(r->details.method), (int)code, msg ? " " : "",
		 msg ? msg : "");
}

/* Sends the status (with the unary response, if any) in one batch. */
static void finish(struct rpc *r, grpc_status_code code, const char *msg)
{
	grpc_op ops[3] = {0}, *op = ops;

	release_state(r);
	log_call(r, code, msg);
	if (!r->md_sent) {
		op->op = GRPC_OP_SEND_INITIAL_METADATA;
		op++;
	}
	if (code == GRPC_STATUS_OK && r->resp.set) {
		r->out = msg_buffer(&r->resp);
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = r->out;
		op++;
	}
	r->status_details = msg ? grpc_slice_from_copied_string(msg) : grpc_empty_slice();
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &r->status_details;
	op++;
	r->phase = P_FINISH;
	if (grpc_call_start_batch(r->call, ops, (size_t)(op - ops), &r->step, NULL) !=
	    GRPC_CALL_OK) {
		log_error("cannot end a gRPC call");
		rpc_unref(r);
	}
}

static void finish_rc(struct rpc *r, int rc)
{
	if (rc >= 0)
		finish(r, GRPC_STATUS_OK, NULL);
	else if (r->msg)
		finish(r, r->code, r->msg);
	else
		finish(r, rpc_status(rc), sf_errmsg(rc));
	sf_err_clear();
}

/* --- steps --- */

static void start_batch(struct rpc *r, grpc_op *ops, size_t n, int phase)
{
	r->phase = phase;
	if (grpc_call_start_batch(r->call, ops, n, &r->step, NULL) != GRPC_CALL_OK)
		finish(r, GRPC_STATUS_INTERNAL, "cannot start a gRPC batch");
}

static void recv_next(struct rpc *r)
{
	grpc_op ops[2] = {0}, *op = ops;

	if (!r->md_sent) {
		op->op = GRPC_OP_SEND_INITIAL_METADATA;
		op++;
		r->md_sent = true;
	}
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &r->in;
	op++;
	start_batch(r, ops, (size_t)(op - ops), P_RECV);
}

/* Health Watch: parked until the close tag comes (or daemon_stop). */
static void park(struct rpc *r)
{
	struct daemon *d = r->d;
	bool closed;

	pthread_mutex_lock(&d->lock);
	closed = r->closed || d->stopping;
	if (!closed) {
		r->watching = true;
		r->watch_next = d->watchers;
		if (d->watchers)
			d->watchers->watch_prev = &r->watch_next;
		r->watch_prev = &d->watchers;
		d->watchers = r;
	}
	pthread_mutex_unlock(&d->lock);
	if (closed)
		finish(r, GRPC_STATUS_UNAVAILABLE, "the stream ended");
}

static void send_msg(struct rpc *r, struct rpc_msg *m)
{
	grpc_op op = {0};

	r->out = msg_buffer(m);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = r->out;
	start_batch(r, &op, 1, P_SEND);
}

static void send_next(struct rpc *r)
{
	struct rpc_msg m = {0};
	int rc = r->m->next(r, &m);

	if (rc == RPC_WAIT) {
		park(r);
		return;
	}
	if (rc != RPC_MORE) {
		finish_rc(r, rc);
		return;
	}
	send_msg(r, &m);
}

/* A message of the client arrived (or its stream ended: r->in NULL). */
static void received(struct rpc *r)
{
	grpc_byte_buffer *in = r->in;
	grpc_slice s;
	int rc;

	r->in = NULL;
	if (!in && r->m->shape == RPC_BIDI) {
		finish(r, GRPC_STATUS_OK, NULL);
		return;
	}
	if (!in && r->m->shape == RPC_CLIENT_STREAM) {
		finish_rc(r, r->m->done(r));
		return;
	}
	if (!in) {
		finish(r, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
		return;
	}
	if (!flatten(in, &s)) {
		grpc_byte_buffer_destroy(in);
		finish(r, GRPC_STATUS_INVALID_ARGUMENT, "cannot decompress the message");
		return;
	}
	grpc_byte_buffer_destroy(in);
	if (r->m->shape == RPC_BIDI) {
		struct rpc_msg m = {0};

		rc = r->m->reply(r, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), &m);
		grpc_slice_unref(s);
		if (rc < 0)
			finish_rc(r, rc);
		else
			send_msg(r, &m);
		return;
	}
	if (r->m->shape == RPC_CLIENT_STREAM)
		rc = r->m->message(r, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
	else
		rc = r->m->request(r, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
	grpc_slice_unref(s);
	if (rc < 0 || r->m->shape == RPC_UNARY) {
		finish_rc(r, rc);
		return;
	}
	if (r->m->shape == RPC_CLIENT_STREAM) {
		recv_next(r);
		return;
	}
	send_next(r);
}

static void step_done(struct rpc_tag *t, bool ok)
{
	struct rpc *r = container_of(t, struct rpc, step);

	if (r->phase == P_FINISH) {
		rpc_unref(r);
		return;
	}
	if (r->out) {
		grpc_byte_buffer_destroy(r->out);
		r->out = NULL;
	}
	/* A batch fails when the call is cancelled, by the client, its
	 * deadline or the server's shutdown: nothing will reach the client. */
	if (!ok) {
		finish(r, GRPC_STATUS_CANCELLED, "cancelled");
		return;
	}
	if (r->phase == P_RECV) {
		received(r);
		return;
	}
	if (r->m->shape == RPC_BIDI) {
		recv_next(r);
		return;
	}
	send_next(r);
}

static void close_done(struct rpc_tag *t, bool ok)
{
	struct rpc *r = container_of(t, struct rpc, close);
	struct daemon *d = r->d;
	bool parked;

	pthread_mutex_lock(&d->lock);
	r->closed = true;
	parked = r->watching;
	if (parked) {
		*r->watch_prev = r->watch_next;
		if (r->watch_next)
			r->watch_next->watch_prev = r->watch_prev;
		r->watching = false;
	}
	pthread_mutex_unlock(&d->lock);
	if (parked)
		finish(r, GRPC_STATUS_CANCELLED, "the stream was closed");
	rpc_unref(r);
}

void rpc_end_watchers(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	for (struct rpc *r = d->watchers; r; r = r->watch_next)
		grpc_call_cancel_with_status(r->call, GRPC_STATUS_UNAVAILABLE,
					     "the daemon is shutting down", NULL);
	pthread_mutex_unlock(&d->lock);
}

/* --- a new call --- */

static const struct rpc_method *find_method(grpc_slice path)
{
	size_t len = GRPC_SLICE_LENGTH(path);
	const char *p = (const char *)GRPC_SLICE_START_PTR(path);

	for (size_t t = 0; method_tables[t]; t++)
		for (const struct rpc_method *m = method_tables[t]; m->paths[0]; m++)
			for (int i = 0; i < 2 && m->paths[i]; i++)
				if (strlen(m->paths[i]) == len && !memcmp(m->paths[i], p, len))
					return m;
	return NULL;
}

static void start(struct rpc *r)
{
	grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};

	op.data.recv_close_on_server.cancelled = &r->cancelled;
	atomic_store(&r->refs, 2);
	if (grpc_call_start_batch(r->call, &op, 1, &r->close, NULL) != GRPC_CALL_OK) {
		atomic_store(&r->refs, 1);
		r->closed = true;
	}
	r->m = find_method(r->details.method);
	if (!r->m) {
		finish(r, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (r->m->writes && !r->d->cfg.allow_writes) {
		finish(r, GRPC_STATUS_PERMISSION_DENIED,
		       "the daemon is read-only (start it with --allow-writes)");
		return;
	}
	r->state = calloc(1, r->m->state_size ? r->m->state_size : 1);
	if (!r->state) {
		finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	recv_next(r);
}

static void accepted(struct rpc_tag *t, bool ok)
{
	struct rpc *r = container_of(t, struct rpc, step);

	/* Failure: the server is shutting down, and takes no more calls. */
	if (!ok) {
		atomic_store(&r->refs, 1);
		rpc_unref(r);
		return;
	}
	rpc_accept(r->d);
	r->step.done = step_done;
	start(r);
}

void rpc_accept(struct daemon *d)
{
	struct rpc *r = calloc(1, sizeof(*r));

	if (!r) {
		log_error("out of memory: a gRPC call slot is lost");
		return;
	}
	r->d = d;
	r->step.done = accepted;
	r->close.done = close_done;
	r->status_details = grpc_empty_slice();
	grpc_call_details_init(&r->details);
	grpc_metadata_array_init(&r->md);
	atomic_init(&r->refs, 1);
	if (grpc_server_request_call(d->server, &r->call, &r->details, &r->md, d->cq, d->cq,
				     &r->step) != GRPC_CALL_OK)
		rpc_free(r);
}
