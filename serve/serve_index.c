/* serve_index.c - the NAR hash -> store path index and the LRU of uploaded
 * NARs behind `storefs serve`. */
#include "serve/serve.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

static struct b3_digest key_of(const uint8_t sha256[32])
{
	struct b3_digest k;

	memcpy(k.bytes, sha256, 32);
	return k;
}

/* Called with x->lock held. */
static int index_put_locked(struct serve_index *x, const uint8_t sha256[32],
			    const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct b3_digest k = key_of(sha256);
	uint8_t *v = malloc(STORE_PATH_DIGEST_LEN);
	void *old = NULL;
	int rc;

	if (!v)
		return -ENOMEM;
	memcpy(v, digest, STORE_PATH_DIGEST_LEN);
	rc = digest_map_put(&x->map, &k, v, &old);
	free(rc < 0 ? v : old);
	return rc;
}

static int index_list_cb(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct serve_index *x = ctx;

	x->cursor = cursor;
	return index_put_locked(x, pi->nar_sha256, pi->path.digest);
}

/* Reads the paths registered since the last listing; lock held. */
static int index_refresh_locked(struct serve_index *x, struct store *st)
{
	int rc = path_info_service_list(st->paths, x->cursor, index_list_cb, x);

	return rc == -ENOTSUP ? 0 : rc;
}

int serve_index_init(struct serve_index *x, struct store *st)
{
	int rc;

	digest_map_init(&x->map);
	x->cursor = 0;
	rc = -pthread_mutex_init(&x->lock, NULL);
	if (rc < 0)
		return rc;
	rc = index_refresh_locked(x, st);
	if (rc < 0)
		serve_index_release(x);
	return rc;
}

void serve_index_release(struct serve_index *x)
{
	digest_map_foreach(&x->map, slot) free(slot->value);
	digest_map_release(&x->map);
	pthread_mutex_destroy(&x->lock);
}

int serve_index_lookup(struct serve_index *x, struct store *st, const uint8_t sha256[32],
		       uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct b3_digest k = key_of(sha256);
	uint8_t *v;
	int rc = 0;

	pthread_mutex_lock(&x->lock);
	v = digest_map_get(&x->map, &k);
	if (!v) {
		rc = index_refresh_locked(x, st);
		v = rc == 0 ? digest_map_get(&x->map, &k) : NULL;
	}
	if (v)
		memcpy(digest, v, STORE_PATH_DIGEST_LEN);
	pthread_mutex_unlock(&x->lock);
	return rc < 0 ? rc : v ? 0 : -ENOENT;
}

int serve_index_add(struct serve_index *x, const uint8_t sha256[32],
		    const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = index_put_locked(x, sha256, digest);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

/* --- uploads --- */

int serve_uploads_init(struct serve_uploads *u)
{
	memset(u->slot, 0, sizeof(u->slot));
	u->clock = 0;
	return -pthread_mutex_init(&u->lock, NULL);
}

void serve_uploads_release(struct serve_uploads *u)
{
	for (size_t i = 0; i < SERVE_UPLOADS_MAX; i++) {
		free(u->slot[i].target);
		store_orphans_release(&u->slot[i].orphans);
	}
	pthread_mutex_destroy(&u->lock);
}

/* The slot for `file_sha256`, else a free or the least recently used one. */
static struct serve_upload *uploads_slot(struct serve_uploads *u, const uint8_t file_sha256[32],
					 bool *found)
{
	struct serve_upload *victim = &u->slot[0];

	for (size_t i = 0; i < SERVE_UPLOADS_MAX; i++) {
		struct serve_upload *e = &u->slot[i];

		if (e->stamp && !memcmp(e->file_sha256, file_sha256, 32)) {
			*found = true;
			return e;
		}
		if (e->stamp < victim->stamp)
			victim = e;
	}
	*found = false;
	return victim;
}

int serve_uploads_put(struct serve_uploads *u, const struct serve_upload *f,
		      const struct nar_loaded *l, struct store_orphans *orphans,
		      struct store_orphans *evicted)
{
	uint8_t *target = NULL;
	struct serve_upload *e;
	bool found;

	if (l->root.kind == NODE_SYMLINK) {
		target = malloc(l->root.target_len);
		if (!target)
			return -ENOMEM;
		memcpy(target, l->root.target, l->root.target_len);
	}
	pthread_mutex_lock(&u->lock);
	e = uploads_slot(u, f->file_sha256, &found);
	free(e->target);
	/* An upload of the same file again created nothing new. */
	*evicted = e->stamp && !found ? e->orphans : (struct store_orphans){0};
	if (found)
		store_orphans_release(orphans);
	else
		e->orphans = *orphans;
	*orphans = (struct store_orphans){0};
	memcpy(e->file_sha256, f->file_sha256, 32);
	e->comp = f->comp;
	e->file_size = f->file_size;
	memcpy(e->sha256, l->sum.sha256, 32);
	e->nar_size = l->sum.size;
	e->root = l->root;
	e->root.name = NULL;
	e->root.name_len = 0;
	e->target = target;
	e->root.target = target;
	e->stamp = ++u->clock;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

int serve_uploads_get(struct serve_uploads *u, const uint8_t file_sha256[32],
		      struct serve_upload *out, uint8_t target[CASTORE_MAX_TARGET_LEN])
{
	struct serve_upload *e;
	bool found;

	pthread_mutex_lock(&u->lock);
	e = uploads_slot(u, file_sha256, &found);
	if (found) {
		*out = *e;
		out->target = NULL;
		out->orphans = (struct store_orphans){0};
		if (e->target) {
			memcpy(target, e->target, e->root.target_len);
			out->root.target = target;
		}
		e->stamp = ++u->clock;
	}
	pthread_mutex_unlock(&u->lock);
	return found ? 0 : -ENOENT;
}

void serve_uploads_settle(struct serve_uploads *u, const uint8_t file_sha256[32])
{
	struct serve_upload *e;
	bool found;

	pthread_mutex_lock(&u->lock);
	e = uploads_slot(u, file_sha256, &found);
	if (found)
		store_orphans_release(&e->orphans);
	pthread_mutex_unlock(&u->lock);
}

/* Appends `n` digests of `v` to out[*len] (room was made). */
static void append(struct b3_digest *out, size_t *len, const struct b3_digest *v, size_t n)
{
	if (n)
		memcpy(out + *len, v, n * sizeof(*v));
	*len += n;
}

int serve_uploads_drain(struct serve_uploads *u, struct store_orphans *out)
{
	size_t n = 0, nd = 0;
	int rc = 0;

	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < SERVE_UPLOADS_MAX; i++) {
		n += u->slot[i].orphans.n;
		nd += u->slot[i].orphans.n_dirs;
	}
	*out = (struct store_orphans){.since = UINT64_MAX};
	out->v = n ? malloc(n * sizeof(*out->v)) : NULL;
	out->dirs = nd ? malloc(nd * sizeof(*out->dirs)) : NULL;
	if ((n && !out->v) || (nd && !out->dirs))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < SERVE_UPLOADS_MAX; i++) {
		struct store_orphans *o = &u->slot[i].orphans;

		if (!o->n && !o->n_dirs)
			continue;
		append(out->v, &out->n, o->v, o->n);
		append(out->dirs, &out->n_dirs, o->dirs, o->n_dirs);
		/* Paths registered since the earliest upload began may use any. */
		if (o->since < out->since)
			out->since = o->since;
		store_orphans_release(o);
	}
	if (!out->n && !out->n_dirs)
		out->since = 0;
	pthread_mutex_unlock(&u->lock);
	return rc;
}
