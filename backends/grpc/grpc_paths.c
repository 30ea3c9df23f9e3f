/* grpc_paths.c - PathInfoService client: Get and List, every PathInfo
 * validated by store/'s path_info_decode (castore.md §2.6). */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"
#include "rpc_pathinfo.pb-c.h"

#include <stdlib.h>
#include <string.h>

struct gpath_service {
	struct path_info_service base;
	struct grpc_conn *conn;
};

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

/* The cursor of the i-th PathInfo of the server's listing is i + 1; the
 * server's order is taken as it comes. */
static int gpath_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb, void *ctx)
{
	struct gpath_service *s = (struct gpath_service *)ps;
	struct path_info *pi;
	struct grpc_rpc r;
	uint8_t *msg = NULL;
	uint64_t cursor = 0;
	size_t len;
	int rc = grpc_rpc_start(s->conn, s->conn->pkg_store, "PathInfoService", "List", "", 0, &r);

	while (rc == 0 && (rc = grpc_rpc_next(&r, &msg, &len)) == 0 && msg) {
		cursor++;
		if (cursor > after && (rc = accept_path_info(s, msg, len, &pi)) == 0) {
			rc = cb(ctx, pi, cursor);
			path_info_free(pi);
		}
		free(msg);
	}
	grpc_rpc_finish(&r);
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
	free(ps);
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
	*out = &s->base;
	return 0;
}
