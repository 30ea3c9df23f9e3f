/* composite.c - a store whose blob, Directory and PathInfo services come
 * from different stores. Which optional operations it keeps, and why the
 * others stay NULL, is in docs/services.md. */
#include "backends/composite.h"

#include "common/err.h"
#include "store/store_gc.h"
#include "store/store_write.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sub-store tokens of one writer session (store_writer_enter). */
struct writer_slot {
	bool used;
	int token[STORE_ROLES];
};

struct composite {
	struct store base;
	/* Distinct, owned: each is freed once, in close(). */
	struct store *subs[STORE_ROLES];
	size_t n;
	/* The store each service of `base` is lent by. */
	struct store *of[STORE_ROLES];
	pthread_mutex_t lock; /* slots */
	struct writer_slot *slots;
	size_t n_slots;
};

static struct composite *composite_of(struct store *st)
{
	return (struct composite *)st;
}

static struct store *sub_of(struct store *st, enum store_role r)
{
	return composite_of(st)->of[r];
}

/* store_free() has freed the lent services with `base` already: each
 * sub-store forgets them and frees the rest, its unused services and its
 * own state (locks, databases). */
static void composite_close(struct store *st)
{
	struct composite *c = composite_of(st);

	c->of[STORE_ROLE_BLOBS]->blobs = NULL;
	c->of[STORE_ROLE_DIRS]->dirs = NULL;
	c->of[STORE_ROLE_PATHS]->paths = NULL;
	for (size_t i = 0; i < c->n; i++)
		store_free(c->subs[i]);
	free(c->slots);
	pthread_mutex_destroy(&c->lock);
}

/* --- atomic registration: only where Directories and PathInfos are one store --- */

static int composite_stage_dirs(struct store *st, struct dir_service **out)
{
	return store_stage_dirs(sub_of(st, STORE_ROLE_PATHS), out);
}

static int composite_commit_path(struct store *st, struct dir_service *stage,
				 const struct path_info *pi, enum path_info_put_result *res)
{
	return store_commit_path(sub_of(st, STORE_ROLE_PATHS), stage, pi, res);
}

/* --- the scrub's listings, from the store that holds the objects --- */

static int composite_blobs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return store_blobs_each(sub_of(st, STORE_ROLE_BLOBS), cb, ctx);
}

static int composite_blob_check(struct store *st, const struct b3_digest *d, uint64_t *size)
{
	return store_blob_check(sub_of(st, STORE_ROLE_BLOBS), d, size);
}

static int composite_quarantine_each(struct store *st, store_quarantine_fn cb, void *ctx)
{
	return store_quarantine_each(sub_of(st, STORE_ROLE_BLOBS), cb, ctx);
}

static int composite_dirs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return store_dirs_each(sub_of(st, STORE_ROLE_DIRS), cb, ctx);
}

/* --- roots name store paths: they live with the PathInfos --- */

static int composite_root_add(struct store *st, const char *name, const struct store_path *p)
{
	return store_root_add(sub_of(st, STORE_ROLE_PATHS), name, p);
}

static int composite_root_remove(struct store *st, const char *name)
{
	return store_root_remove(sub_of(st, STORE_ROLE_PATHS), name);
}

static int composite_temp_root_add(struct store *st, const struct store_path *p)
{
	return store_temp_root_add(sub_of(st, STORE_ROLE_PATHS), p);
}

static int composite_roots_each(struct store *st, store_root_fn cb, void *ctx)
{
	return store_roots_each(sub_of(st, STORE_ROLE_PATHS), cb, ctx);
}

/* --- writer sessions: every sub-store's, in one order --- */

/* A free slot's index, growing the table if needed; under c->lock. */
static int slot_take(struct composite *c, size_t *out)
{
	struct writer_slot *v;
	size_t i;

	for (i = 0; i < c->n_slots && c->slots[i].used; i++)
		;
	if (i == c->n_slots) {
		if (c->n_slots >= INT32_MAX / 2)
			return -ENOMEM;
		v = realloc(c->slots, (c->n_slots * 2 + 4) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + c->n_slots, 0, (c->n_slots + 4) * sizeof(*v));
		c->slots = v;
		c->n_slots = c->n_slots * 2 + 4;
	}
	c->slots[i].used = true;
	*out = i;
	return 0;
}

static void slot_put(struct composite *c, size_t i)
{
	pthread_mutex_lock(&c->lock);
	c->slots[i].used = false;
	pthread_mutex_unlock(&c->lock);
}

/* Leaves the first `k` sub-stores of slot `i` (newest first). */
static void subs_leave(struct composite *c, size_t i, size_t k)
{
	int token[STORE_ROLES];

	pthread_mutex_lock(&c->lock);
	memcpy(token, c->slots[i].token, sizeof(token));
	pthread_mutex_unlock(&c->lock);
	while (k-- > 0)
		store_writer_leave(c->subs[k], token[k]);
}

/* Each sub-store may be collected or reclaimed on its own: a write holds
 * all of their writer locks, always taken in `subs` order. */
