/* copy.h - copying a store path between two stores through their
 * services, reusing what the destination has (`storefs copy`). */
#ifndef STOREFS_COPY_H
#define STOREFS_COPY_H

#include "store/store.h"

struct copy_stats {
	uint64_t paths, paths_present; /* copied, already in the destination */
	uint64_t blobs, blob_bytes;    /* blobs copied */
	uint64_t blobs_present;	       /* blobs the destination had */
	uint64_t nars, nar_bytes;      /* NARs uploaded (a binary cache) */
};

/* Copies path `pi` of `src` into `dst`: its blobs that `dst` lacks, its
 * Directories, then the PathInfo (atomically with the Directories where
 * `dst` can); to a store that keeps NARs (a binary cache), the NAR and
 * then the PathInfo instead. A path `dst` already has is skipped. Its references must be
 * in `dst` already (-ENOENT naming the first missing one). -EINVAL if the
 * stores count DirectoryEntry.size differently (the Directories would
 * differ). Blob contents are checked against their digests on the way. */
int store_copy_path(struct store *src, struct store *dst, const struct path_info *pi,
		    struct copy_stats *stats);

#endif
