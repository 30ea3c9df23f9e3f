/* grpc_store.c - grpc+http:// and grpc+unix:// URLs, and the store bundle. */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One "key=value" of the query. */
static int parse_option(const char *opt, size_t len, struct grpc_store_url *u)
{
	const char *eq = memchr(opt, '=', len);
	size_t klen = eq ? (size_t)(eq - opt) : len;
	const char *v = eq ? eq + 1 : "";
	size_t vlen = eq ? len - klen - 1 : 0;

	if (klen == 7 && !memcmp(opt, "timeout", 7)) {
		if (deadline_parse_s(v, vlen, &u->rule.base_s) < 0)
			return sf_err(-EINVAL, "timeout must be 1 to %d seconds, not '%.*s'",
				      DEADLINE_BASE_S_MAX, (int)vlen, v);
		return 0;
	}
	if (klen == 7 && !memcmp(opt, "package", 7)) {
		if ((vlen != 4) || (memcmp(v, "snix", 4) && memcmp(v, "tvix", 4)))
			return sf_err(-EINVAL, "package must be snix or tvix, not '%.*s'",
				      (int)vlen, v);
		u->tvix = !memcmp(v, "tvix", 4);
		return 0;
	}
	return sf_err(-EINVAL, "unknown gRPC store option '%.*s' (timeout=, package=)", (int)klen,
		      opt);
}

static int parse_query(const char *q, struct grpc_store_url *u)
{
	while (*q) {
		size_t len = strcspn(q, "&");
		int rc = len ? parse_option(q, len, u) : 0;

		if (rc < 0)
			return rc;
		q += len + (q[len] == '&');
	}
	return 0;
}

/* HOST:PORT, HOST a name, an IPv4 address or [IPv6], PORT 1-65535. */
static int check_authority(const char *a, size_t len)
{
	const char *colon = NULL;
	char *end;
	char port[8];
	unsigned long p;

	for (size_t i = 0; i < len; i++)
		if (a[i] == ':')
			colon = a + i;
	if (!colon || colon == a || (a[0] == '[' && colon[-1] != ']'))
		return -EINVAL;
	if ((size_t)(a + len - colon - 1) >= sizeof(port) || a + len == colon + 1)
		return -EINVAL;
	memcpy(port, colon + 1, (size_t)(a + len - colon - 1));
	port[a + len - colon - 1] = '\0';
	p = strtoul(port, &end, 10);
	if (*end || port[0] < '0' || port[0] > '9' || p == 0 || p > 65535)
		return -EINVAL;
	return 0;
}

static int set_target(struct grpc_store_url *u, const char *prefix, const char *s, size_t len)
{
	size_t plen = strlen(prefix);

	u->target = malloc(plen + len + 1);
	if (!u->target)
		return -ENOMEM;
	memcpy(u->target, prefix, plen);
	memcpy(u->target + plen, s, len);
	u->target[plen + len] = '\0';
	return 0;
}

int grpc_store_url_parse(const char *url, struct grpc_store_url *out)
{
	struct grpc_store_url u = {0};
	const char *rest, *q;
	size_t len;
	int rc;

	if (!strncmp(url, "grpc+http://", 12))
		rest = url + 12;
	else if (!strncmp(url, "grpc+unix://", 12))
		rest = url + 12;
	else
		return sf_err(-EINVAL, "'%s' is not a grpc+http:// or grpc+unix:// URL", url);
	q = strchr(rest, '?');
	len = q ? (size_t)(q - rest) : strlen(rest);
	if (url[5] == 'u') {
		if (len < 2 || rest[0] != '/')
			return sf_err(-EINVAL,
				      "'%s': the socket must be an absolute path "
				      "(grpc+unix:///path/to/socket)",
				      url);
		rc = set_target(&u, "unix://", rest, len);
	} else {
		if (check_authority(rest, len) < 0)
			return sf_err(-EINVAL, "'%s': expected grpc+http://HOST:PORT", url);
		rc = set_target(&u, "", rest, len);
	}
	if (rc == 0 && q)
		rc = parse_query(q + 1, &u);
	if (rc < 0) {
		grpc_store_url_release(&u);
		return rc;
	}
	*out = u;
	return 0;
}

void grpc_store_url_release(struct grpc_store_url *u)
{
	free(u->target);
	u->target = NULL;
}

struct grpc_store {
	struct store st;
	struct grpc_conn *conn;
};

/* Runs after the services are freed: the channel outlives them. */
static void grpc_store_close(struct store *st)
{
	struct grpc_store *g = (struct grpc_store *)st;

	grpc_conn_close(g->conn);
}

int grpc_store_open(const char *url, unsigned flags, struct store **out)
{
	struct grpc_store_url u;
	struct grpc_store *g;
	int rc = grpc_store_url_parse(url, &u);

	if (rc < 0)
		return rc;
	g = calloc(1, sizeof(*g));
	rc = g ? grpc_conn_open(&u, &g->conn) : -ENOMEM;
	grpc_store_url_release(&u);
	if (rc == 0 && (!(g->conn->location = strdup(url)) || !(g->st.location = strdup(url))))
		rc = -ENOMEM;
	if (rc == 0)
		g->st.close = grpc_store_close;
	if (rc == 0)
		rc = grpc_blob_service_new(g->conn, &g->st.blobs);
	if (rc == 0)
		rc = grpc_dir_service_new(g->conn, &g->st.dirs);
	if (rc == 0)
		rc = grpc_path_info_service_new(g->conn, &g->st.paths);
	if (rc < 0) {
		if (g && !g->st.close)
			grpc_conn_close(g->conn), free(g);
		else if (g)
			store_free(&g->st);
		return rc;
	}
	g->st.size_formula = flags & STORE_OPEN_NATIVE_SIZE ? DIR_SIZE_NATIVE : DIR_SIZE_SPEC;
	*out = &g->st;
	return 0;
}
