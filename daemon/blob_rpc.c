/* blob_rpc.c - BlobService: Stat, Read (server stream), Put (client
 * stream), docs/grpc.md §2. */
#include "daemon/rpc.h"

#include "castore/blob_service.h"
#include "common/err.h"
#include "store/store_write.h"

#include <rpc_blobstore.pb-c.h>
#include <stdlib.h>

#define BLOB(m)                                                                                    \
	{                                                                                          \
		"/snix.castore.v1.BlobService/" m, "/tvix.castore.v1.BlobService/" m               \
	}

/* The digest of a request: INVALID_ARGUMENT unless 32 bytes. */
static int request_digest(struct rpc *r, const ProtobufCBinaryData *b, struct b3_digest *out)
{
	if (b3_digest_from_bytes(b->data, b->len, out) < 0)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "invalid digest length %zu",
				b->len);
	return 0;
}

static int blob_missing(struct rpc *r, const struct b3_digest *d)
{
	char text[B3_TEXT_LEN + 1];

	b3_digest_to_text(d, text);
	return rpc_fail(r, GRPC_STATUS_NOT_FOUND, "blob %s not found", text);
}

/* --- Stat --- */

/* No blob is split into chunks finer than itself: the chunk list is
 * empty, which the protocol reads as "read it whole" (castore.md §1.2). */
static int stat_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	Snix__Castore__V1__StatBlobRequest *rq =
	    snix__castore__v1__stat_blob_request__unpack(NULL, len, buf);
	Snix__Castore__V1__StatBlobResponse resp = SNIX__CASTORE__V1__STAT_BLOB_RESPONSE__INIT;
	struct b3_digest d;
	uint64_t size;
	int rc;

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed StatBlobRequest");
	rc = request_digest(r, &rq->digest, &d);
	snix__castore__v1__stat_blob_request__free_unpacked(rq, NULL);
	if (rc == 0)
		rc = blob_service_stat(rpc_store(r)->blobs, &d, &size);
	if (rc == -ENOENT)
		return blob_missing(r, &d);
	return rc < 0 ? rc : rpc_respond(r, &resp);
}

/* --- Read --- */

struct read_state {
	struct b3_digest want;
	struct blob_reader *rd;
	uint64_t off;
	/* The bytes sent are hashed as they go: a blob that changed under the
	 * store ends in DATA_LOSS instead of OK, whatever the backend checked. */
	struct b3_hasher h;
};

static int read_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct read_state *s = r->state;
	Snix__Castore__V1__ReadBlobRequest *rq =
	    snix__castore__v1__read_blob_request__unpack(NULL, len, buf);
	int rc;

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed ReadBlobRequest");
	rc = request_digest(r, &rq->digest, &s->want);
	snix__castore__v1__read_blob_request__free_unpacked(rq, NULL);
	if (rc == 0)
		rc = blob_service_open_read(rpc_store(r)->blobs, &s->want, &s->rd);
	if (rc == -ENOENT)
		return blob_missing(r, &s->want);
	b3_hasher_init(&s->h);
	return rc;
}

static int read_end(struct rpc *r)
{
	struct read_state *s = r->state;
	char text[B3_TEXT_LEN + 1];
	struct b3_digest got;

	b3_hasher_final(&s->h, &got);
	if (b3_digest_eq(&got, &s->want))
		return 0;
	b3_digest_to_text(&s->want, text);
	return rpc_fail(r, GRPC_STATUS_DATA_LOSS, "blob %s is damaged in the store", text);
}

static int read_next(struct rpc *r, struct rpc_msg *out)
{
	struct read_state *s = r->state;
	Snix__Castore__V1__BlobChunk chunk = SNIX__CASTORE__V1__BLOB_CHUNK__INIT;
	uint64_t left = s->rd->size - s->off;
	size_t n = left < DAEMON_READ_CHUNK ? (size_t)left : DAEMON_READ_CHUNK;
	uint8_t *buf;
	int rc;

	if (n == 0)
		return read_end(r);
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	rc = blob_reader_pread_full(s->rd, buf, n, s->off);
	if (rc == 0) {
		b3_hasher_update(&s->h, buf, n);
		chunk.data = (ProtobufCBinaryData){.len = n, .data = buf};
		rc = rpc_pack(&chunk, out);
	}
	free(buf);
	s->off += n;
	return rc < 0 ? rc : RPC_MORE;
}

static void read_release(struct rpc *r)
{
	struct read_state *s = r->state;

	blob_reader_close(s->rd);
}

/* --- Put --- */

/* The chunks go into a blob writer as they come (a temporary file for the
 * local store) and are hashed as written; the blob is published, made
 * durable and acknowledged with the digest the daemon computed only when
 * the stream ends well. The write session (docs/trust.md "Orphans") is
 * held for the commit alone: a client that stalls half way holds no lock
 * a collection waits for, and a Put that fails or is cancelled leaves
 * nothing. */
struct put_state {
	struct blob_writer *bw;
};

static int put_message(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct put_state *s = r->state;
	Snix__Castore__V1__BlobChunk *c = snix__castore__v1__blob_chunk__unpack(NULL, len, buf);
	int rc;

	if (!c)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed BlobChunk");
	rc = s->bw ? 0 : blob_service_open_write(rpc_store(r)->blobs, &s->bw);
	if (rc == 0 && c->data.len)
		rc = blob_writer_write(s->bw, c->data.data, c->data.len);
	snix__castore__v1__blob_chunk__free_unpacked(c, NULL);
	return rc;
}

static int put_commit(struct rpc *r, struct b3_digest *d)
{
	struct put_state *s = r->state;
	struct store_write *w;
	int rc = store_write_begin(rpc_store(r), &w);

	if (rc < 0)
		return rc;
	rc = blob_writer_commit(s->bw, NULL, d);
	s->bw = NULL;
	if (rc == 0)
		rc = blob_service_flush(rpc_store(r)->blobs);
	store_write_end(w);
	return rc;
}

static int put_done(struct rpc *r)
{
	struct put_state *s = r->state;
	Snix__Castore__V1__PutBlobResponse resp = SNIX__CASTORE__V1__PUT_BLOB_RESPONSE__INIT;
	struct b3_digest d;
	/* An empty blob is no message at all. */
	int rc = s->bw ? 0 : blob_service_open_write(rpc_store(r)->blobs, &s->bw);

	if (rc == 0)
		rc = put_commit(r, &d);
	if (rc < 0)
		return rc;
	resp.digest = (ProtobufCBinaryData){.len = B3_LEN, .data = d.bytes};
	return rpc_respond(r, &resp);
}

static void put_release(struct rpc *r)
{
	struct put_state *s = r->state;

	blob_writer_abort(s->bw);
}

const struct rpc_method rpc_blob_methods[] = {
    {.paths = BLOB("Stat"), .shape = RPC_UNARY, .request = stat_request},
    {.paths = BLOB("Read"),
     .shape = RPC_SERVER_STREAM,
     .state_size = sizeof(struct read_state),
     .request = read_request,
     .next = read_next,
     .release = read_release},
    {.paths = BLOB("Put"),
     .shape = RPC_CLIENT_STREAM,
     .writes = true,
     .state_size = sizeof(struct put_state),
     .message = put_message,
     .done = put_done,
     .release = put_release},
    {.shape = RPC_UNARY},
};
