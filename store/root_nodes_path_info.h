/* root_nodes_path_info.h - the filesystem's root nodes from a PathInfo
 * service: each registered store path appears under its basename
 * "<hash>-<name>" with its PathInfo's root node. */
#ifndef STOREFS_ROOT_NODES_PATH_INFO_H
#define STOREFS_ROOT_NODES_PATH_INFO_H

#include "castore/root_nodes.h"
#include "store/path_info_service.h"

/* Makes a root_nodes over `ps`, which it borrows: `ps` must stay alive
 * until the adapter is freed. lookup() resolves only exact basenames (a
 * right hash with a wrong name is -ENOENT); list() and watch() forward to
 * the service (-ENOTSUP if it cannot). If watch() was used, free `ps`
 * (which ends its watches) before the adapter, whose callback contexts
 * live until root_nodes_free(). Thread-safe if `ps` is. 0 or -ENOMEM. */
int root_nodes_path_info_new(struct path_info_service *ps, struct root_nodes **out);

/* Called with each valid store path name before lookup() fetches it (a
 * mount records it as a temporary GC root there, docs/gc.md). Its failure
 * is logged once and does not fail the lookup. */
typedef int (*root_nodes_pin_fn)(void *ctx, const struct store_path *p);

/* Sets the pin callback; call before the adapter is used. `r` must come
 * from root_nodes_path_info_new(). */
void root_nodes_path_info_set_pin(struct root_nodes *r, root_nodes_pin_fn fn, void *ctx);

#endif
