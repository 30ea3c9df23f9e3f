/* path_info_rpc.c - PathInfoService: Get, Put, CalculateNAR (unary), List
 * (server stream), docs/grpc.md §2. */
#include "daemon/rpc.h"

#include "common/err.h"
#include "store/nar.h"
#include "store/nar_load.h"
#include "store/path_info.h"
#include "store/store_write.h"

#include <rpc_pathinfo.pb-c.h>
#include <stdlib.h>
#include <string.h>

#define PATHS(m)                                                                                   \
	{                                                                                          \
		"/snix.store.v1.PathInfoService/" m, "/tvix.store.v1.PathInfoService/" m           \
	}

static int respond_path_info(struct rpc *r, const struct path_info *pi)
{
	uint8_t *buf;
	size_t len;
	int rc = path_info_encode(pi, &buf, &len);

	if (rc == 0)
		rpc_msg_take(&r->resp, buf, len);
	return rc;
}

/* --- Get --- */

static int get_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	Snix__Store__V1__GetPathInfoRequest *rq =
	    snix__store__v1__get_path_info_request__unpack(NULL, len, buf);
	uint8_t digest[STORE_PATH_DIGEST_LEN];
	struct path_info *pi;
	int rc = 0;

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetPathInfoRequest");
	/* The reference answers a request without by_what so (castore.md §1.8). */
	if (rq->by_what_case != SNIX__STORE__V1__GET_PATH_INFO_REQUEST__BY_WHAT_BY_OUTPUT_HASH)
		rc = rpc_fail(r, GRPC_STATUS_UNIMPLEMENTED, "by_what is missing");
	else if (rq->by_output_hash.len != STORE_PATH_DIGEST_LEN)
		rc = rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "invalid output hash length %zu",
			      rq->by_output_hash.len);
	else
		memcpy(digest, rq->by_output_hash.data, STORE_PATH_DIGEST_LEN);
	snix__store__v1__get_path_info_request__free_unpacked(rq, NULL);
	if (rc < 0)
		return rc;
	rc = path_info_service_get(rpc_store(r)->paths, digest, &pi);
	if (rc == -ENOENT)
		return rpc_fail(r, GRPC_STATUS_NOT_FOUND, "path info not found");
	if (rc < 0)
		return rc;
	rc = respond_path_info(r, pi);
	path_info_free(pi);
	return rc;
}

/* --- root nodes: present, and their NAR --- */

/* NOT_FOUND (with `missing` as the status) unless the root's own object
 * is stored; a symlink has none. */
static int root_present(struct rpc *r, const struct node *root, grpc_status_code missing)
{
	struct store *st = rpc_store(r);
	char text[B3_TEXT_LEN + 1];
	struct directory *dir;
	uint64_t size;
	int rc = 0;

	if (root->kind == NODE_DIRECTORY) {
		rc = dir_service_get(st->dirs, &root->digest, &dir);
		if (rc == 0)
			directory_free(dir);
	} else if (root->kind == NODE_FILE) {
		rc = blob_service_stat(st->blobs, &root->digest, &size);
	}
	if (rc != -ENOENT)
		return rc;
	b3_digest_to_text(&root->digest, text);
	return rpc_fail(r, missing, "root %s %s is not in the store",
			root->kind == NODE_DIRECTORY ? "directory" : "blob", text);
}

static int calculate_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	Snix__Store__V1__CalculateNARResponse resp = SNIX__STORE__V1__CALCULATE_NARRESPONSE__INIT;
	struct nar_summary sum;
	uint8_t *arena = NULL;
	struct node root;
	int rc = node_decode_entry(buf, len, false, &root, &arena);

	if (rc < 0)
		rc = rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "invalid root node: %s",
			      sf_errmsg(rc));
	if (rc == 0)
		rc = root_present(r, &root, GRPC_STATUS_NOT_FOUND);
	if (rc == 0)
		rc = nar_render(rpc_store(r)->blobs, rpc_store(r)->dirs, &root, NULL, NULL, &sum);
	free(arena);
	if (rc < 0)
		return rc;
	resp.nar_size = sum.size;
	resp.nar_sha256 = (ProtobufCBinaryData){.len = 32, .data = sum.sha256};
	return rpc_respond(r, &resp);
}

/* --- Put --- */

