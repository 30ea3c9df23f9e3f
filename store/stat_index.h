/* stat_index.h - what `storefs import --trust-stat` remembers about the
 * files it read (docs/import.md "--trust-stat"): like git's index, a
 * file's (device, inode, size, mtime, ctime, executable bit) next to the
 * BLAKE3 digest its bytes had, and each imported tree's root Directory
 * next to its NAR's SHA-256 and size. The records are kept by the store
 * (store_index_get/put, opaque to it). */
#ifndef STOREFS_STAT_INDEX_H
#define STOREFS_STAT_INDEX_H

#include "castore/digest.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* A record younger than this after the file's last change is not trusted
 * (git's "racily clean" rule): a write in the same timestamp granule as
 * the one recorded would leave mtime and ctime as they were. Two seconds
 * cover the coarsest granule of a Linux filesystem (FAT). */
#define STAT_INDEX_RACY_NS 2000000000LL

/* Why a file is not trusted (stat_index_lookup). */
enum stat_miss { STAT_MISS_NONE, STAT_MISS_NO_RECORD, STAT_MISS_CHANGED, STAT_MISS_RACY };

/* Records collected during an import, stored at its end. */
struct stat_log {
	uint8_t *v; /* records of STAT_REC_LEN bytes */
	size_t n, cap;
};

/* 0 and the digest of the file whose lstat is `sb`, or -ENOENT with
 * `*why` saying why not (no message). */
int stat_index_lookup(struct store *st, const struct stat *sb, struct b3_digest *d,
		      enum stat_miss *why);
/* Remembers that the file whose stat was `sb`, taken at `t_ns` (the
 * realtime clock before the stat), held the bytes of `d`. */
int stat_log_add(struct stat_log *log, const struct stat *sb, int64_t t_ns,
		 const struct b3_digest *d);
void stat_log_release(struct stat_log *log);
/* Stores the log's records and the root record of a tree (`root`, its NAR
 * SHA-256 and size; `root` NULL: none) in one step. */
int stat_index_store(struct store *st, const struct stat_log *log, const struct b3_digest *root,
		     const uint8_t sha256[32], uint64_t nar_size);
/* The NAR SHA-256 and size recorded for the tree of root Directory
 * `root`: 0, or -ENOENT (no message). */
int stat_index_root(struct store *st, const struct b3_digest *root, uint8_t sha256[32],
		    uint64_t *nar_size);
/* The realtime clock in nanoseconds. */
int64_t stat_index_now(void);

#endif
