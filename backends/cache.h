/* cache.h - a local verified cache in front of a (remote) store:
 * --cache DIR (docs/services.md "The cache"). Built by
 * store_open_services() (registry.h); declared here for it and for the
 * unit tests. */
#ifndef STOREFS_BACKENDS_CACHE_H
#define STOREFS_BACKENDS_CACHE_H

#include "store/store.h"

#include <stdint.h>

/* Builds a store whose reads of blobs, Directories and PathInfos go to
 * `cache` first; a miss is fetched from `remote`, verified (a blob by its
 * BLAKE3, a Directory closure by digests and sizes), stored in `cache`
 * and served from it. Writes and listings go to `remote`. Concurrent
 * misses of one blob or Directory make one fetch. On success *out owns
 * both stores; on failure the caller still does. -ENOMEM. */
int store_cached_new(struct store *remote, struct store *cache, struct store **out);

/* Bounds the blob bytes the cache of `st` (from store_cached_new) keeps:
 * past `bytes`, least recently used blobs are evicted (0: no bound). */
void store_cached_set_bound(struct store *st, uint64_t bytes);

/* Makes the fetches of `st` (from store_cached_new) one per digest across
 * the processes that share the cache directory `dir` too, through
 * `dir`/fetch.lock (docs/services.md "The cache"). A failure is logged:
 * it only costs that collapse. */
void store_cached_share(struct store *st, const char *dir);

/* Makes the PathInfo lookups and blob stats of `st` (from
 * store_cached_new) ask the remote only, for a writer: what it uploads
 * and registers is decided by what the remote has, and what the cache
 * keeps may be what the remote has collected since. It also gives `st`
 * the cache's import index (--trust-stat), whose root check then asks the
 * remote. */
void store_cached_set_writer(struct store *st);

/* Splits `--cache DIR[?cache-size=SIZE]` (SIZE: N, NK, NM, NG or NT, in
 * powers of 1024) into a malloc'd DIR and the bound (0 without one).
 * -EINVAL with a message for another parameter or a bad size. */
int store_cache_arg_parse(const char *arg, char **dir, uint64_t *bound);

#endif
