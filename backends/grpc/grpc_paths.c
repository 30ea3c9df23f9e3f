/* grpc_paths.c - PathInfoService client: Get and List, every PathInfo
 * validated by store/'s path_info_decode (castore.md §2.6). */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"
#include "rpc_pathinfo.pb-c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* At most this many bytes of PathInfo messages are kept from a listing
 * (docs/grpc.md §3 "Listing"); ~200 000 paths of ~300 bytes. */
#define GRPC_LIST_KEEP_MAX (64u * 1024 * 1024)

/* The messages of the last listing from the start, in the server's order:
 * the i-th has cursor i + 1. */
struct list_snapshot {
	ProtobufCBinaryData *msgs;
	size_t n, cap, bytes;
	bool complete; /* the whole listing, within GRPC_LIST_KEEP_MAX */
};

struct gpath_service {
	struct path_info_service base;
	struct grpc_conn *conn;
	pthread_mutex_t lock; /* guards snap */
	struct list_snapshot *snap;
};

static void snapshot_free(struct list_snapshot *sn)
{
	if (!sn)
		return;
	for (size_t i = 0; i < sn->n; i++)
		free(sn->msgs[i].data);
	free(sn->msgs);
	free(sn);
}

/* Keeps a copy of one message; a listing too large to keep is marked
 * incomplete and keeps nothing more. */
static void snapshot_add(struct list_snapshot *sn, const uint8_t *msg, size_t len)
{
	ProtobufCBinaryData *m;

	if (!sn->complete)
		return;
	if (sn->bytes + len > GRPC_LIST_KEEP_MAX) {
		sn->complete = false;
		return;
	}
	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? 2 * sn->cap : 256;

		m = reallocarray(sn->msgs, cap, sizeof(*m));
		if (!m) {
			sn->complete = false;
			return;
		}
		sn->msgs = m;
		sn->cap = cap;
	}
	m = &sn->msgs[sn->n];
	m->data = malloc(len ? len : 1);
	if (!m->data) {
		sn->complete = false;
		return;
	}
	memcpy(m->data, msg, len);
	m->len = len;
	sn->n++;
	sn->bytes += len;
}

static int accept_path_info(struct gpath_service *s, const uint8_t *msg, size_t len,
			    struct path_info **out)
{
	int rc = path_info_decode(msg, len, out);

	if (rc < 0)
		return sf_err(-EIO, "%s: a PathInfo is invalid: %s", s->conn->location,
			      sf_errmsg(rc));
	return 0;
}

