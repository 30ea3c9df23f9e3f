/* local.h - the embedded default store: one directory on a local
 * filesystem, shared safely by many reader and writer processes.
 *
 *	<dir>/storefs-store	marker: "storefs local store 1|2", "dir-size spec|native"
 *	<dir>/blobs/ab/cd/<hex>	blobs over the inline limit as plain read-only
 *				files (ab, cd: first two digest bytes in hex),
 *				renamed in from tmp/
 *	<dir>/db/ "blobs"	the smaller ones, as LMDB values
 *				(docs/store-format.md)
 *	<dir>/tmp/		blob files being written, "<pid>.<n>.<random>"
 *	<dir>/db/		LMDB: "directories", "pathinfo", "pathinfo_seq", "meta"
 *	<dir>/import.lock	flock()ed by an import, holding its pid
 *	<dir>/notify/		one datagram socket per watcher, "<pid>.<n>.sock"
 *	<dir>/quarantine/	blob files that failed verification, "<hex>[.N]";
 *				never deleted by storefs
 *	<dir>/gcroots/		GC roots: symlinks to store paths (docs/gc.md)
 *	<dir>/temproots/	"<pid>": paths a running mount looked up
 *	<dir>/gc.lock		flock()ed exclusively by a collection
 *
 * All services and blob readers are thread-safe. Readers of blob files
 * expose the file as `fd`; readers of inline blobs have none (-1). Blob
 * commits are not synced one by one: small blobs are kept in memory, and
 * blob_service_flush() stores them in one LMDB transaction and syncs the
 * store's filesystem if blob files were written; callers flush before they
 * register metadata that refers to new blobs. LMDB commits are durable.
 *
 * Verified reads: no blob reader hands out bytes that do not hash to their
 * digest. An inline blob is hashed at every open (docs/store-format.md);
 * for files, the LMDB database "verified" maps a digest to the identity (inode,
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

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

#define LOCAL_STORE_MARKER "storefs-store"
/* The marker's first line is LOCAL_STORE_MAGIC and a format version:
 * 1 holds every blob as a file; 2 may hold small blobs inline in LMDB,
 * which a release of format 1 cannot read, so it refuses the store (it
 * accepts "storefs local store 1" only). A store is created as 1 and
 * becomes 2 just before its first inline blob is committed
 * (docs/store-format.md "Format versions"). */
#define LOCAL_STORE_MAGIC  "storefs local store"
#define LOCAL_STORE_FORMAT 2

/* Opens (with STORE_OPEN_CREATE also creates) the store in `dir`; `flags`
 * are enum store_open_flags. The store has every optional operation of
 * struct store (atomic registration, the scrub's listings). Errors:
 *	-ENOENT	`dir` is missing or empty and creating was not allowed
 *	-EINVAL	`dir` is a non-empty directory without a valid marker (nothing
 *		is written to it), or the marker is damaged or of another version
 *	-EBUSY	STORE_OPEN_IMPORT without STORE_OPEN_WAIT and another import
 *		holds the lock
 *	-EIO, -ENOSPC, -EACCES, ...	filesystem or LMDB failures
 * The same store may be opened several times in one process (the LMDB
 * environment is shared); after fork() the child must open it anew. */
int local_store_open(const char *dir, unsigned flags, struct store **out);

/* The path of the file that holds (or would hold) blob `digest` in the store at
 * `dir`. -ENAMETOOLONG if it does not fit in `len` bytes. */
int local_blob_path(const char *dir, const struct b3_digest *digest, char *buf, size_t len);

#endif
