/* root_nodes.h - what a filesystem shows at its root: named castore
 * nodes. The seam lives in castore/, below both of its sides: fs/ serves
 * it without knowing store paths or PathInfo, and
 * store/root_nodes_path_info.c adapts a PathInfo service to it. */
#ifndef STOREFS_ROOT_NODES_H
#define STOREFS_ROOT_NODES_H

#include "castore/node.h"

#include <errno.h>
#include <stdint.h>

struct root_nodes;

/* Called per listed root node; return 0 to go on, > 0 to stop, < 0 error. */
typedef int (*root_nodes_list_fn)(void *ctx, const struct node *n, uint64_t cursor);
/* Called with the name of each root node that appears after watch(). */
typedef void (*root_nodes_watch_fn)(void *ctx, const uint8_t *name, size_t len);

struct root_nodes_ops {
	/* Resolves an exact root name. -ENOENT if there is none (including a
	 * name that is not valid). On success `out->name` is `name`, and a
	 * symlink target is copied into `target_buf`. Other errors: -EIO. */
	int (*lookup)(struct root_nodes *r, const uint8_t *name, size_t len, struct node *out,
		      uint8_t target_buf[CASTORE_MAX_TARGET_LEN]);
	/* Lists root nodes with cursor > `after` in cursor order; cursors are
	 * stable and later additions get larger ones. NULL: not listable. */
	int (*list)(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb, void *ctx);
	/* Optional. */
	int (*watch)(struct root_nodes *r, root_nodes_watch_fn cb, void *ctx);
	void (*free)(struct root_nodes *r);
};

struct root_nodes {
	const struct root_nodes_ops *ops;
};

static inline int root_nodes_lookup(struct root_nodes *r, const uint8_t *name, size_t len,
				    struct node *out, uint8_t target_buf[CASTORE_MAX_TARGET_LEN])
{
	return r->ops->lookup(r, name, len, out, target_buf);
}

static inline int root_nodes_list(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb,
				  void *ctx)
{
	if (!r->ops->list)
		return -ENOTSUP;
	return r->ops->list(r, after, cb, ctx);
}

static inline int root_nodes_watch(struct root_nodes *r, root_nodes_watch_fn cb, void *ctx)
{
	if (!r->ops->watch)
		return -ENOTSUP;
	return r->ops->watch(r, cb, ctx);
}

static inline void root_nodes_free(struct root_nodes *r)
{
	if (r)
		r->ops->free(r);
}

#endif
