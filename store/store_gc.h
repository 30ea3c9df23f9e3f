/* store_gc.h - the optional operations of a store for roots and garbage
 * collection (docs/gc.md): members of struct store, called through these
 * wrappers, which return -ENOTSUP for a store without them. Listing
 * Directories and blobs uses store_dirs_each / store_blobs_each. */
#ifndef STOREFS_STORE_GC_H
#define STOREFS_STORE_GC_H

#include "store/store.h"

/* Names `path` by root `name` (created or replaced atomically). -EINVAL
 * for a bad name (empty, '/', leading '.', > 255 bytes). */
static inline int store_root_add(struct store *st, const char *name, const struct store_path *p)
{
	return st->root_add ? st->root_add(st, name, p) : -ENOTSUP;
}

/* -ENOENT with a message if there is no such root. */
static inline int store_root_remove(struct store *st, const char *name)
{
	return st->root_remove ? st->root_remove(st, name) : -ENOTSUP;
}

/* Records that this process uses `path` (a running mount), until it
 * exits. Waits while a collection runs. */
static inline int store_temp_root_add(struct store *st, const struct store_path *p)
{
	return st->temp_root_add ? st->temp_root_add(st, p) : -ENOTSUP;
}

/* Blocks new temporary roots until the store is closed; a collection takes
 * it before it reads the roots. */
static inline int store_collect_lock(struct store *st)
{
	return st->collect_lock ? st->collect_lock(st) : -ENOTSUP;
}

/* Every root, and with the collection lock held the temporary roots of
 * live processes. Entries that do not name a store path are skipped with a
 * warning. */
static inline int store_roots_each(struct store *st, store_root_fn cb, void *ctx)
{
	return st->roots_each ? st->roots_each(st, cb, ctx) : -ENOTSUP;
}

/* Deletes the PathInfos of `paths` (absent ones are skipped) in one atomic
 * step, then tells running mounts. */
static inline int store_paths_delete(struct store *st, const struct store_path *v, size_t n)
{
	return st->paths_delete ? st->paths_delete(st, v, n) : -ENOTSUP;
}

/* Deletes Directories in one atomic step (absent ones are skipped). */
static inline int store_dirs_delete(struct store *st, const struct b3_digest *v, size_t n)
{
	return st->dirs_delete ? st->dirs_delete(st, v, n) : -ENOTSUP;
}

/* Deletes blob `d` if it was last changed before `before`: 1 and its size
 * in `*freed`; 0 if it is newer or absent. */
static inline int store_blob_delete(struct store *st, const struct b3_digest *d,
				    const struct timespec *before, uint64_t *freed)
{
	return st->blob_delete ? st->blob_delete(st, d, before, freed) : -ENOTSUP;
}

#endif
