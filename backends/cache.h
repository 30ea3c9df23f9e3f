/* cache.h - a local verified cache in front of a (remote) store:
 * --cache DIR (docs/services.md "The cache"). Built by
 * store_open_services() (registry.h); declared here for it and for the
 * unit tests. */
#ifndef STOREFS_BACKENDS_CACHE_H
#define STOREFS_BACKENDS_CACHE_H

#include "store/store.h"

/* Builds a store whose reads of blobs, Directories and PathInfos go to
 * `cache` first; a miss is fetched from `remote`, verified (a blob by its
 * BLAKE3, a Directory closure by digests and sizes), stored in `cache`
 * and served from it. Writes and listings go to `remote`. Concurrent
 * misses of one blob or Directory make one fetch. On success *out owns
 * both stores; on failure the caller still does. -ENOMEM. */
int store_cached_new(struct store *remote, struct store *cache, struct store **out);

#endif
