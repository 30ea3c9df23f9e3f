/* cache_internal.h - what the files of the cache (--cache DIR; cache.c,
 * cache_chunks.c) share: the cache's state, one fetch per digest, and
 * keeping a verified blob (docs/services.md "The cache"). */
#ifndef STOREFS_BACKENDS_CACHE_INTERNAL_H
#define STOREFS_BACKENDS_CACHE_INTERNAL_H

#include "backends/cache.h"
#include "castore/digest_map.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cached;

struct cache_blobs {
	struct blob_service base;
	struct cached *c;
};

struct cache_dirs {
	struct dir_service base;
	struct cached *c;
};

struct cache_paths {
	struct path_info_service base;
	struct cached *c;
};

/* The digests being fetched: a second miss of one waits for the first. */
struct inflight {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct b3_digest *v;
	size_t n, cap;
};

struct cached {
	struct store base;
	struct store *remote, *cache; /* owned */
	struct cache_blobs blobs;
	struct cache_dirs dirs;
	struct cache_paths paths;
	struct inflight fetching;
	int lock_fd;		       /* DIR/fetch.lock (store_cached_share), or -1 */
	bool writer;		       /* stats and PathInfos from the remote only */
	uint64_t bound;		       /* cache-size=: blob bytes kept at most; 0: no bound */
	atomic_uint fills;	       /* blob fills since the cache was last synced */
	atomic_uint_fast64_t unsynced; /* their bytes (not in the cache's usage yet) */
	pthread_mutex_t lru_lock;
	struct digest_map used; /* digest -> last use (a tick); lru_lock */
	uint64_t tick;		/* lru_lock */
	bool trimming;		/* lru_lock */
};

/* One fetch per digest, whole blob or chunk (a chunk is a blob by its
 * digest), across the processes sharing the cache too (cache_claim.c). cache_fetch_claim(): *mine
 * is true if this caller is to fetch `d` (then cache_fetch_done()), false if it waited for another
 * fetch of `d` (then it looks again). cache_fetch_try_claim() never waits: true if the caller now
 * fetches `d`, false if another fetch of it runs. */
int cache_fetch_claim(struct cached *c, const struct b3_digest *d, bool *mine);
bool cache_fetch_try_claim(struct cached *c, const struct b3_digest *d);
void cache_fetch_done(struct cached *c, const struct b3_digest *d);
void cache_claims_init(struct cached *c);
void cache_claims_release(struct cached *c);

/* Opens the cache's copy of `d` (-ENOENT: none), as recently used. */
int cache_blob_lookup(struct cached *c, const struct b3_digest *d, struct blob_reader **out);

/* Keeps `len` bytes as blob `d` in the cache: `copy` writes them to `w`;
 * nothing is kept unless they hash to `d` (-EIO). */
int cache_blob_keep(struct cached *c, const struct b3_digest *d, uint64_t len,
		    int (*copy)(void *ctx, struct blob_writer *w), void *ctx);

/* After fills: marks `d` used and evicts past the bound (cache-size=). */
void cache_filled(struct cached *c, const struct b3_digest *d);

/* A reader of blob `d` that the remote's lazy reader `remote` reads as
 * chunks (cache_chunks.c, docs/services.md "Chunks in the cache"):
 * chunks are served from the cache, missing ones fetched through `remote`
 * and kept one by one; takes `remote`. -ENOTSUP (and `remote` not taken)
 * if `remote` does not lend its chunks. */
int cache_chunked_new(struct cached *c, const struct b3_digest *d, struct blob_reader *remote,
		      struct blob_reader **out);

#endif
