/* meta_copy - copies the Directories and PathInfos (no blobs) of store
 * paths from one store to another, for tests of stores that hold only
 * metadata (postgres://) until a composite store can import into them:
 *
 *	meta_copy FROM TO STORE_PATH...
 *
 * Each path's Directories and PathInfo are registered in one step
 * (store_stage_dirs + store_commit_path) when TO can, else one after the
 * other. Prints what the registration did per path. */
#include "backends/registry.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct closure {
	struct directory **v;
	struct b3_digest *d;
	size_t n, cap;
};

static int collect(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct closure *c = ctx;
	uint8_t *buf;
	size_t len;
	int rc;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		c->d = realloc(c->d, c->cap * sizeof(*c->d));
		if (!c->v || !c->d)
			return -ENOMEM;
	}
	rc = directory_encode(d, &buf, &len);
	if (rc == 0)
		rc = directory_decode(buf, len, &c->v[c->n]);
	free(buf);
	if (rc == 0)
		c->d[c->n++] = *digest;
	return rc;
}

/* The walk is root first; a batch goes leaves first: reversed. */
static void reverse(struct closure *c)
{
	for (size_t i = 0; i < c->n / 2; i++) {
		struct directory *t = c->v[i];
		struct b3_digest td = c->d[i];

		c->v[i] = c->v[c->n - 1 - i], c->v[c->n - 1 - i] = t;
		c->d[i] = c->d[c->n - 1 - i], c->d[c->n - 1 - i] = td;
	}
}

static int register_path(struct store *to, struct closure *c, const struct path_info *pi,
			 enum path_info_put_result *res)
{
	struct dir_service *stage;
	int rc = store_stage_dirs(to, &stage);

	if (rc == -ENOTSUP) {
		rc = c->n ? to->dirs->ops->put_batch(to->dirs, c->v, c->d, c->n) : 0;
		return rc < 0 ? rc : path_info_service_register(to->paths, pi, res);
	}
	if (rc < 0)
		return rc;
	rc = c->n ? stage->ops->put_batch(stage, c->v, c->d, c->n) : 0;
	if (rc == 0)
		rc = store_commit_path(to, stage, pi, res);
	dir_service_free(stage);
	return rc;
}

static int copy_one(struct store *from, struct store *to, const char *arg)
{
	static const char *const said[] = {"added", "unchanged", "signatures added"};
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct closure c = {0};
	struct store_path p;
	struct path_info *pi;
	int rc = store_path_parse(arg, strlen(arg), false, &p);

	if (rc == 0)
		rc = path_info_service_get(from->paths, p.digest, &pi);
	if (rc < 0)
		return rc;
	if (pi->root.kind == NODE_DIRECTORY)
		rc = dir_service_get_recursive(from->dirs, &pi->root.digest, collect, &c);
	reverse(&c);
	if (rc == 0)
		rc = register_path(to, &c, pi, &res);
	if (rc == 0)
		printf("%s: %s\n", arg, said[res]);
	for (size_t i = 0; i < c.n; i++)
		directory_free(c.v[i]);
	free(c.v);
	free(c.d);
	path_info_free(pi);
	return rc;
}

int main(int argc, char **argv)
{
	struct store *from = NULL, *to = NULL;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: meta_copy FROM TO STORE_PATH...\n");
		return 2;
	}
	rc = store_open(argv[1], STORE_OPEN_READONLY, &from);
	if (rc == 0)
		rc = store_open(argv[2], 0, &to);
	for (int i = 3; rc == 0 && i < argc; i++)
		rc = copy_one(from, to, argv[i]);
	if (rc < 0)
		fprintf(stderr, "meta_copy: %s\n", sf_errmsg(rc));
	store_free(to);
	store_free(from);
	return rc < 0;
}
