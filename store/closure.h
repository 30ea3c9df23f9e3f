/* closure.h - sets of store paths and the closure of paths over their
 * references (what `path-info -r` prints and what a GC keeps). */
#ifndef STOREFS_CLOSURE_H
#define STOREFS_CLOSURE_H

#include "castore/digest_map.h"
#include "store/path_info_service.h"

#include <stdbool.h>

/* A set of store paths keyed by digest, each with a non-NULL value. Store
 * path digests are as uniformly random as BLAKE3 ones, so the digest map
 * serves (the 20 bytes are zero-padded to 32). */
struct path_set {
	struct digest_map map;
};

void path_set_init(struct path_set *s);
/* Frees the table; values are the caller's. */
void path_set_release(struct path_set *s);
void *path_set_get(const struct path_set *s, const uint8_t digest[STORE_PATH_DIGEST_LEN]);
/* Inserts or replaces. -ENOMEM. */
int path_set_put(struct path_set *s, const uint8_t digest[STORE_PATH_DIGEST_LEN], void *value);

/* The value closure_walk() stores for a path it does not keep. */
extern char closure_seen_mark;

/* Adds to `seen` every path reachable from `start` (n paths) through
 * references that is not in `seen` yet. With `keep`, each value is the
 * path's PathInfo (the caller frees them); else &closure_seen_mark. A path
 * that is not in the store is -ENOENT with a message naming it, unless
 * `missing_ok`: then it is marked &closure_seen_mark and skipped. Returns
 * the number of paths added, or a negative errno. */
long closure_walk(struct path_info_service *ps, const struct store_path *start, size_t n,
		  bool missing_ok, bool keep, struct path_set *seen);

/* The sum of the NAR sizes of the closure of `p` (Nix's closureSize). */
int closure_size(struct path_info_service *ps, const struct store_path *p, uint64_t *out);

#endif
