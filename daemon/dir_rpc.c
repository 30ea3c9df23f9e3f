/* dir_rpc.c - DirectoryService: Get (server stream, one Directory or a
 * closure breadth first), Put (client stream, closure-checked),
 * docs/grpc.md §2. */
#include "daemon/rpc.h"

#include "castore/digest_map.h"
#include "castore/dir_service.h"
#include "common/err.h"

#include <rpc_directory.pb-c.h>
#include <stdlib.h>
#include <string.h>

#define DIRS(m)                                                                                    \
	{                                                                                          \
		"/snix.castore.v1.DirectoryService/" m, "/tvix.castore.v1.DirectoryService/" m     \
	}

/* --- Get --- */

/* The walk keeps a queue of digests still to send and the set of those
 * ever queued, so each Directory goes once, after one that refers to it;
 * one Directory is in memory at a time. */
struct get_state {
	bool recursive;
	struct b3_digest *queue;
	size_t head, len, cap;
	struct digest_map seen;
};

static int enqueue(struct get_state *s, const struct b3_digest *d)
{
	int rc;

	if (digest_map_get(&s->seen, d))
		return 0;
	rc = digest_map_put(&s->seen, d, s, NULL);
	if (rc < 0)
		return rc;
	if (s->len == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct b3_digest *q = reallocarray(s->queue, cap, sizeof(*q));

		if (!q)
			return -ENOMEM;
		s->queue = q;
		s->cap = cap;
	}
	s->queue[s->len++] = *d;
	return 0;
}

static int get_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct get_state *s = r->state;
	Snix__Castore__V1__GetDirectoryRequest *rq =
	    snix__castore__v1__get_directory_request__unpack(NULL, len, buf);
	struct b3_digest d;
	int rc = 0;

	digest_map_init(&s->seen);
	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetDirectoryRequest");
	if (rq->by_what_case != SNIX__CASTORE__V1__GET_DIRECTORY_REQUEST__BY_WHAT_DIGEST)
		rc = rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "by_what is missing");
	else if (b3_digest_from_bytes(rq->digest.data, rq->digest.len, &d) < 0)
		rc = rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "invalid digest length %zu",
			      rq->digest.len);
	s->recursive = rq->recursive;
	snix__castore__v1__get_directory_request__free_unpacked(rq, NULL);
	return rc < 0 ? rc : enqueue(s, &d);
}

static int enqueue_children(struct get_state *s, const struct directory *dir)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < dir->count; i++)
		if (dir->nodes[i].kind == NODE_DIRECTORY)
			rc = enqueue(s, &dir->nodes[i].digest);
	return rc;
}

/* A root the store lacks: NOT_FOUND alone, an empty stream in a
 * recursive walk (castore.md §1.3); a Directory missing below a stored
 * one is damage. */
static int get_missing(struct rpc *r, const struct b3_digest *d)
{
	struct get_state *s = r->state;
	char text[B3_TEXT_LEN + 1];

	b3_digest_to_text(d, text);
	if (s->head > 1)
		return rpc_fail(r, GRPC_STATUS_DATA_LOSS,
				"directory %s is referenced but not in the store", text);
	if (s->recursive)
		return 0;
	return rpc_fail(r, GRPC_STATUS_NOT_FOUND, "directory %s not found", text);
}

static int get_next(struct rpc *r, struct rpc_msg *out)
{
	struct get_state *s = r->state;
	struct directory *dir;
	const struct b3_digest *d;
	uint8_t *buf;
	size_t len;
	int rc;

	if (s->head == s->len || (!s->recursive && s->head == 1))
		return 0;
	d = &s->queue[s->head++];
	rc = dir_service_get(rpc_store(r)->dirs, d, &dir);
	if (rc == -ENOENT)
		return get_missing(r, d);
	if (rc < 0)
		return rc;
	rc = s->recursive ? enqueue_children(s, dir) : 0;
	if (rc == 0)
		rc = directory_encode(dir, &buf, &len);
	directory_free(dir);
	if (rc < 0)
		return rc;
	/* The empty Directory encodes to no bytes and no buffer. */
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	rpc_msg_take(out, buf, len);
	return RPC_MORE;
}

static void get_release(struct rpc *r)
{
	struct get_state *s = r->state;

	free(s->queue);
	digest_map_release(&s->seen);
}

/* --- Put --- */

/* Leaves to root through a dir_putter: every Directory decoded and
 * validated, each reference to one sent earlier in the stream, sizes by
 * the store's formula, one root; nothing is stored unless all of it
 * holds (castore.md §2.5, docs/castore.md): the whole closure, in one
 * put_batch at the end, so that a client stalled half way holds no write
 * session (and no collection waits for it). */
struct put_state {
	struct dir_putter *p;
};

static int put_message(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct put_state *s = r->state;
	struct directory *dir;
	struct b3_digest d;
	int rc = 0;

	if (!s->p)
		rc = dir_putter_new_whole(rpc_store(r)->dirs, rpc_store(r)->size_formula, &s->p);
	if (rc == 0)
		rc = directory_decode(buf, len, &dir);
	if (rc == 0)
		rc = dir_putter_put(s->p, dir, &d);
	return rc;
}

static int put_done(struct rpc *r)
{
	struct put_state *s = r->state;
	Snix__Castore__V1__PutDirectoryResponse resp =
	    SNIX__CASTORE__V1__PUT_DIRECTORY_RESPONSE__INIT;
	struct b3_digest root;
	int rc;

	if (!s->p)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "no Directory was sent");
	rc = dir_putter_close(s->p, &root);
	s->p = NULL;
	if (rc < 0)
		return rc;
	resp.root_digest = (ProtobufCBinaryData){.len = B3_LEN, .data = root.bytes};
	return rpc_respond(r, &resp);
}

static void put_release(struct rpc *r)
{
	struct put_state *s = r->state;

	dir_putter_free(s->p);
}

const struct rpc_method rpc_dir_methods[] = {
    {.paths = DIRS("Get"),
     .shape = RPC_SERVER_STREAM,
     .state_size = sizeof(struct get_state),
     .request = get_request,
     .next = get_next,
     .release = get_release},
    {.paths = DIRS("Put"),
     .shape = RPC_CLIENT_STREAM,
     .writes = true,
     .state_size = sizeof(struct put_state),
     .message = put_message,
     .done = put_done,
     .release = put_release},
    {.shape = RPC_UNARY},
};
