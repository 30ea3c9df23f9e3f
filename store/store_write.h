/* store_write.h - writers that take back what they leave behind when they
 * fail (docs/trust.md "Orphans").
 *
 * A write session brackets everything a writer does from its first blob to
 * its registration: it holds the store's writer lock (so no collection or
 * reclaim runs meanwhile) and writes its blobs through a tracker that
 * remembers which blobs it created. If the writer fails, the session takes
 * the store exclusively for a moment and removes the blobs it created that
 * no path registered since the session began reaches; blobs that were
 * there before it began are never touched. A store without the optional
 * operations (memory) gets sessions that track nothing and reclaim nothing.
 *
 * Sessions are independent and may run in parallel threads. */
#ifndef STOREFS_STORE_WRITE_H
#define STOREFS_STORE_WRITE_H

#include "store/store.h"

#include <limits.h>

/* How long a failing writer waits for the store to be free of other
 * writers before it leaves its blobs to `storefs verify --repair` or gc. */
#define STORE_RECLAIM_WAIT_MS 2000
/* Wait as long as it takes. */
#define STORE_WAIT_FOREVER UINT_MAX

/* Blobs and Directories a writer created (and might leave unreferenced),
 * and the PathInfo listing's last cursor when it began: paths registered
 * since may use them. */
struct store_orphans {
	struct b3_digest *v; /* blobs, malloc'd */
	size_t n;
	struct b3_digest *dirs; /* Directories, malloc'd */
	size_t n_dirs;
	uint64_t since;
};
void store_orphans_release(struct store_orphans *o);

/* --- the optional operations of struct store --- */

/* Takes what every writer holds while it writes and registers; *token is
 * for store_writer_leave. */
static inline int store_writer_enter(struct store *st, int *token)
{
	return st->writer_enter ? st->writer_enter(st, token) : -ENOTSUP;
}

static inline void store_writer_leave(struct store *st, int token)
{
	if (st->writer_leave)
		st->writer_leave(st, token);
}

/* Waits up to `wait_ms` (STORE_WAIT_FOREVER) until no writer, import or
 * collection runs, and keeps them out until store_exclusive_leave. -EBUSY
 * when the time ran out (then nothing is held). */
static inline int store_exclusive_enter(struct store *st, unsigned wait_ms, int token[2])
{
	return st->exclusive_enter ? st->exclusive_enter(st, wait_ms, token) : -ENOTSUP;
}

static inline void store_exclusive_leave(struct store *st, const int token[2])
{
	if (st->exclusive_leave)
		st->exclusive_leave(st, token);
}

/* --- sessions --- */

struct store_write;

/* Begins a session: takes the writer lock (waiting while a collection or
 * reclaim runs) and notes the listing's position. -ENOMEM, lock errors. */
int store_write_begin(struct store *st, struct store_write **out);
/* The blob service to write through (the store's, tracked). */
struct blob_service *store_write_blobs(struct store_write *w);
/* The Directory service to write through (the store's, tracked where the
 * store can take Directories back). A dir_putter over it may store
 * Directories before its close (castore/dir_service.h); a failed session
 * takes back those it created, as it does blobs. */
struct dir_service *store_write_dirs(struct store_write *w);
/* Ends a session that succeeded (what it wrote is registered). */
void store_write_end(struct store_write *w);
/* Ends a session whose blobs are kept for a later registration (a serve
 * upload waiting for its narinfo): what it created goes to `out`, for
 * store_reclaim() if that registration never comes. */
void store_write_detach(struct store_write *w, struct store_orphans *out);
/* Ends a failed session: leaves the writer lock, then store_reclaim()s
 * what it created, waiting at most STORE_RECLAIM_WAIT_MS. *removed (may be
 * NULL) counts the blobs removed. 0, or store_reclaim's error (-EBUSY:
 * other writers kept the store busy; -ENOTSUP) with nothing removed. */
int store_write_fail(struct store_write *w, uint64_t *removed);

/* store_write_end() if `rc` is 0, else store_write_fail(), keeping the
 * failure's message; says on stderr (log) what a failed one left behind
 * when it could not take it back, naming `what` (e.g. the file imported). */
void store_write_finish(struct store_write *w, int rc, const char *what);

/* Removes the Directories and then the blobs of `o` that no path
 * registered since o->since reaches, holding the store exclusively
 * (waiting up to `wait_ms`). *removed counts the blobs. */
int store_reclaim(struct store *st, const struct store_orphans *o, unsigned wait_ms,
		  uint64_t *removed);

#endif
