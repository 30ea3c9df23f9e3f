/* store.h - a store: the three services storefs works with, bundled, and
 * the optional operations only some backends can do.
 *
 * The bundle is built by backends/ from a URL (backends/registry.h); the
 * store layer and the CLI only see the interfaces. An optional operation
 * is a NULL-able member called through its inline wrapper below, which
 * returns -ENOTSUP when the store lacks it (git's odb sources do the
 * same): no caller asks which backend it holds. */
#ifndef STOREFS_STORE_H
#define STOREFS_STORE_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"
#include "store/path_info_service.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum store_open_flags {
	/* Create a missing or empty store directory (and its parents). */
	STORE_OPEN_CREATE = 1 << 0,
	/* Take the store's import lock for the store's lifetime: -EBUSY if
	 * another process (or another open) holds it ... */
	STORE_OPEN_IMPORT = 1 << 1,
	/* ... unless this flag is also given: then wait for it. */
	STORE_OPEN_WAIT = 1 << 2,
	/* No writes: blob writers, Directory and PathInfo puts fail -EROFS,
	 * nothing is created or cleaned up on open. */
	STORE_OPEN_READONLY = 1 << 3,
	/* A store created by this open uses DIR_SIZE_NATIVE (snix's doubled
	 * sizes) instead of DIR_SIZE_SPEC. An existing store keeps its own. */
	STORE_OPEN_NATIVE_SIZE = 1 << 4,
};

/* Called per listed object; a non-zero return stops the listing and is
 * returned. */
typedef int (*store_digest_fn)(void *ctx, const struct b3_digest *digest);
typedef int (*store_quarantine_fn)(void *ctx, const struct b3_digest *digest, const char *path);
/* One GC root: `name` is the root's name (for a temporary root, the pid of
 * the process that holds it), `path` the store path it names. */
typedef int (*store_root_fn)(void *ctx, const char *name, const struct store_path *path,
			     bool temporary);

/* One NAR fetch a store makes on its own (a binary cache substituting a
 * path): the store path, the NAR bytes received so far and the NarSize
 * (0: unknown); `done` once, when the fetch ends (either way). */
struct store_fetch_progress {
	const char *path;
	uint64_t bytes, total;
	bool done;
};
/* Called from the fetching thread, possibly from several at once. */
typedef void (*store_fetch_progress_fn)(void *ctx, const struct store_fetch_progress *p);

/* What a store holds, for statfs: the bytes of its blobs and its objects
 * (blobs, Directories, PathInfos), as the store's records count them. */
struct store_usage {
	uint64_t blob_bytes, objects;
};

/* One record of a store's import index (store_index_put). */
struct store_kv {
	const void *key, *val;
	size_t klen, vlen;
};

struct store {
	struct blob_service *blobs;
	struct dir_service *dirs;
	struct path_info_service *paths;
	/* How this store computes DirectoryEntry.size (fixed per store). */
	enum dir_size_formula size_formula;
	/* Human-readable location, for messages. */
	char *location;
	/* Backend-private cleanup (locks, environments); may be NULL. */
	void (*close)(struct store *st);

	/* --- optional operations (NULL: not supported; use the wrappers) --- */

	/* Atomic registration, both or neither. */
	int (*stage_dirs)(struct store *st, struct dir_service **out);
	int (*commit_path)(struct store *st, struct dir_service *stage, const struct path_info *pi,
			   enum path_info_put_result *res);
	/* The scrub's view of the storage itself (storefs verify);
	 * blobs_each and blob_check both or neither. */
	int (*blobs_each)(struct store *st, store_digest_fn cb, void *ctx);
	int (*blob_check)(struct store *st, const struct b3_digest *digest, uint64_t *size);
	int (*quarantine_each)(struct store *st, store_quarantine_fn cb, void *ctx);
	int (*dirs_each)(struct store *st, store_digest_fn cb, void *ctx);

	/* Roots and garbage collection (docs/gc.md); wrappers and contracts
	 * in store/store_gc.h. */
	int (*root_add)(struct store *st, const char *name, const struct store_path *path);
	int (*root_remove)(struct store *st, const char *name);
	int (*temp_root_add)(struct store *st, const struct store_path *path);
	int (*collect_lock)(struct store *st);
	int (*roots_each)(struct store *st, store_root_fn cb, void *ctx);
	int (*paths_delete)(struct store *st, const struct store_path *paths, size_t n);
	int (*dirs_delete)(struct store *st, const struct b3_digest *v, size_t n);
	int (*blob_delete)(struct store *st, const struct b3_digest *d,
			   const struct timespec *before, uint64_t *freed);

	/* Storage facts for `storefs info`: the store's format (one line) and
	 * the bytes of its metadata database. */
	int (*describe)(struct store *st, char *format, size_t len, uint64_t *db_bytes);

	/* Sizes for statfs (cheap enough to call per statfs). */
	int (*usage)(struct store *st, struct store_usage *out);

	/* Writers and reclaims (docs/trust.md "Orphans"); wrappers and
	 * contracts in store/store_write.h. */
	int (*writer_enter)(struct store *st, int *token);
	void (*writer_leave)(struct store *st, int token);
	int (*exclusive_enter)(struct store *st, unsigned wait_ms, int token[2]);
	void (*exclusive_leave)(struct store *st, const int token[2]);