static int gpath_get(struct path_info_service *ps, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		     struct path_info **out)
{
	struct gpath_service *s = (struct gpath_service *)ps;
	Snix__Store__V1__GetPathInfoRequest req = SNIX__STORE__V1__GET_PATH_INFO_REQUEST__INIT;
	uint8_t buf[64], *resp;
	struct path_info *pi;
	size_t len;
	int rc;

	req.by_what_case = SNIX__STORE__V1__GET_PATH_INFO_REQUEST__BY_WHAT_BY_OUTPUT_HASH;
	req.by_output_hash.data = (uint8_t *)digest;
	req.by_output_hash.len = STORE_PATH_DIGEST_LEN;
	len = snix__store__v1__get_path_info_request__pack(&req, buf);
	rc = grpc_unary(s->conn, s->conn->pkg_store, "PathInfoService", "Get", buf, len, &resp,
			&len);
	if (rc < 0)
		return rc;
	rc = accept_path_info(s, resp, len, &pi);
	free(resp);
	if (rc < 0)
		return rc;
	if (memcmp(pi->path.digest, digest, STORE_PATH_DIGEST_LEN) != 0) {
		rc = sf_err(-EIO, "%s: asked for another store path, got '%s'", s->conn->location,
			    pi->root_name);
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

static int list_one(struct gpath_service *s, const uint8_t *msg, size_t len, uint64_t cursor,
		    path_info_list_fn cb, void *ctx)
{
	struct path_info *pi;
	int rc = accept_path_info(s, msg, len, &pi);

	if (rc == 0) {
		rc = cb(ctx, pi, cursor);
		path_info_free(pi);
	}
	return rc;
}

/* A continuation served from the last complete listing; -EAGAIN when
 * there is none to serve it from. */
static int list_from_snapshot(struct gpath_service *s, uint64_t after, path_info_list_fn cb,
			      void *ctx)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&s->lock);
	if (s->snap && s->snap->complete && after <= s->snap->n) {
		rc = 0;
		for (size_t i = after; rc == 0 && i < s->snap->n; i++)
			rc = list_one(s, s->snap->msgs[i].data, s->snap->msgs[i].len, i + 1, cb,
				      ctx);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The cursor of the i-th PathInfo of the server's listing is i + 1; the
 * server's order is taken as it comes. ListPathInfoRequest has no field to
 * resume from, so a listing read in batches (the mount's root, one batch
 * per getdents) would stream the whole listing again for each batch:
 * quadratic (12 000 paths took minutes). A listing from the start is kept
 * (the rest of the stream is read even when `cb` stops early) and the
 * continuations (after > 0) are served from it. */
static int gpath_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb, void *ctx)
{
	struct gpath_service *s = (struct gpath_service *)ps;
	struct list_snapshot *sn = NULL;
	struct grpc_rpc r;
	uint8_t *msg = NULL;
	uint64_t cursor = 0;
	size_t len;
	int rc, cb_rc = 0;

	if (after > 0 && (rc = list_from_snapshot(s, after, cb, ctx)) != -EAGAIN)
		return rc > 0 ? 0 : rc;
	if (after == 0 && (sn = calloc(1, sizeof(*sn))))
		sn->complete = true;
	rc = grpc_rpc_start(s->conn, s->conn->pkg_store, "PathInfoService", "List", "", 0, &r);
	while (rc == 0 && (rc = grpc_rpc_next(&r, &msg, &len)) == 0 && msg) {
		cursor++;
		if (sn)
			snapshot_add(sn, msg, len);
		if (cursor > after && cb_rc == 0)
			cb_rc = list_one(s, msg, len, cursor, cb, ctx);
		free(msg);
		/* Stopped with nothing worth keeping: no need for the rest. */
		if (cb_rc != 0 && (!sn || !sn->complete || cb_rc < 0))
			break;
	}
	grpc_rpc_finish(&r);
	if (rc == 0 && cb_rc >= 0 && sn && sn->complete) {
		pthread_mutex_lock(&s->lock);
		snapshot_free(s->snap);
		s->snap = sn;
		sn = NULL;
		pthread_mutex_unlock(&s->lock);
	}
	snapshot_free(sn);
	if (rc == 0)
		rc = cb_rc;
	return rc > 0 ? 0 : rc;
}

/* The server answers with the PathInfo as it stores it, which must be
 * for the same path. Whether it was new is not told: *res says added. */
static int gpath_put(struct path_info_service *ps, const struct path_info *pi,
		     enum path_info_put_result *res)
{
	struct gpath_service *s = (struct gpath_service *)ps;
	struct path_info *stored = NULL;
	uint8_t *req = NULL, *resp = NULL;
	size_t len = 0;
	int rc = path_info_encode(pi, &req, &len);

	if (rc == 0)
		rc = grpc_unary(s->conn, s->conn->pkg_store, "PathInfoService", "Put", req, len,
				&resp, &len);
	if (rc == 0)
		rc = accept_path_info(s, resp, len, &stored);
	if (rc == 0 && memcmp(stored->path.digest, pi->path.digest, STORE_PATH_DIGEST_LEN) != 0)
		rc = sf_err(-EIO, "%s: a Put of '%s' was answered with '%s'", s->conn->location,
			    pi->root_name, stored->root_name);
	path_info_free(stored);
	free(req);
	free(resp);
	if (rc == 0 && res)
		*res = PATH_INFO_ADDED;
	return rc;
}

static void gpath_free(struct path_info_service *ps)
{
	struct gpath_service *s = (struct gpath_service *)ps;

	snapshot_free(s->snap);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct path_info_service_ops gpath_ops = {
    .get = gpath_get,
    .put = gpath_put,
    .list = gpath_list,
    .free = gpath_free,
};

int grpc_path_info_service_new(struct grpc_conn *c, struct path_info_service **out)
{
	struct gpath_service *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &gpath_ops;
	s->conn = c;
	pthread_mutex_init(&s->lock, NULL);
	*out = &s->base;
	return 0;
}
