/* local.h - the embedded default store: one directory on a local
 * filesystem, shared safely by many reader and writer processes.
 *
 *	<dir>/storefs-store	marker: "storefs local store 1", "dir-size spec|native"
 *	<dir>/blobs/ab/cd/<hex>	blobs as plain read-only files (ab, cd: first
 *				two digest bytes in hex), renamed in from tmp/
 *	<dir>/tmp/		blob files being written, "<pid>.<n>.<random>"
 *	<dir>/db/		LMDB: "directories", "pathinfo", "pathinfo_seq", "meta"
 *	<dir>/import.lock	flock()ed by an import, holding its pid
 *	<dir>/notify/		one datagram socket per watcher, "<pid>.<n>.sock"
 *	<dir>/quarantine/	blob files that failed verification, "<hex>[.N]";
 *				never deleted by storefs
 *
 * All services and blob readers are thread-safe. Blob readers expose the
 * blob file as `fd`. Blob commits are not synced one by one; blob_service_
 * flush() syncs the store's filesystem, and callers flush before they
 * register metadata that refers to new blobs. LMDB commits are durable.
 *
 * Verified reads: no blob reader hands out a file that does not hash to its
 * digest. The LMDB database "verified" maps a digest to the identity (inode,
 * size, mtime, ctime) of the file last seen to hash right: recorded when a
 * writer commits (it hashed the bytes itself) and after a successful full
 * hash. open_read trusts a file whose fstat() identity equals the record;
 * any other file (no record, or touched since) is hashed in full once; on
 * a mismatch it is moved to quarantine/, one error line is logged naming
 * the digest and the file, and open_read returns -EIO (later opens: -ENOENT,
 * as does stat). Reads on an open reader are not re-verified; corruption
 * that keeps the identity (media faults) is found by the scrub below. A
 * read-only open that cannot write records keeps them in a per-process
 * cache (16384 entries) instead.
 * Directory and PathInfo records are verified on every get: a damaged one
 * is -EIO with a message naming it. */
#ifndef STOREFS_BACKENDS_LOCAL_H
#define STOREFS_BACKENDS_LOCAL_H

#include "backends/registry.h"
#include "store/path_info.h"

#include <stdbool.h>
#include <stddef.h>

#define LOCAL_STORE_MARKER "storefs-store"
#define LOCAL_STORE_MAGIC  "storefs local store 1"

/* Opens (with STORE_OPEN_CREATE also creates) the store in `dir`; `flags`
 * are enum store_open_flags. Errors:
 *	-ENOENT	`dir` is missing or empty and creating was not allowed
 *	-EINVAL	`dir` is a non-empty directory without a valid marker (nothing
 *		is written to it), or the marker is damaged or of another version
 *	-EBUSY	STORE_OPEN_IMPORT without STORE_OPEN_WAIT and another import
 *		holds the lock
 *	-EIO, -ENOSPC, -EACCES, ...	filesystem or LMDB failures
 * The same store may be opened several times in one process (the LMDB
 * environment is shared); after fork() the child must open it anew. */
int local_store_open(const char *dir, unsigned flags, struct store **out);

/* --- the scrub (storefs verify); -ENOTSUP if `st` is not a local store --- */

/* True if `st` was opened by local_store_open(). */
bool local_store_is(const struct store *st);

/* Called per item; a non-zero return stops the listing and is returned. */
typedef int (*local_blob_fn)(void *ctx, const struct b3_digest *d);
typedef int (*local_quarantine_fn)(void *ctx, const struct b3_digest *d, const char *path);

/* Every blob file with a well-formed name, in no particular order. */
int local_store_blobs_each(struct store *st, local_blob_fn cb, void *ctx);
/* Hashes blob `d` in full whatever its record: 0 and its size if right,
 * -ENOENT if absent, -EIO with a message if damaged (then quarantined). */
int local_store_blob_check(struct store *st, const struct b3_digest *d, uint64_t *size);
/* Every file in quarantine/ with the digest its name starts with. */
int local_store_quarantine_each(struct store *st, local_quarantine_fn cb, void *ctx);
/* The key of every Directory record. */
int local_store_dirs_each(struct store *st, local_blob_fn cb, void *ctx);

/* --- one LMDB transaction per registration (struct store's stage_dirs and
 * commit_path of a local store) ---
 *
 * local_store_stage_dirs() gives a dir_service (free it with
 * dir_service_free) whose put_batch validates and holds Directories in
 * memory instead of storing them; local_store_commit_path() then stores
 * them together with PathInfo `pi` in ONE write transaction, so a crash
 * leaves either both or neither. The blobs must be flushed before. Errors:
 * -ENOTSUP (stage: not a local store), -EROFS, -EINVAL (commit: `stage` is
 * not one of ours), LMDB and validation errors. */
int local_store_stage_dirs(struct store *st, struct dir_service **out);
int local_store_commit_path(struct store *st, struct dir_service *stage,
			    const struct path_info *pi);

/* The path of the file that holds (or would hold) blob `d` in the store at
 * `dir`. -ENAMETOOLONG if it does not fit in `len` bytes. */
int local_blob_path(const char *dir, const struct b3_digest *d, char *buf, size_t len);

#endif
