/* grpc_dirs.c - DirectoryService client: Get of a Directory (its subtree
 * kept ahead, grpc_dirahead.c), validated (castore's directory_decode) and
 * checked against the asked-for digest. */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "rpc_directory.pb-c.h"

#include <stdlib.h>
#include <string.h>

struct gdir_service {
	struct dir_service base;
	struct grpc_conn *conn;
	struct grpc_dirahead ahead;
};

/* One received Directory: decoded, validated, and its digest `want`. */
static int accept_dir(struct gdir_service *s, const struct b3_digest *want, const uint8_t *msg,
		      size_t len, struct directory **out)
{
	char text[B3_TEXT_LEN + 1];
	struct b3_digest have;
	struct directory *d;
	int rc = directory_decode(msg, len, &d);

	b3_digest_to_text(want, text);
	if (rc < 0)
		return sf_err(-EIO, "%s: Directory %s is invalid: %s", s->conn->location, text,
			      sf_errmsg(rc));
	rc = directory_digest(d, &have);
	if (rc == 0 && !b3_digest_eq(&have, want))
		rc = sf_err(-EIO, "%s: the Directory sent for %s has another digest",
			    s->conn->location, text);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* A Get of `dg`, the root, into *out; if `recursive`, the Directories
 * below it are kept ahead of their own Gets (grpc_dirahead.c) until this
 * stream's share is reached, where the stream is cancelled. Once the root has come,
 * a failure later in the stream only ends it: what was kept was checked,
 * and a Directory it did not bring is asked for when it is needed. */
static int get_ahead(struct gdir_service *s, const struct b3_digest *dg, bool recursive,
		     struct directory **out)
{
	Snix__Castore__V1__GetDirectoryRequest req = SNIX__CASTORE__V1__GET_DIRECTORY_REQUEST__INIT;
	uint8_t buf[64], *msg = NULL;
	struct directory *root = NULL, *d;
	struct b3_digest digest;
	struct dir_recv *v = NULL;
	struct grpc_rpc r;
	size_t len, kept = 0;
	int rc;

	req.by_what_case = SNIX__CASTORE__V1__GET_DIRECTORY_REQUEST__BY_WHAT_DIGEST;
	req.digest.data = (uint8_t *)dg->bytes;
	req.digest.len = B3_LEN;
	req.recursive = recursive;
	len = snix__castore__v1__get_directory_request__pack(&req, buf);
	if (recursive)
		grpc_dirahead_make_room(&s->ahead);
	rc = dir_recv_new(dg, &v);
	if (rc < 0)
		return rc;
	rc = grpc_rpc_start(s->conn, s->conn->pkg_castore, "DirectoryService", "Get", buf, len, &r);
	while (rc == 0 && (rc = grpc_rpc_next(&r, &msg, &len)) == 0 && msg) {
		rc = root ? directory_decode(msg, len, &d) : accept_dir(s, dg, msg, len, &d);
		free(msg);
		if (rc == 0 && (rc = dir_recv_accept(v, d, &digest)) < 0)
			directory_free(d);
		if (rc < 0)
			break;
		if (!root)
			root = d;
		else if (!grpc_dirahead_keep(&s->ahead, &digest, d, len, &kept))
			break;
	}
	grpc_rpc_finish(&r);
	dir_recv_free(v);
	if (root) {
		if (rc < 0) {
			log_debug("%s: a recursive Get ended early: %s", s->conn->location,
				  sf_errmsg(rc));
			sf_err_clear();
		}
		*out = root;
		return 0;
	}
	/* An empty stream is "not found" (castore.md §2.5). */
	return rc < 0 ? rc : -ENOENT;
}

static int gdir_get(struct dir_service *ds, const struct b3_digest *dg, struct directory **out)
{
	struct gdir_service *s = (struct gdir_service *)ds;

	int rc;

	switch (grpc_dirahead_take(&s->ahead, dg, out)) {
	case GRPC_AHEAD_TAKEN:
		return 0;
	case GRPC_AHEAD_DOWN:
		return get_ahead(s, dg, true, out);
	case GRPC_AHEAD_MISS:
		break;
	}
	rc = get_ahead(s, dg, false, out);
	if (rc == 0)
		grpc_dirahead_want_children(&s->ahead, *out);
	return rc;
}

/* One call for a whole closure: a recursive Get, its stream checked root
 * to leaves by castore's dir_recv (each Directory validated, referred to
 * by one received before, sent once, none missing at the end). */
static int gdir_get_recursive(struct dir_service *ds, const struct b3_digest *root, dir_visit_fn cb,
			      void *ctx)
{
	struct gdir_service *s = (struct gdir_service *)ds;
	Snix__Castore__V1__GetDirectoryRequest req = SNIX__CASTORE__V1__GET_DIRECTORY_REQUEST__INIT;
	uint8_t buf[64], *msg = NULL;
	struct b3_digest digest;
	struct dir_recv *v = NULL;
	struct directory *d;
	struct grpc_rpc r;
	size_t len;
	int rc;

	req.by_what_case = SNIX__CASTORE__V1__GET_DIRECTORY_REQUEST__BY_WHAT_DIGEST;
	req.digest.data = (uint8_t *)root->bytes;
	req.digest.len = B3_LEN;
	req.recursive = 1;
	len = snix__castore__v1__get_directory_request__pack(&req, buf);
	rc = dir_recv_new(root, &v);
	if (rc == 0)
		rc = grpc_rpc_start(s->conn, s->conn->pkg_castore, "DirectoryService", "Get", buf,
				    len, &r);
	while (rc == 0 && (rc = grpc_rpc_next(&r, &msg, &len)) == 0 && msg) {
		rc = directory_decode(msg, len, &d);
		free(msg);
		if (rc < 0) {
			rc = sf_err(-EIO, "%s: a Directory is invalid: %s", s->conn->location,
				    sf_errmsg(rc));
			break;
		}
		rc = dir_recv_accept(v, d, &digest);
		if (rc == 0)
			rc = cb(ctx, &digest, d);
		directory_free(d);
	}
	if (v)
		grpc_rpc_finish(&r);
	if (rc == 0)
		return dir_recv_finish(v);
	dir_recv_free(v);
	return rc;
}

static int send_dir(struct grpc_rpc *r, const struct directory *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = directory_encode(d, &buf, &len);

	if (rc == 0)
		rc = grpc_rpc_send(r, buf ? buf : (uint8_t *)"", len);
	free(buf);
	return rc;
}

/* The PutDirectoryResponse must name the last (root) Directory sent. */
static int check_put_response(struct gdir_service *s, struct grpc_rpc *r,
			      const struct b3_digest *root)
{
	Snix__Castore__V1__PutDirectoryResponse *resp = NULL;
	uint8_t *msg = NULL, *extra = NULL;
	size_t len, n;
	int rc = grpc_rpc_next(r, &msg, &len);

	if (rc == 0 && !msg)
		rc = sf_err(-EIO, "%s: %s: no response", s->conn->location, r->method);
	if (rc == 0 && (rc = grpc_rpc_next(r, &extra, &n)) == 0 && extra)
		rc = sf_err(-EIO, "%s: %s: two responses", s->conn->location, r->method);
	if (rc == 0)
		resp = snix__castore__v1__put_directory_response__unpack(NULL, len, msg);
	if (rc == 0 && (!resp || resp->root_digest.len != B3_LEN ||
			memcmp(resp->root_digest.data, root->bytes, B3_LEN) != 0))
		rc = sf_err(-EIO, "%s: %s: the server names another root digest", s->conn->location,
			    r->method);
	if (resp)
		snix__castore__v1__put_directory_response__free_unpacked(resp, NULL);
	free(extra);
	free(msg);
	return rc;
}

/* One Put stream, leaves first as given: the closure of the last one
 * (castore.md §1.3: a Directory may only refer to ones sent before it in
 * the same stream, so a batch must be a whole closure). */
static int gdir_put_batch(struct dir_service *ds, struct directory *const *dirs,
			  const struct b3_digest *digests, size_t n)
{
	struct gdir_service *s = (struct gdir_service *)ds;
	struct grpc_rpc r;
	int rc;

	if (n == 0)
		return 0;
	rc = grpc_rpc_open_upload(s->conn, s->conn->pkg_castore, "DirectoryService", "Put", &r);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = send_dir(&r, dirs[i]);
	if (rc == 0)
		rc = grpc_rpc_close_send(&r);
	if (rc == 0)
		rc = check_put_response(s, &r, &digests[n - 1]);
	grpc_rpc_finish(&r);
	return rc;
}

static void gdir_free(struct dir_service *ds)
{
	struct gdir_service *s = (struct gdir_service *)ds;

	grpc_dirahead_release(&s->ahead);
	free(s);
}

static const struct dir_service_ops gdir_ops = {
    .get = gdir_get,
    .put_batch = gdir_put_batch,
    .free = gdir_free,
    .get_recursive = gdir_get_recursive,
};

int grpc_dir_service_new(struct grpc_conn *c, struct dir_service **out)
{
	struct gdir_service *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &gdir_ops;
	s->conn = c;
	grpc_dirahead_init(&s->ahead);
	*out = &s->base;
	return 0;
}
