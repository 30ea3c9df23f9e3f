/* grpc_rpc.c - one gRPC call with its deadline, over gRPC core's C API.
 *
 * The deadline is ours (docs/limits.md "Deadlines", docs/grpc.md): every
 * wait on the call's completion queue ends at start + the base deadline +
 * the bytes moved so far (sent and received) at the minimum rate, so a stalled peer costs
 * at most the base deadline past its last message, and a blob's stream
 * may take as long as its size needs. A missed wait cancels the call. */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *status_name(grpc_status_code s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s]
									    : "status";
}

static gpr_timespec mono_in(uint64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* Waits for the event of `tag` (the call's batch: r; its status:
 * &r->status) within the call's deadline, noting the status's event if
 * it comes first. 1 if the batch succeeded, 0 if it failed (the status
 * says why), -EIO if the deadline passed (the call is cancelled then). */
static int wait_for(struct grpc_rpc *r, void *tag)
{
	uint64_t limit = r->start_ms + deadline_ms(&r->conn->rule, r->moved);
	uint64_t now;
	grpc_event ev;

	for (;;) {
		now = deadline_now_ms();
		ev =
		    grpc_completion_queue_next(r->cq, mono_in(limit > now ? limit - now : 0), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		if (ev.tag == &r->status)
			r->status_done = true;
		if (ev.tag == tag)
			return ev.success ? 1 : 0;
	}
	/* Cancelling completes the batch at once; its event must still be
	 * taken before the queue can be destroyed (the status's, if any,
	 * is taken by grpc_rpc_finish). */
	grpc_call_cancel(r->call, NULL);
	for (;;) {
		ev = grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE || ev.tag == tag)
			break;
		if (ev.tag == &r->status)
			r->status_done = true;
	}
	r->ended = true;
	return sf_err(-EIO, "%s: %s: no answer within the deadline of %llu ms", r->conn->location,
		      r->method, (unsigned long long)(limit - r->start_ms));
}

/* Runs one batch and waits for it (wait_for). */
static int run_batch(struct grpc_rpc *r, const grpc_op *ops, size_t n)
{
	if (grpc_call_start_batch(r->call, ops, n, r, NULL) != GRPC_CALL_OK)
		return sf_err(-EIO, "%s: %s: cannot start a call", r->conn->location, r->method);
	return wait_for(r, r);
}

/* Asks for the call's status now, once the call has started. */
static int post_status(struct grpc_rpc *r)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &r->trailing;
	op.data.recv_status_on_client.status = &r->status;
	op.data.recv_status_on_client.status_details = &r->status_details;
	if (grpc_call_start_batch(r->call, &op, 1, &r->status, NULL) != GRPC_CALL_OK)
		return sf_err(-EIO, "%s: %s: cannot start a call", r->conn->location, r->method);
	r->status_posted = true;
	return 0;
}

static int read_status(struct grpc_rpc *r);

/* Makes the call and its queue; nothing is sent yet. */
static int rpc_create(struct grpc_conn *c, const char *pkg, const char *service, const char *method,
		      struct grpc_rpc *out)
{
	grpc_slice path;

	memset(out, 0, sizeof(*out));
	out->conn = c;
	out->status = GRPC_STATUS_UNKNOWN;
	out->status_details = grpc_empty_slice();
	snprintf(out->method, sizeof(out->method), "/%s.%s/%s", pkg, service, method);
	grpc_metadata_array_init(&out->initial);
	grpc_metadata_array_init(&out->trailing);
	out->start_ms = deadline_now_ms();
	out->cq = grpc_completion_queue_create_for_next(NULL);
	if (!out->cq)
		return -ENOMEM;
	/* No gRPC deadline: ours, checked at every wait, allows for the bytes
	 * moved. The path is copied into a counted slice: gRPC keeps it
	 * past the call (its HPACK table compares later paths with it). */
	path = grpc_slice_from_copied_string(out->method);
	out->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, out->cq,
					     path, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	grpc_slice_unref(path);
	return out->call ? 0 : -ENOMEM;
}

/* A batch that sends one message (and maybe more ops) and counts it;
 * with `status`, the status is asked for once it has started. */
static int send_message(struct grpc_rpc *r, const void *msg, size_t len, grpc_op *more,
			size_t n_more, bool status)
{
	grpc_slice body = grpc_slice_from_copied_buffer(msg, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&body, 1);
	grpc_op ops[5];
	int rc;

	grpc_slice_unref(body);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_MESSAGE;
	ops[0].data.send_message.send_message = bb;
	if (n_more)
		memcpy(ops + 1, more, n_more * sizeof(*more));
	if (grpc_call_start_batch(r->call, ops, 1 + n_more, r, NULL) != GRPC_CALL_OK)
		rc = sf_err(-EIO, "%s: %s: cannot start a call", r->conn->location, r->method);
	else if (status && (rc = post_status(r)) < 0)
		(void)wait_for(r, r); /* the batch's event, before the queue goes */
	else
		rc = wait_for(r, r);
	grpc_byte_buffer_destroy(bb);
	r->moved += len;
	return rc;
}

/* One batch sends the request and receives the first message, and the
 * status is asked for alongside: a small blob's Read (one message, then
 * the status, usually in the same packet) costs one wait, not four. */
int grpc_rpc_start(struct grpc_conn *c, const char *pkg, const char *service, const char *method,
		   const void *req, size_t len, struct grpc_rpc *out)
{
	grpc_op ops[4];
	int rc = rpc_create(c, pkg, service, method, out);

	if (rc < 0)
		return rc;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[2].data.recv_initial_metadata.recv_initial_metadata = &out->initial;
	ops[3].op = GRPC_OP_RECV_MESSAGE;
	ops[3].data.recv_message.recv_message = &out->first;
	rc = send_message(out, req, len, ops, 4, true);
	/* A failed batch (peer unreachable) shows in the status. */
	out->have_first = rc >= 0;
	return rc < 0 ? rc : 0;
}

