/* dir_service.h - the Directory service interface.
 *
 * Directories are addressed by the BLAKE3 of their canonical encoding. A
 * backend returns only Directories it has validated and whose digest it has
 * checked. Uploads of a closure go through a dir_putter (leaves to root,
 * closure-validated) and reach the backend as one batch. */
#ifndef STOREFS_DIR_SERVICE_H
#define STOREFS_DIR_SERVICE_H

#include "castore/directory.h"

struct dir_service;

/* Called per Directory of a recursive get (dir_service_get_recursive). */
typedef int (*dir_visit_fn)(void *ctx, const struct b3_digest *digest, const struct directory *d);

struct dir_service_ops {
	/* -ENOENT if absent. `*out` is owned by the caller. */
	int (*get)(struct dir_service *s, const struct b3_digest *d, struct directory **out);
	/* Stores `n` already-validated Directories with their digests in one
	 * atomic step (all or none become visible). Leaves come first. */
	int (*put_batch)(struct dir_service *s, struct directory *const *dirs,
			 const struct b3_digest *digests, size_t n);
	void (*free)(struct dir_service *s);
	/* Optional (NULL: absent): as put_batch, also setting created[i] when
	 * this call made Directory i exist (it was absent before), so that a
	 * failed writer can take back exactly what it added. */
	int (*put_batch_created)(struct dir_service *s, struct directory *const *dirs,
				 const struct b3_digest *digests, size_t n, bool *created);
	/* put_batch takes any Directories whose children are stored or come
	 * earlier in the batch, not only whole closures (a gRPC Put stream
	 * must be one): a dir_putter then passes them on in batches. */
	bool partial_batches;
	/* Optional: dir_service_get_recursive() in one request (a remote
	 * service), with the same contract; NULL: one get() per Directory. */
	int (*get_recursive)(struct dir_service *s, const struct b3_digest *root, dir_visit_fn cb,
			     void *ctx);
};

struct dir_service {
	const struct dir_service_ops *ops;
};

static inline int dir_service_get(struct dir_service *s, const struct b3_digest *d,
				  struct directory **out)
{
	return s->ops->get(s, d, out);
}

static inline void dir_service_free(struct dir_service *s)
{
	if (s)
		s->ops->free(s);
}

/* Stores one Directory whose children are already stored (checked), returning
 * its digest. */
int dir_service_put(struct dir_service *s, const struct directory *d, struct b3_digest *out);

/* Calls `cb` for `root` and every Directory below it, root first, breadth
 * first, each digest once. A missing Directory is -EIO with a message naming
 * it (-ENOENT only if the root itself is absent). Stops early and returns
 * cb's value if it returns non-zero. */
int dir_service_get_recursive(struct dir_service *s, const struct b3_digest *root, dir_visit_fn cb,
			      void *ctx);

/* dir_recv: checks a closure received root to leaves (a recursive Get's
 * stream, castore.md §2.5): the first Directory must be the root, each
 * later one a child of one received before, each sent once, and at the
 * end every child must have been received. -EIO with a message naming the
 * Directory otherwise. */
struct dir_recv;
int dir_recv_new(const struct b3_digest *root, struct dir_recv **out);
/* Checks `d` (validated already) and computes its digest into *digest. */
int dir_recv_accept(struct dir_recv *v, const struct directory *d, struct b3_digest *digest);
/* 0 if nothing is outstanding; -ENOENT if nothing was received at all (an
 * unknown root). Frees `v` in every case. */
int dir_recv_finish(struct dir_recv *v);
void dir_recv_free(struct dir_recv *v);

/* put_multiple: validates a closure sent leaves to root: every Directory
 * referenced must have been sent before, recorded sizes must match the
 * formula, and at close there must be exactly one root. Re-sending a
 * Directory is tolerated.
 *
 * Over a service with partial_batches, memory is bounded by one batch, not
 * by the closure: Directories are passed on in batches (a few MiB at most)
 * as they come, children never after their parents, and the putter keeps
 * only each distinct Directory's digest and size (about 80 bytes). So a
 * putter that fails, or is freed without a successful close, may leave
 * Directories stored that nothing references: a write session
 * (store/store_write.h) takes back those it created. A closure that fits
 * one batch, or any closure over another service, is stored only by a
 * successful close, in one put_batch. */
struct dir_putter;
int dir_putter_new(struct dir_service *s, enum dir_size_formula f, struct dir_putter **out);
/* As dir_putter_new(), but the closure is stored only by a successful
 * close, in one put_batch, over any service: for a writer that cannot hold
 * a write session while its client sends (memory grows with the closure). */
int dir_putter_new_whole(struct dir_service *s, enum dir_size_formula f, struct dir_putter **out);
/* Takes ownership of `d` in every case. */
int dir_putter_put(struct dir_putter *p, struct directory *d, struct b3_digest *digest_out);
/* Checks the closure, stores the last batch and returns the root digest.
 * -EINVAL if the closure is not exactly one rooted graph or an earlier put
 * failed (that error is returned again). Frees the putter in every case. */
int dir_putter_close(struct dir_putter *p, struct b3_digest *root_out);
void dir_putter_free(struct dir_putter *p);

#endif