/* docs/trust.md: a PathInfo is a claim about content the store must hold.
 * Its root must be stored, its NAR hash and size are what rendering the
 * root gives, its references registered, a CA true; then the
 * immutability rule decides. Checked and registered inside a write
 * session, so no collection takes the content away meanwhile. */
static int put_check_nar(struct rpc *r, const struct path_info *pi)
{
	struct store *st = rpc_store(r);
	char want[NAR_HASH_TEXT_LEN], got[NAR_HASH_TEXT_LEN];
	struct nar_summary sum;
	int rc = root_present(r, &pi->root, GRPC_STATUS_FAILED_PRECONDITION);

	if (rc == 0)
		rc = nar_render(st->blobs, st->dirs, &pi->root, NULL, NULL, &sum);
	if (rc == -EIO || rc == -ENOENT)
		return rpc_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "cannot render the NAR: %s",
				sf_errmsg(rc));
	if (rc < 0)
		return rc;
	if (sum.size == pi->nar_size && !memcmp(sum.sha256, pi->nar_sha256, 32))
		return 0;
	nar_hash_text(pi->nar_sha256, want);
	nar_hash_text(sum.sha256, got);
	return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			"NAR hash mismatch: the path info says %s (%llu bytes), the content gives "
			"%s (%llu bytes)",
			want, (unsigned long long)pi->nar_size, got, (unsigned long long)sum.size);
}

static int put_register(struct rpc *r, const struct path_info *pi)
{
	struct store *st = rpc_store(r);
	struct store_write *w;
	int rc = store_write_begin(st, &w);

	if (rc < 0)
		return rc;
	rc = put_check_nar(r, pi);
	if (rc == 0)
		rc = nar_load_register(st, pi, NULL);
	store_write_end(w);
	/* A reference not registered is the client's to upload first. */
	if (rc == -ENOENT)
		return rpc_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "%s", sf_errmsg(rc));
	return rc;
}

static int put_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct path_info *pi, *stored;
	int rc = path_info_decode(buf, len, &pi);

	if (rc < 0)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "invalid path info: %s",
				sf_errmsg(rc));
	rc = put_register(r, pi);
	/* The answer is what the store holds now: the first registration's
	 * fields, with any signatures merged in. */
	if (rc == 0)
		rc = path_info_service_get(rpc_store(r)->paths, pi->path.digest, &stored);
	path_info_free(pi);
	if (rc < 0)
		return rc;
	rc = respond_path_info(r, stored);
	path_info_free(stored);
	return rc;
}

/* --- List --- */

/* One PathInfo per step, resuming the listing after the last cursor sent,
 * so a long listing holds no transaction and no list in memory. */
struct list_state {
	uint64_t cursor;
	struct rpc_msg *out;
	bool got;
};

static int list_one(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct list_state *s = ctx;
	uint8_t *buf;
	size_t len;
	int rc = path_info_encode(pi, &buf, &len);

	if (rc < 0)
		return rc;
	rpc_msg_take(s->out, buf, len);
	s->cursor = cursor;
	s->got = true;
	return 1;
}

static int list_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	Snix__Store__V1__ListPathInfoRequest *rq =
	    snix__store__v1__list_path_info_request__unpack(NULL, len, buf);

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListPathInfoRequest");
	snix__store__v1__list_path_info_request__free_unpacked(rq, NULL);
	return 0;
}

static int list_next(struct rpc *r, struct rpc_msg *out)
{
	struct list_state *s = r->state;
	int rc;

	s->out = out;
	s->got = false;
	rc = path_info_service_list(rpc_store(r)->paths, s->cursor, list_one, s);
	if (rc < 0)
		return rc;
	return s->got ? RPC_MORE : 0;
}

const struct rpc_method rpc_path_info_methods[] = {
    {.paths = PATHS("Get"), .shape = RPC_UNARY, .request = get_request},
    {.paths = PATHS("Put"), .shape = RPC_UNARY, .writes = true, .request = put_request},
    {.paths = PATHS("CalculateNAR"), .shape = RPC_UNARY, .request = calculate_request},
    {.paths = PATHS("List"),
     .shape = RPC_SERVER_STREAM,
     .state_size = sizeof(struct list_state),
     .request = list_request,
     .next = list_next},
    {.shape = RPC_UNARY},
};