int grpc_rpc_open_upload(struct grpc_conn *c, const char *pkg, const char *service,
			 const char *method, struct grpc_rpc *out)
{
	grpc_op op;
	int rc = rpc_create(c, pkg, service, method, out);

	if (rc < 0)
		return rc;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	rc = run_batch(out, &op, 1);
	if (rc >= 0)
		rc = post_status(out);
	return rc < 0 ? rc : 0;
}

int grpc_rpc_send(struct grpc_rpc *r, const void *msg, size_t len)
{
	int rc;

	if (r->ended)
		return sf_err(-EIO, "%s: %s: the upload is over", r->conn->location, r->method);
	rc = send_message(r, msg, len, NULL, 0, false);
	/* A refused send: the stream is over, and the status says why. */
	if (rc == 0 && (rc = read_status(r)) == 0)
		rc = sf_err(-EIO, "%s: %s: the server ended the upload early", r->conn->location,
			    r->method);
	return rc < 0 ? rc : 0;
}

int grpc_rpc_close_send(struct grpc_rpc *r)
{
	grpc_op ops[2];
	int rc;

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &r->initial;
	rc = r->ended ? 0 : run_batch(r, ops, 2);
	return rc < 0 ? rc : 0;
}

/* The call's final status as an errno with one message. */
static int read_status(struct grpc_rpc *r)
{
	grpc_status_code status = r->status;
	char *text;
	int rc = 0;

	if (!r->status_posted)
		rc = post_status(r);
	if (rc == 0 && !r->status_done)
		rc = wait_for(r, &r->status);
	r->ended = true;
	if (rc < 0)
		return rc;
	status = r->status;
	if (status == GRPC_STATUS_OK)
		return 0;
	if (status == GRPC_STATUS_NOT_FOUND)
		return -ENOENT;
	text = grpc_slice_to_c_string(r->status_details);
	rc = sf_err(-EIO, "%s: %s: %s%s%s", r->conn->location, r->method, status_name(status),
		    text && *text ? ": " : "", text ? text : "");
	gpr_free(text);
	return rc;
}

static int copy_message(grpc_byte_buffer *bb, uint8_t **msg, size_t *len)
{
	grpc_byte_buffer_reader rd;
	grpc_slice all;
	size_t n;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return sf_err(-EIO, "cannot read a gRPC message");
	all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	n = GRPC_SLICE_LENGTH(all);
	/* One byte more, so an empty message is not a NULL pointer. */
	*msg = malloc(n + 1);
	if (*msg)
		memcpy(*msg, GRPC_SLICE_START_PTR(all), n);
	grpc_slice_unref(all);
	if (!*msg)
		return -ENOMEM;
	*len = n;
	return 0;
}

int grpc_rpc_next(struct grpc_rpc *r, uint8_t **msg, size_t *len)
{
	grpc_byte_buffer *bb = NULL;
	grpc_op op;
	int rc;

	*msg = NULL;
	*len = 0;
	if (r->ended)
		return sf_err(-EIO, "%s: %s: read past the end", r->conn->location, r->method);
	if (r->have_first) {
		r->have_first = false;
		bb = r->first;
		r->first = NULL;
	} else {
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &bb;
		rc = run_batch(r, &op, 1);
		if (rc < 0)
			return rc;
	}
	if (!bb)
		return read_status(r);
	rc = copy_message(bb, msg, len);
	grpc_byte_buffer_destroy(bb);
	if (rc == 0)
		r->moved += *len;
	return rc;
}

void grpc_rpc_finish(struct grpc_rpc *r)
{
	/* Only the status's batch may be in flight here: cancelling ends it,
	 * and its event is taken with the queue's shutdown; its status is not
	 * read, so the caller's message (why it gave up on the call) stays
	 * the recorded one. */
	if (r->call && !r->ended)
		grpc_call_cancel(r->call, NULL);
	if (r->call)
		grpc_call_unref(r->call);
	if (r->cq) {
		grpc_completion_queue_shutdown(r->cq);
		while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
			   .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(r->cq);
	}
	if (r->first)
		grpc_byte_buffer_destroy(r->first);
	grpc_slice_unref(r->status_details);
	grpc_metadata_array_destroy(&r->initial);
	grpc_metadata_array_destroy(&r->trailing);
	r->call = NULL;
	r->cq = NULL;
	r->first = NULL;
	r->status_details = grpc_empty_slice();
}

int grpc_unary(struct grpc_conn *c, const char *pkg, const char *service, const char *method,
	       const void *req, size_t len, uint8_t **resp, size_t *resp_len)
{
	struct grpc_rpc r;
	uint8_t *extra;
	size_t n;
	int rc = grpc_rpc_start(c, pkg, service, method, req, len, &r);

	if (rc == 0)
		rc = grpc_rpc_next(&r, resp, resp_len);
	if (rc == 0 && !*resp)
		rc = sf_err(-EIO, "%s: %s: no response message", c->location, r.method);
	if (rc == 0) {
		rc = grpc_rpc_next(&r, &extra, &n);
		if (rc == 0 && extra)
			rc = sf_err(-EIO, "%s: %s: more than one response message", c->location,
				    r.method);
		free(extra);
		if (rc < 0) {
			free(*resp);
			*resp = NULL;
		}
	}
	grpc_rpc_finish(&r);
	return rc;
}
