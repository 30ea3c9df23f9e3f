/* pathinfo_service.h - the PathInfo service interface: store path digest
 * (20 bytes) -> PathInfo. Backends embed `struct pathinfo_service`. */
#ifndef STOREFS_PATHINFO_SERVICE_H
#define STOREFS_PATHINFO_SERVICE_H

#include "store/path_info.h"

#include <errno.h>

struct pathinfo_service;

/* Called for each listed PathInfo with its listing cursor. Return 0 to go
 * on, > 0 to stop quietly, < 0 to stop with that error. */
typedef int (*pathinfo_list_fn)(void *ctx, const struct path_info *pi, uint64_t cursor);

/* Called (from any thread) with the basename of each newly registered path. */
typedef void (*pathinfo_watch_fn)(void *ctx, const char *basename);

struct pathinfo_service_ops {
	/* -ENOENT if absent. `*out` owned by the caller. */
	int (*get)(struct pathinfo_service *s, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		   struct path_info **out);
	/* Registers (or replaces) a validated PathInfo. The caller has stored
	 * its blobs and Directories first. */
	int (*put)(struct pathinfo_service *s, const struct path_info *pi);
	/* Lists PathInfos in a stable order: each has a cursor, cursors grow
	 * along the listing and a path registered later gets a larger cursor
	 * than every existing one. Lists those with cursor > `after`
	 * (0 = from the start). NULL if the backend cannot list. */
	int (*list)(struct pathinfo_service *s, uint64_t after, pathinfo_list_fn cb, void *ctx);
	/* Optional: calls `cb` for paths registered from now on, also by other
	 * processes, until the service is freed. */
	int (*watch)(struct pathinfo_service *s, pathinfo_watch_fn cb, void *ctx);
	void (*free)(struct pathinfo_service *s);
};

struct pathinfo_service {
	const struct pathinfo_service_ops *ops;
};

static inline int pathinfo_service_get(struct pathinfo_service *s,
				       const uint8_t digest[STORE_PATH_DIGEST_LEN],
				       struct path_info **out)
{
	return s->ops->get(s, digest, out);
}

static inline int pathinfo_service_put(struct pathinfo_service *s, const struct path_info *pi)
{
	return s->ops->put(s, pi);
}

static inline int pathinfo_service_list(struct pathinfo_service *s, uint64_t after,
					pathinfo_list_fn cb, void *ctx)
{
	if (!s->ops->list)
		return -ENOTSUP;
	return s->ops->list(s, after, cb, ctx);
}

static inline int pathinfo_service_watch(struct pathinfo_service *s, pathinfo_watch_fn cb,
					 void *ctx)
{
	if (!s->ops->watch)
		return -ENOTSUP;
	return s->ops->watch(s, cb, ctx);
}

static inline void pathinfo_service_free(struct pathinfo_service *s)
{
	if (s)
		s->ops->free(s);
}

#endif