static int composite_writer_enter(struct store *st, int *token)
{
	struct composite *c = composite_of(st);
	int tok[STORE_ROLES], rc;
	size_t i, k;

	pthread_mutex_lock(&c->lock);
	rc = slot_take(c, &i);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return rc;
	for (k = 0; k < c->n; k++) {
		rc = store_writer_enter(c->subs[k], &tok[k]);
		if (rc == -ENOTSUP) {
			tok[k] = -1;
			rc = 0;
		}
		if (rc < 0)
			break;
		pthread_mutex_lock(&c->lock); /* the table may move */
		c->slots[i].token[k] = tok[k];
		pthread_mutex_unlock(&c->lock);
	}
	if (rc < 0) {
		subs_leave(c, i, k);
		slot_put(c, i);
		return rc;
	}
	*token = (int)i;
	return 0;
}

static void composite_writer_leave(struct store *st, int token)
{
	struct composite *c = composite_of(st);

	subs_leave(c, (size_t)token, c->n);
	slot_put(c, (size_t)token);
}

/* --- the import index and fetch progress --- */

/* The index lives with the PathInfos: --trust-stat takes a tree unread
 * only when the PathInfo store has it registered with that very root, so
 * the records never vouch for objects by themselves (docs/services.md). */
static int composite_index_get(struct store *st, const void *key, size_t klen, void *val,
			       size_t cap, size_t *len)
{
	return store_index_get(sub_of(st, STORE_ROLE_PATHS), key, klen, val, cap, len);
}

static int composite_index_put(struct store *st, const struct store_kv *kv, size_t n)
{
	return store_index_put(sub_of(st, STORE_ROLE_PATHS), kv, n);
}

/* Whichever sub-store fetches NARs (a binary cache) reports its fetches. */
static void composite_set_fetch_progress(struct store *st, store_fetch_progress_fn fn, void *ctx)
{
	struct composite *c = composite_of(st);

	for (size_t i = 0; i < c->n; i++)
		store_set_fetch_progress(c->subs[i], fn, ctx);
}

/* --- statfs --- */

static int composite_usage(struct store *st, struct store_usage *out)
{
	struct composite *c = composite_of(st);
	struct store_usage u;
	int rc;

	*out = (struct store_usage){0};
	for (size_t i = 0; i < c->n; i++) {
		rc = store_usage(c->subs[i], &u);
		if (rc < 0)
			return rc;
		if (c->subs[i] == c->of[STORE_ROLE_BLOBS])
			out->blob_bytes = u.blob_bytes;
		out->objects += u.objects;
	}
	return 0;
}

/* --- assembly --- */

static bool has_service(const struct store *s, enum store_role r)
{
	return r == STORE_ROLE_BLOBS  ? s->blobs != NULL
	       : r == STORE_ROLE_DIRS ? s->dirs != NULL
				      : s->paths != NULL;
}

static int composite_location(struct composite *c)
{
	const char *b = c->of[STORE_ROLE_BLOBS]->location, *d = c->of[STORE_ROLE_DIRS]->location,
		   *p = c->of[STORE_ROLE_PATHS]->location;

	if (asprintf(&c->base.location, "blobs %s, directories %s, path infos %s", b ? b : "?",
		     d ? d : "?", p ? p : "?") < 0) {
		c->base.location = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* The optional operations that stay correct across stores (docs/services.md). */
static void composite_set_ops(struct composite *c)
{
	struct store *st = &c->base;

	st->close = composite_close;
	if (c->of[STORE_ROLE_DIRS] == c->of[STORE_ROLE_PATHS]) {
		st->stage_dirs = composite_stage_dirs;
		st->commit_path = composite_commit_path;
	}
	st->blobs_each = composite_blobs_each;
	st->blob_check = composite_blob_check;
	st->quarantine_each = composite_quarantine_each;
	st->dirs_each = composite_dirs_each;
	st->root_add = composite_root_add;
	st->root_remove = composite_root_remove;
	st->temp_root_add = composite_temp_root_add;
	st->roots_each = composite_roots_each;
	st->writer_enter = composite_writer_enter;
	st->writer_leave = composite_writer_leave;
	st->usage = composite_usage;
	if (c->of[STORE_ROLE_PATHS]->index_get) {
		st->index_get = composite_index_get;
		st->index_put = composite_index_put;
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->subs[i]->set_fetch_progress)
			st->set_fetch_progress = composite_set_fetch_progress;
}

int store_composite_new(struct store *const *subs, size_t n, const size_t from[STORE_ROLES],
			struct store **out)
{
	struct composite *c;

	if (n < 1 || n > STORE_ROLES)
		return sf_err(-EINVAL, "a composite store is made of 1 to 3 stores, not %zu", n);
	for (int r = 0; r < STORE_ROLES; r++)
		if (from[r] >= n || !has_service(subs[from[r]], (enum store_role)r))
			return sf_err(-EINVAL, "composite store: no such service in store %zu",
				      from[r]);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c->subs, subs, n * sizeof(*subs));
	c->n = n;
	for (int r = 0; r < STORE_ROLES; r++)
		c->of[r] = subs[from[r]];
	if (composite_location(c) < 0) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->base.blobs = c->of[STORE_ROLE_BLOBS]->blobs;
	c->base.dirs = c->of[STORE_ROLE_DIRS]->dirs;
	c->base.paths = c->of[STORE_ROLE_PATHS]->paths;
	/* Directory sizes are what the Directories were written with. */
	c->base.size_formula = c->of[STORE_ROLE_DIRS]->size_formula;
	composite_set_ops(c);
	*out = &c->base;
	return 0;
}
