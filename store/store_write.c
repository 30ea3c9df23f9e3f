/* store_write.c - write sessions and the reclaim of what failed writers
 * created (docs/trust.md "Orphans"). */
#include "store/store_write.h"

#include "castore/blob_tracker.h"
#include "castore/digest_map.h"
#include "castore/dir_tracker.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct store_write {
	struct store *st;
	struct blob_tracker *tracker;
	struct dir_tracker *dirs; /* NULL: the store cannot delete Directories */
	uint64_t since;
	int token;
	bool locked;
};

/* The values of the candidates set. */
#define CANDIDATE ((void *)1)
#define KEPT	  ((void *)2)

void store_orphans_release(struct store_orphans *o)
{
	free(o->v);
	free(o->dirs);
	*o = (struct store_orphans){0};
}

int store_write_begin(struct store *st, struct store_write **out)
{
	struct store_write *w = calloc(1, sizeof(*w));
	int rc = w ? 0 : -ENOMEM;

	/* A store that cannot delete blobs has no use for the list of those
	 * the session created; not asking lets a commit return before its
	 * blob is durable (S3 uploads in the background until the flush:
	 * docs/s3.md "Uploads"). */
	if (rc == 0 && st->blob_delete)
		rc = blob_tracker_new(st->blobs, &w->tracker);
	if (rc == 0 && st->dirs_delete)
		rc = dir_tracker_new(st->dirs, &w->dirs);
	if (rc == 0) {
		w->st = st;
		rc = store_writer_enter(st, &w->token);
		w->locked = rc == 0;
	}
	/* Without the operations the session still writes, it only cannot
	 * take anything back (the since cursor is then unused). */
	if (rc == -ENOTSUP)
		rc = 0;
	if (rc == 0 && path_info_service_last_cursor(st->paths, &w->since) == -ENOTSUP)
		w->since = 0;
	if (rc < 0) {
		if (w) {
			blob_tracker_free(w->tracker);
			dir_tracker_free(w->dirs);
		}
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

struct blob_service *store_write_blobs(struct store_write *w)
{
	return w->tracker ? blob_tracker_service(w->tracker) : w->st->blobs;
}

struct dir_service *store_write_dirs(struct store_write *w)
{
	return w->dirs ? dir_tracker_service(w->dirs) : w->st->dirs;
}

static void session_free(struct store_write *w)
{
	if (w->locked)
		store_writer_leave(w->st, w->token);
	blob_tracker_free(w->tracker);
	dir_tracker_free(w->dirs);
	free(w);
}

void store_write_end(struct store_write *w)
{
	if (w)
		session_free(w);
}

void store_write_detach(struct store_write *w, struct store_orphans *out)
{
	out->since = w->since;
	out->v = NULL, out->n = 0;
	if (w->tracker)
		blob_tracker_take(w->tracker, &out->v, &out->n);
	out->dirs = NULL, out->n_dirs = 0;
	if (w->dirs)
		dir_tracker_take(w->dirs, &out->dirs, &out->n_dirs);
	session_free(w);
}

int store_write_fail(struct store_write *w, uint64_t *removed)
{
	struct store *st = w->st;
	bool untracked = !w->tracker; /* the store cannot delete blobs */
	struct store_orphans o;
	int rc;

	/* Our own writer lock would keep our reclaim out. */
	store_write_detach(w, &o);
	rc = store_reclaim(st, &o, STORE_RECLAIM_WAIT_MS, removed);
	store_orphans_release(&o);
	return rc == 0 && untracked ? -ENOTSUP : rc;
}

void store_write_finish(struct store_write *w, int failure, const char *what)
{
	char msg[1024];
	uint64_t removed = 0;
	struct store *st;
	struct store_orphans o;
	int rc;

	if (failure == 0) {
		store_write_end(w);
		return;
	}
	/* The reclaim must not overwrite the message of the failure. */
	snprintf(msg, sizeof(msg), "%s", sf_errmsg(failure));
	st = w->st;
	store_write_detach(w, &o);
	rc = store_reclaim(st, &o, STORE_RECLAIM_WAIT_MS, &removed);
	if (rc < 0 && rc != -ENOTSUP && (o.n || o.n_dirs))
		log_warn("'%s' failed and left %zu blobs and %zu directories it wrote (%s); "
			 "`storefs verify --repair` or `storefs gc` removes them",
			 what, o.n, o.n_dirs,
			 rc == -EBUSY ? "other writers kept the store busy" : sf_errmsg(rc));
	else if (removed || o.n_dirs)
		log_debug("'%s' failed: removed the %llu blobs and %zu directories it wrote", what,
			  (unsigned long long)removed, o.n_dirs);
	store_orphans_release(&o);
	sf_err(failure, "%s", msg);
}

/* --- the reclaim --- */

struct reclaim {
	struct store *st;
	struct digest_map candidates; /* blobs */
	struct digest_map dirs;	      /* Directories */
};

/* Takes `d` off the candidates of `m` (only present keys are touched, so
 * this never allocates). */
static void keep(struct digest_map *m, const struct b3_digest *d)
{
	if (digest_map_get(m, d))
		digest_map_put(m, d, KEPT, NULL);
}

static int keep_dir(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct reclaim *r = ctx;

	keep(&r->dirs, digest);
	for (size_t i = 0; i < d->count; i++)
		if (d->nodes[i].kind == NODE_FILE)
			keep(&r->candidates, &d->nodes[i].digest);
	return 0;
}

/* A path registered since the writers began keeps every blob and Directory
 * it reaches (it found them present and used them: nothing else may). */
static int keep_reached(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct reclaim *r = ctx;
	int rc = 0;

	if (pi->root.kind == NODE_FILE)
		keep(&r->candidates, &pi->root.digest);
	else if (pi->root.kind == NODE_DIRECTORY)
		rc = dir_service_get_recursive(r->st->dirs, &pi->root.digest, keep_dir, r);
	return rc;
}

/* Directories go first, so none ever names a missing blob. */
static int remove_dirs(struct reclaim *r, const struct store_orphans *o)
{
	struct b3_digest *v = malloc((o->n_dirs ? o->n_dirs : 1) * sizeof(*v));
	size_t n = 0;
	int rc;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_dirs; i++)
		if (digest_map_get(&r->dirs, &o->dirs[i]) == CANDIDATE)
			v[n++] = o->dirs[i];
	rc = n ? store_dirs_delete(r->st, v, n) : 0;
	free(v);
	return rc;
}

static int reclaim_locked(struct reclaim *r, const struct store_orphans *o, uint64_t *removed)
{
	/* The blobs were created after o->since; a file time cannot be in
	 * the future of any later check, so this deletes unconditionally. */
	const struct timespec any = {.tv_sec = INT64_MAX};
	uint64_t freed;
	int rc = path_info_service_list(r->st->paths, o->since, keep_reached, r);

	if (rc == 0)
		rc = remove_dirs(r, o);
	for (size_t i = 0; rc == 0 && i < o->n; i++) {
		if (digest_map_get(&r->candidates, &o->v[i]) != CANDIDATE)
			continue;
		rc = store_blob_delete(r->st, &o->v[i], &any, &freed);
		if (rc > 0)
			++*removed;
		rc = rc < 0 ? rc : 0;
	}
	return rc;
}

static int add_candidates(struct digest_map *m, const struct b3_digest *v, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = digest_map_put(m, &v[i], CANDIDATE, NULL);
	return rc;
}

int store_reclaim(struct store *st, const struct store_orphans *o, unsigned wait_ms,
		  uint64_t *removed)
{
	struct reclaim r = {.st = st};
	bool any = o->n || o->n_dirs;
	uint64_t n = 0;
	int token[2], rc;

	digest_map_init(&r.candidates);
	digest_map_init(&r.dirs);
	rc = add_candidates(&r.candidates, o->v, o->n);
	if (rc == 0)
		rc = add_candidates(&r.dirs, o->dirs, o->n_dirs);
	if (rc == 0 && any)
		rc = store_exclusive_enter(st, wait_ms, token);
	if (rc == 0 && any) {
		rc = reclaim_locked(&r, o, &n);
		store_exclusive_leave(st, token);
	}
	digest_map_release(&r.candidates);
	digest_map_release(&r.dirs);
	if (removed)
		*removed = n;
	return rc;
}