	/* A store that keeps whole NARs elsewhere (a Nix binary cache as a
	 * destination): whether it has a path, asked without fetching it,
	 * and the upload of a path whose tree is in another store. Both or
	 * neither; wrappers below. */
	int (*path_has)(struct store *st, const struct store_path *p, bool *found);
	int (*nar_put)(struct store *st, struct store *src, const struct path_info *pi,
		       uint64_t *sent);

	/* A store that fetches NARs on its own: who hears of each fetch. */
	void (*set_fetch_progress)(struct store *st, store_fetch_progress_fn fn, void *ctx);

	/* The import index of `storefs import --trust-stat` (store/stat_index.h):
	 * opaque records the store keeps for the importer, a cache that may
	 * lose records. Both or neither; wrappers below. */
	int (*index_get)(struct store *st, const void *key, size_t klen, void *val, size_t cap,
			 size_t *len);
	int (*index_put)(struct store *st, const struct store_kv *kv, size_t n);
};

/* Frees the services, then calls st->close. NULL is a no-op. */
void store_free(struct store *st);

/* Atomic registration. store_stage_dirs() gives a Directory service (free
 * it with dir_service_free) whose put_batch validates and holds
 * Directories back; store_commit_path() then stores them together with
 * `pi` in one atomic step, so a crash leaves both or neither, applying the
 * immutability rule of the PathInfo service's put (docs/trust.md; `res`
 * may be NULL). Blobs must have been flushed before. -EINVAL if `stage` is
 * not this store's, -EEXIST, -EROFS, and the backend's errors. */
static inline int store_stage_dirs(struct store *st, struct dir_service **out)
{
	return st->stage_dirs ? st->stage_dirs(st, out) : -ENOTSUP;
}

static inline int store_commit_path(struct store *st, struct dir_service *stage,
				    const struct path_info *pi, enum path_info_put_result *res)
{
	return st->commit_path ? st->commit_path(st, stage, pi, res) : -ENOTSUP;
}

static inline int store_describe(struct store *st, char *format, size_t len, uint64_t *db_bytes)
{
	return st->describe ? st->describe(st, format, len, db_bytes) : -ENOTSUP;
}

/* The store's blob bytes and object count (see struct store_usage). */
static inline int store_usage(struct store *st, struct store_usage *out)
{
	return st->usage ? st->usage(st, out) : -ENOTSUP;
}

/* Whether `st` has the path with p's hash registered: the store's own
 * question where it has one (a binary cache asks for the narinfo and
 * fetches nothing), else a PathInfo lookup. */
static inline int store_path_has(struct store *st, const struct store_path *p, bool *found)
{
	struct path_info *pi;
	int rc;

	if (st->path_has)
		return st->path_has(st, p, found);
	rc = path_info_service_get(st->paths, p->digest, &pi);
	if (rc == 0)
		path_info_free(pi);
	*found = rc == 0;
	return rc == -ENOENT ? 0 : rc;
}

/* Uploads the NAR of `pi`, rendered from src's Blob and Directory
 * services, and then `pi` itself, to a store that keeps NARs (`sent`: the
 * NAR bytes sent, 0 if the store had the NAR already). -ENOTSUP for
 * stores that keep trees (copy those through the services). */
static inline int store_nar_put(struct store *st, struct store *src, const struct path_info *pi,
				uint64_t *sent)
{
	return st->nar_put ? st->nar_put(st, src, pi, sent) : -ENOTSUP;
}

/* Makes `fn` hear of the NAR fetches of `st` from now on (a progress
 * line); -ENOTSUP for a store that fetches nothing. Before the store is
 * used by other threads. */
static inline int store_set_fetch_progress(struct store *st, store_fetch_progress_fn fn, void *ctx)
{
	if (!st->set_fetch_progress)
		return -ENOTSUP;
	st->set_fetch_progress(st, fn, ctx);
	return 0;
}

/* The value of `key` in the import index: 0 with up to `cap` bytes copied
 * to `val` and its whole length in `*len`, or -ENOENT (no message). */
static inline int store_index_get(struct store *st, const void *key, size_t klen, void *val,
				  size_t cap, size_t *len)
{
	return st->index_get ? st->index_get(st, key, klen, val, cap, len) : -ENOTSUP;
}

/* Stores `n` records (replacing those with the same keys) in one step. */
static inline int store_index_put(struct store *st, const struct store_kv *kv, size_t n)
{
	return st->index_put ? st->index_put(st, kv, n) : -ENOTSUP;
}

/* Every stored blob, in no particular order. */
static inline int store_blobs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return st->blobs_each ? st->blobs_each(st, cb, ctx) : -ENOTSUP;
}

/* Hashes blob `digest` in full whatever the store believes about it: 0 and its
 * size if right, -ENOENT if absent, -EIO with a message if damaged (the
 * store may put the damaged copy aside). */
static inline int store_blob_check(struct store *st, const struct b3_digest *digest, uint64_t *size)
{
	return st->blob_check ? st->blob_check(st, digest, size) : -ENOTSUP;
}

/* Every damaged copy the store has put aside, with the digest it claimed. */
static inline int store_quarantine_each(struct store *st, store_quarantine_fn cb, void *ctx)
{
	return st->quarantine_each ? st->quarantine_each(st, cb, ctx) : -ENOTSUP;
}

/* The digest of every stored Directory. */
static inline int store_dirs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return st->dirs_each ? st->dirs_each(st, cb, ctx) : -ENOTSUP;
}

#endif
