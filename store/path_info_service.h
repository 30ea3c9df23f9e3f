/* path_info_service.h - the PathInfo service interface: store path digest
 * (20 bytes) -> PathInfo. Backends embed `struct path_info_service`. */
#ifndef STOREFS_PATHINFO_SERVICE_H
#define STOREFS_PATHINFO_SERVICE_H

#include "store/path_info.h"

#include <errno.h>
#include <string.h>

struct path_info_service;

/* Called for each listed PathInfo with its listing cursor. Return 0 to go
 * on, > 0 to stop quietly, < 0 to stop with that error. */
typedef int (*path_info_list_fn)(void *ctx, const struct path_info *pi, uint64_t cursor);

/* Called (from any thread) with the basename of each newly registered path. */
typedef void (*path_info_watch_fn)(void *ctx, const char *basename);

struct path_info_service_ops {
	/* -ENOENT if absent. `*out` owned by the caller. */
	int (*get)(struct path_info_service *s, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		   struct path_info **out);
	/* Registers a validated PathInfo. The caller has stored its blobs and
	 * Directories first. A path that is registered already never changes:
	 * the backend applies path_info_merge() in the same atomic step as its
	 * write (one transaction, or under one lock), so of two racing puts of
	 * different content exactly one wins and the other gets -EEXIST.
	 * `res` (may be NULL) says what happened. */
	int (*put)(struct path_info_service *s, const struct path_info *pi,
		   enum path_info_put_result *res);
	/* Lists PathInfos in a stable order: each has a cursor, cursors grow
	 * along the listing and a path registered later gets a larger cursor
	 * than every existing one. Lists those with cursor > `after`
	 * (0 = from the start). NULL if the backend cannot list. */
	int (*list)(struct path_info_service *s, uint64_t after, path_info_list_fn cb, void *ctx);
	/* Optional: calls `cb` for paths registered from now on, also by other
	 * processes, until the service is freed. */
	int (*watch)(struct path_info_service *s, path_info_watch_fn cb, void *ctx);
	void (*free)(struct path_info_service *s);
	/* Optional: as get(), for the path `p` only: a PathInfo with p's
	 * digest but another name is -ENOENT, found out as cheaply as the
	 * backend can (a binary cache compares the narinfo's name before it
	 * downloads the NAR). NULL: get() and a comparison. */
	int (*get_path)(struct path_info_service *s, const struct store_path *p,
			struct path_info **out);
	/* Optional: the largest cursor given so far (0: none), so that
	 * list(after = it) later yields exactly the paths registered since. */
	int (*last_cursor)(struct path_info_service *s, uint64_t *out);
};

struct path_info_service {
	const struct path_info_service_ops *ops;
};

static inline int path_info_service_get(struct path_info_service *s,
					const uint8_t digest[STORE_PATH_DIGEST_LEN],
					struct path_info **out)
{
	return s->ops->get(s, digest, out);
}

static inline int path_info_service_get_path(struct path_info_service *s,
					     const struct store_path *p, struct path_info **out)
{
	struct path_info *pi;
	int rc;

	if (s->ops->get_path)
		return s->ops->get_path(s, p, out);
	rc = s->ops->get(s, p->digest, &pi);
	if (rc < 0)
		return rc;
	if (strcmp(pi->path.name, p->name) != 0) {
		path_info_free(pi);
		return -ENOENT;
	}
	*out = pi;
	return 0;
}

static inline int path_info_service_put(struct path_info_service *s, const struct path_info *pi)
{
	return s->ops->put(s, pi, NULL);
}

/* As path_info_service_put(), also telling what happened. */
static inline int path_info_service_register(struct path_info_service *s,
					     const struct path_info *pi,
					     enum path_info_put_result *res)
{
	return s->ops->put(s, pi, res);
}

static inline int path_info_service_list(struct path_info_service *s, uint64_t after,
					 path_info_list_fn cb, void *ctx)
{
	if (!s->ops->list)
		return -ENOTSUP;
	return s->ops->list(s, after, cb, ctx);
}

static inline int path_info_service_watch(struct path_info_service *s, path_info_watch_fn cb,
					  void *ctx)
{
	if (!s->ops->watch)
		return -ENOTSUP;
	return s->ops->watch(s, cb, ctx);
}

static inline int path_info_service_last_cursor(struct path_info_service *s, uint64_t *out)
{
	if (!s->ops->last_cursor)
		return -ENOTSUP;
	return s->ops->last_cursor(s, out);
}

static inline void path_info_service_free(struct path_info_service *s)
{
	if (s)
		s->ops->free(s);
}

#endif
