/* stats.h - what `storefs info` reports about a store: counts and bytes of
 * its paths, Directories and blobs, what deduplication saves, orphans. */
#ifndef STOREFS_STATS_H
#define STOREFS_STATS_H

#include "store/store.h"

#include <stdint.h>

struct store_stats {
	uint64_t paths, nar_bytes;	    /* registered paths, sum of NAR sizes */
	uint64_t dirs, dir_bytes;	    /* Directories, bytes of their encodings */
	uint64_t blobs, blob_bytes;	    /* blob files, their sizes */
	uint64_t file_bytes;		    /* sizes of all regular files over all paths'
					     * trees, each occurrence counted */
	uint64_t orphan_dirs, orphan_blobs; /* stored but reached by no path */
	uint64_t orphan_blob_bytes;
};

/* Walks every path's tree (each Directory once) and lists the stored
 * Directories and blobs (-ENOTSUP if the store cannot list them). A
 * Directory or blob a path refers to but that is missing is not counted
 * (`storefs verify` reports those). */
int store_stats_collect(struct store *st, struct store_stats *out);

#endif
