/* cache.c - a local verified cache in front of a remote store (--cache
 * DIR; docs/services.md "The cache"): reads go to the cache first, a miss
 * is fetched from the remote, verified, stored in the cache and served
 * from there; writes and listings go to the remote. */
#include "backends/cache_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "store/store_gc.h"
#include "store/store_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A blob is copied from the remote in pieces of this size. */
#define FETCH_CHUNK (256 * 1024)
/* A Directory closure deeper than this is refused (the fill recurses). */
#define FILL_DEPTH_MAX 1024
/* Blob fills between two syncs of the cache (docs/services.md "The
 * cache"): a fill needs no durability, the sync only lets the cache's
 * verified records be written, so a later process need not hash again. */
#define FILLS_PER_SYNC 1024

/* --- one fetch per digest (cache_claim.c) --- */

/* Looks `d` up in the cache with `lookup`; on a miss fills the cache with
 * `fill` (once, however many threads miss it) and looks again. */
static int through_cache(struct cached *c, const struct b3_digest *d,
			 int (*lookup)(struct cached *c, const struct b3_digest *d, void *out),
			 int (*fill)(struct cached *c, const struct b3_digest *d), void *out)
{
	int rc = lookup(c, d, out);
	bool mine;

	while (rc == -ENOENT) {
		rc = cache_fetch_claim(c, d, &mine);
		if (rc == 0 && mine) {
			/* another process may have filled it before our claim */
			rc = lookup(c, d, out);
			if (rc == -ENOENT)
				rc = fill(c, d);
			else
				mine = false;
			cache_fetch_done(c, d);
			return rc < 0 || !mine ? rc : lookup(c, d, out);
		}
		if (rc == 0)
			rc = lookup(c, d, out); /* -ENOENT: that fetch failed, try ours */
	}
	return rc;
}

/* --- blobs --- */

static int blob_copy(struct blob_reader *r, struct blob_writer *w)
{
	uint8_t *buf = malloc(FETCH_CHUNK);
	uint64_t off = 0;
	size_t n = 0;
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0) {
		rc = blob_reader_pread(r, buf, FETCH_CHUNK, off, &n);
		if (rc == 0 && n)
			rc = blob_writer_write(w, buf, n);
		off += n;
		if (n < FETCH_CHUNK)
			break;
	}
	free(buf);
	if (rc == 0 && off != r->size)
		rc = sf_err(-EIO, "the remote blob has %llu bytes, announced %llu",
			    (unsigned long long)off, (unsigned long long)r->size);
	return rc;
}

/* Makes the cache's fills durable and records them as verified. A failure
 * is logged: the blobs were served, and a later open hashes them. */
static void cache_sync(struct cached *c)
{
	int rc;

	atomic_store(&c->fills, 0);
	atomic_store(&c->unsynced, 0);
	rc = blob_service_flush(c->cache->blobs);
	if (rc < 0)
		log_msg(LOG_WARN, "cannot sync the cache '%s': %s",
			c->cache->location ? c->cache->location : "?", sf_errmsg(rc));
}

int cache_blob_keep(struct cached *c, const struct b3_digest *d, uint64_t len,
		    int (*copy)(void *ctx, struct blob_writer *w), void *ctx)
{
	struct store_write *sw;
	struct blob_writer *w;
	struct b3_digest got;
	int rc = store_write_begin(c->cache, &sw);

	if (rc < 0)
		return rc;
	rc = blob_service_open_write(store_write_blobs(sw), &w);
	if (rc == 0) {
		rc = copy(ctx, w);
		if (rc == 0)
			rc = blob_writer_commit(w, d, &got);
		else
			blob_writer_abort(w);
	}
	/* Not made durable one by one: every read of the cache verifies (a
	 * file whose identity is not recorded as verified is hashed, a small
	 * blob is hashed), and records are written only by a sync, after the
	 * bytes they vouch for are durable. A crash can leave a torn or
	 * missing blob, which is then fetched again, never served. */
	if (rc == 0)
		atomic_fetch_add(&c->unsynced, len);
	if (rc == 0 && atomic_fetch_add(&c->fills, 1) + 1 >= FILLS_PER_SYNC)
		cache_sync(c);
	store_write_finish(sw, rc, "a cache fill");
	return rc;
}

static int copy_reader(void *ctx, struct blob_writer *w)
{
	return blob_copy(ctx, w);
}

/* The remote's bytes go to the cache only if they hash to `d`. */
static int blob_store(struct cached *c, struct blob_reader *r, const struct b3_digest *d)
{
	return cache_blob_keep(c, d, r->size, copy_reader, r);
}

/* --- the size bound (cache-size=, docs/services.md "The cache") --- */

/* A blob younger than this is never evicted: another process may have
 * just filled it and be about to open it. */
#define EVICT_MIN_AGE_S 5

static void lru_touch(struct cached *c, const struct b3_digest *d)
{
	if (!c->bound)
		return;
	pthread_mutex_lock(&c->lru_lock);
	/* a failed put (-ENOMEM) only makes the blob look older */
	(void)digest_map_put(&c->used, d, (void *)(uintptr_t)++c->tick, NULL);
	pthread_mutex_unlock(&c->lru_lock);
}

struct victim {
	struct b3_digest d;
	uint64_t tick; /* 0: not used by this process (older than any use) */
};

struct victims {
	struct cached *c;
	struct victim *v;
	size_t n, cap;
};

static int victim_add(void *ctx, const struct b3_digest *d)
{
	struct victims *vs = ctx;

	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 256;
		struct victim *v = realloc(vs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vs->v = v;
		vs->cap = cap;
	}
	pthread_mutex_lock(&vs->c->lru_lock);
	vs->v[vs->n].tick = (uintptr_t)digest_map_get(&vs->c->used, d);
	pthread_mutex_unlock(&vs->c->lru_lock);
	vs->v[vs->n++].d = *d;
	return 0;
}

static int victim_cmp(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->tick < y->tick ? -1 : x->tick > y->tick;
}

/* Deletes least recently used blobs until the cache holds 90% of the
 * bound. A reader open on a deleted blob keeps working: a blob file
 * stays readable through its descriptor once unlinked, and a small blob's
 * reader holds a copy. */
static int evict(struct cached *c, uint64_t held)
{
	struct victims vs = {.c = c};
	struct timespec before;
	uint64_t want = c->bound - c->bound / 10, freed;
	int rc = store_blobs_each(c->cache, victim_add, &vs);

	clock_gettime(CLOCK_REALTIME, &before);
	before.tv_sec -= EVICT_MIN_AGE_S;
	if (rc == 0)
		qsort(vs.v, vs.n, sizeof(*vs.v), victim_cmp);
	for (size_t i = 0; rc >= 0 && i < vs.n && held > want; i++) {
		rc = store_blob_delete(c->cache, &vs.v[i].d, &before, &freed);
		if (rc > 0)
			held = held > freed ? held - freed : 0;
	}
	free(vs.v);
	return rc < 0 ? rc : 0;
}

/* After a fill: if the cache's blobs exceed the bound, evicts (one
 * thread at a time; the others go on). A failure is logged: the blob
 * asked for was served. */
static void cache_trim(struct cached *c)
{
	struct store_usage u;
	uint64_t held;
	bool mine;
	int rc;

	if (!c->bound || store_usage(c->cache, &u) < 0)
		return;
	/* The usage counts synced blobs only (their records): the fills since
	 * are added, and synced before evicting so that they can be listed. */
	held = u.blob_bytes + atomic_load(&c->unsynced);
	if (held <= c->bound)
		return;
	if (atomic_load(&c->fills))
		cache_sync(c);
	pthread_mutex_lock(&c->lru_lock);
	mine = !c->trimming;
	c->trimming = true;
	pthread_mutex_unlock(&c->lru_lock);
	if (!mine)
		return;
	rc = evict(c, held);
	if (rc < 0)
		log_msg(LOG_WARN, "cannot evict blobs from the cache '%s': %s",
			c->cache->location ? c->cache->location : "?", sf_errmsg(rc));
	pthread_mutex_lock(&c->lru_lock);
	c->trimming = false;
	pthread_mutex_unlock(&c->lru_lock);
}

int cache_blob_lookup(struct cached *c, const struct b3_digest *d, struct blob_reader **out)
{
	int rc = blob_service_open_read(c->cache->blobs, d, out);

	if (rc == 0)
		lru_touch(c, d);
	return rc;
}

void cache_filled(struct cached *c, const struct b3_digest *d)
{
	lru_touch(c, d);
	cache_trim(c);
}

static struct cached *blobs_of(struct blob_service *s)
{
	return ((struct cache_blobs *)s)->c;
}

static int cb_stat(struct blob_service *s, const struct b3_digest *d, uint64_t *size)
{
	struct cached *c = blobs_of(s);
	int rc = c->writer ? -ENOENT : blob_service_stat(c->cache->blobs, d, size);

	return rc == -ENOENT ? blob_service_stat(c->remote->blobs, d, size) : rc;
}

/* A lazy remote reader (chunks fetched as read, docs/s3.md "Reads") is
 * served through this one: nothing is fetched at open, and once the reads
 * have covered every byte of the blob, in any order (so the remote reader
 * fetched every piece and checked the blob's digest), the blob is copied
 * into the cache from what the remote reader holds, verified again by the
 * cache's writer. */
#define THROUGH_SPANS 64 /* reads scattered wider than this are not kept */

struct span {
	uint64_t start, end;
};

struct through_reader {
	struct blob_reader base;
	struct cached *c;
	struct blob_reader *remote;
	struct b3_digest digest;
	pthread_mutex_t lock;
	struct span spans[THROUGH_SPANS]; /* bytes read, sorted, disjoint; lock */
	size_t n_spans;			  /* lock */
	bool kept;			  /* copied into the cache, or tried; lock */
};

/* Adds [start, end) to the sorted, disjoint spans, merging neighbours. */
static void spans_add(struct through_reader *t, uint64_t start, uint64_t end)
{
	struct span *v = t->spans;
	size_t i = 0, j;

	while (i < t->n_spans && v[i].end < start)
		i++;
	for (j = i; j < t->n_spans && v[j].start <= end; j++) {
		start = v[j].start < start ? v[j].start : start;
		end = v[j].end > end ? v[j].end : end;
	}
	if (i == j && t->n_spans == THROUGH_SPANS)
		return; /* no room: this blob will not be kept by this reader */
	memmove(&v[i + 1], &v[j], (t->n_spans - j) * sizeof(*v));
	v[i] = (struct span){start, end};
	t->n_spans = t->n_spans - (j - i) + 1;
}

/* True the first time the reads have covered the whole blob. */
static bool through_covered(struct through_reader *t, uint64_t off, size_t n)
{
	bool now = false;

	pthread_mutex_lock(&t->lock);
	if (n)
		spans_add(t, off, off + n);
	if (t->n_spans == 1 && t->spans[0].start == 0 && t->spans[0].end == t->base.size &&
	    !t->kept)
		now = t->kept = true;
	pthread_mutex_unlock(&t->lock);
	return now;
}

static int through_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct through_reader *t = (struct through_reader *)r;
	char text[B3_TEXT_LEN + 1];
	int rc = blob_reader_pread(t->remote, buf, len, off, n);

	if (rc < 0 || !through_covered(t, off, *n))
		return rc;
	rc = blob_store(t->c, t->remote, &t->digest);
	if (rc == 0) {
		lru_touch(t->c, &t->digest);
		cache_trim(t->c);
	}
	if (rc < 0) { /* served anyway: the remote reader verified it */
		b3_digest_to_text(&t->digest, text);
		log_msg(LOG_WARN, "blob '%s' is not kept in the cache: %s", text, sf_errmsg(rc));
	}
	return 0;
}

static void through_close(struct blob_reader *r)
{
	struct through_reader *t = (struct through_reader *)r;

	blob_reader_close(t->remote);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct blob_reader_ops through_ops = {
    .pread = through_pread,
    .close = through_close,
};

static int through_new(struct cached *c, const struct b3_digest *d, struct blob_reader *remote,
		       struct blob_reader **out)
{
	struct through_reader *t = calloc(1, sizeof(*t));

	if (!t) {
		blob_reader_close(remote);
		return -ENOMEM;
	}
	t->base =
	    (struct blob_reader){.ops = &through_ops, .size = remote->size, .fd = -1, .lazy = true};
	t->c = c;
	t->remote = remote;
	t->digest = *d;
	pthread_mutex_init(&t->lock, NULL);
	*out = &t->base;
	return 0;
}

/* The remote's reader of `d`: a lazy one that reads chunks is served
 * chunk by chunk from the cache (cache_chunks.c), another lazy one
 * through the cache (above); any other is copied into the cache whole
 * (blob_store()). */
static int blob_fill_or_through(struct cached *c, const struct b3_digest *d,
				struct blob_reader **through)
{
	char text[B3_TEXT_LEN + 1];
	struct blob_reader *r;
	int rc = blob_service_open_read(c->remote->blobs, d, &r);

	if (rc < 0)
		return rc;
	if (r->lazy) {
		rc = cache_chunked_new(c, d, r, through);
		return rc == -ENOTSUP ? through_new(c, d, r, through) : rc;
	}
	rc = blob_store(c, r, d);
	blob_reader_close(r);
	if (rc == 0) {
		lru_touch(c, d);
		cache_trim(c);
	}
	if (rc < 0 && rc != -ENOMEM) {
		b3_digest_to_text(d, text);
		rc = sf_err(rc, "blob '%s' from '%s' is not cached: %s", text, c->remote->location,
			    sf_errmsg(rc));
	}
	return rc;
}

/* As through_cache(), but a lazy remote reader is handed out as it is. */
static int cb_open_read(struct blob_service *s, const struct b3_digest *d, struct blob_reader **out)
{
	struct cached *c = blobs_of(s);
	int rc = cache_blob_lookup(c, d, out);
	bool mine;

	while (rc == -ENOENT) {
		rc = cache_fetch_claim(c, d, &mine);
		if (rc == 0 && mine) {
			/* another process may have filled it before our claim */
			rc = cache_blob_lookup(c, d, out);
			if (rc != -ENOENT) {
				cache_fetch_done(c, d);
				return rc;
			}
			*out = NULL;
			rc = blob_fill_or_through(c, d, out);
			cache_fetch_done(c, d);
			if (rc < 0 || *out)
				return rc;
			rc = cache_blob_lookup(c, d, out); /* -ENOENT: evicted meanwhile, again */
		} else if (rc == 0) {
			rc =
			    cache_blob_lookup(c, d, out); /* -ENOENT: that fetch failed, try ours */
		}
	}
	return rc;
}

static int cb_open_write(struct blob_service *s, struct blob_writer **out)
{
	return blob_service_open_write(blobs_of(s)->remote->blobs, out);
}

static int cb_flush(struct blob_service *s)
{
	return blob_service_flush(blobs_of(s)->remote->blobs);
}

/* Embedded in struct cached: freed with it. */
static void cb_free(struct blob_service *s)
{
	(void)s;
}

static const struct blob_service_ops cache_blob_ops = {
    .stat = cb_stat,
    .open_read = cb_open_read,
    .open_write = cb_open_write,
    .flush = cb_flush,
    .free = cb_free,
};

/* --- Directories: a miss fetches the closure below it --- */

struct dir_fill {
	struct cached *c;
	struct dir_putter *p;
	struct digest_map sent;
};

static int dir_missing(struct cached *c, const struct b3_digest *d, const struct b3_digest *parent)
{
	char text[B3_TEXT_LEN + 1], ptext[B3_TEXT_LEN + 1];

	b3_digest_to_text(d, text);
	b3_digest_to_text(parent, ptext);
	return sf_err(-EIO, "directory '%s' referenced by '%s' is missing from '%s'", text, ptext,
		      c->remote->location);
}

/* Sends `d` and everything below it to the putter, children first (what the
 * cache has already is taken from it); the putter checks each digest it
 * computes against the name its parent gave it, and every size. */
static int fill_dir(struct dir_fill *f, const struct b3_digest *d, const struct b3_digest *parent,
		    unsigned depth)
{
	char text[B3_TEXT_LEN + 1];
	struct directory *dir;
	struct b3_digest got;
	int rc;

	if (digest_map_get(&f->sent, d))
		return 0;
	if (depth > FILL_DEPTH_MAX)
		return sf_err(-EIO, "directory closure is deeper than %d levels", FILL_DEPTH_MAX);
	rc = dir_service_get(f->c->cache->dirs, d, &dir);
	if (rc == -ENOENT)
		rc = dir_service_get(f->c->remote->dirs, d, &dir);
	if (rc == -ENOENT && parent)
		return dir_missing(f->c, d, parent);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < dir->count; i++)
		if (dir->nodes[i].kind == NODE_DIRECTORY)
			rc = fill_dir(f, &dir->nodes[i].digest, d, depth + 1);
	if (rc < 0) {
		directory_free(dir);
		return rc;
	}
	rc = dir_putter_put(f->p, dir, &got);
	if (rc == 0 && !b3_digest_eq(&got, d)) {
		b3_digest_to_text(d, text);
		return sf_err(-EIO, "directory '%s' from '%s' does not match its digest", text,
			      f->c->remote->location);
	}
	return rc < 0 ? rc : digest_map_put(&f->sent, d, f, NULL);
}

static int dir_fill(struct cached *c, const struct b3_digest *d)
{
	struct dir_fill f = {.c = c};
	struct b3_digest root;
	int rc = dir_putter_new(c->cache->dirs, c->remote->size_formula, &f.p);

	if (rc < 0)
		return rc;
	digest_map_init(&f.sent);
	rc = fill_dir(&f, d, NULL, 0);
	if (rc == 0)
		rc = dir_putter_close(f.p, &root);
	else
		dir_putter_free(f.p);
	digest_map_release(&f.sent);
	return rc;
}

static int dir_lookup(struct cached *c, const struct b3_digest *d, void *out)
{
	return dir_service_get(c->cache->dirs, d, out);
}

static struct cached *dirs_of(struct dir_service *s)
{
	return ((struct cache_dirs *)s)->c;
}

static int cd_get(struct dir_service *s, const struct b3_digest *d, struct directory **out)
{
	return through_cache(dirs_of(s), d, dir_lookup, dir_fill, out);
}

static int cd_put_batch(struct dir_service *s, struct directory *const *dirs,
			const struct b3_digest *digests, size_t n)
{
	struct dir_service *r = dirs_of(s)->remote->dirs;

	return r->ops->put_batch(r, dirs, digests, n);
}

static void cd_free(struct dir_service *s)
{
	(void)s;
}

static const struct dir_service_ops cache_dir_ops = {
    .get = cd_get,
    .put_batch = cd_put_batch,
    .free = cd_free,
};

/* --- PathInfos: kept once seen (a registered path never changes) --- */

/* Copies what a mount needs first into the cache: the root's Directory
 * closure and the PathInfo. Failing to keep the PathInfo only costs a
 * later fetch. */
static int path_remember(struct cached *c, const struct path_info *pi)
{
	struct directory *d;
	int rc = 0;

	if (pi->root.kind == NODE_DIRECTORY) {
		rc = cd_get(&c->dirs.base, &pi->root.digest, &d);
		if (rc < 0)
			return rc;
		directory_free(d);
	}
	rc = path_info_service_put(c->cache->paths, pi);
	if (rc < 0)
		log_warn("cache: cannot keep '%s': %s", pi->path.name, sf_errmsg(rc));
	return 0;
}

static struct cached *paths_of(struct path_info_service *s)
{
	return ((struct cache_paths *)s)->c;
}

/* `rc` and *out from the remote's get: a PathInfo found is kept. */
static int remembered(struct cached *c, int rc, struct path_info **out)
{
	if (rc < 0)
		return rc;
	rc = path_remember(c, *out);
	if (rc < 0) {
		path_info_free(*out);
		*out = NULL;
	}
	return rc;
}

static int cp_get(struct path_info_service *s, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		  struct path_info **out)
{
	struct cached *c = paths_of(s);
	int rc = c->writer ? -ENOENT : path_info_service_get(c->cache->paths, digest, out);

	if (rc != -ENOENT)
		return rc;
	return remembered(c, path_info_service_get(c->remote->paths, digest, out), out);
}

static int cp_get_path(struct path_info_service *s, const struct store_path *p,
		       struct path_info **out)
{
	struct cached *c = paths_of(s);
	int rc = c->writer ? -ENOENT : path_info_service_get_path(c->cache->paths, p, out);

	if (rc != -ENOENT)
		return rc;
	return remembered(c, path_info_service_get_path(c->remote->paths, p, out), out);
}

static int cp_put(struct path_info_service *s, const struct path_info *pi,
		  enum path_info_put_result *res)
{
	return path_info_service_register(paths_of(s)->remote->paths, pi, res);
}

static int cp_list(struct path_info_service *s, uint64_t after, path_info_list_fn cb, void *ctx)
{
	return path_info_service_list(paths_of(s)->remote->paths, after, cb, ctx);
}

static int cp_watch(struct path_info_service *s, path_info_watch_fn cb, void *ctx)
{
	return path_info_service_watch(paths_of(s)->remote->paths, cb, ctx);
}

static int cp_last_cursor(struct path_info_service *s, uint64_t *out)
{
	return path_info_service_last_cursor(paths_of(s)->remote->paths, out);
}

static void cp_free(struct path_info_service *s)
{
	(void)s;
}

static const struct path_info_service_ops cache_path_ops = {
    .get = cp_get,
    .put = cp_put,
    .list = cp_list,
    .watch = cp_watch,
    .free = cp_free,
    .get_path = cp_get_path,
    .last_cursor = cp_last_cursor,
};

/* --- the store: writes are the remote's, so are their sessions and roots --- */

static struct store *remote_of(struct store *st)
{
	return ((struct cached *)st)->remote;
}

static int cs_stage_dirs(struct store *st, struct dir_service **out)
{
	return store_stage_dirs(remote_of(st), out);
}

static int cs_commit_path(struct store *st, struct dir_service *stage, const struct path_info *pi,
			  enum path_info_put_result *res)
{
	return store_commit_path(remote_of(st), stage, pi, res);
}

static int cs_writer_enter(struct store *st, int *token)
{
	return store_writer_enter(remote_of(st), token);
}

static void cs_writer_leave(struct store *st, int token)
{
	store_writer_leave(remote_of(st), token);
}

static int cs_exclusive_enter(struct store *st, unsigned wait_ms, int token[2])
{
	return store_exclusive_enter(remote_of(st), wait_ms, token);
}

static void cs_exclusive_leave(struct store *st, const int token[2])
{
	store_exclusive_leave(remote_of(st), token);
}

static int cs_blob_delete(struct store *st, const struct b3_digest *d,
			  const struct timespec *before, uint64_t *freed)
{
	return store_blob_delete(remote_of(st), d, before, freed);
}

static int cs_root_add(struct store *st, const char *name, const struct store_path *p)
{
	return store_root_add(remote_of(st), name, p);
}

static int cs_root_remove(struct store *st, const char *name)
{
	return store_root_remove(remote_of(st), name);
}

static int cs_temp_root_add(struct store *st, const struct store_path *p)
{
	return store_temp_root_add(remote_of(st), p);
}

static int cs_roots_each(struct store *st, store_root_fn cb, void *ctx)
{
	return store_roots_each(remote_of(st), cb, ctx);
}

static int cs_usage(struct store *st, struct store_usage *out)
{
	return store_usage(remote_of(st), out);
}

/* The remote fetches (a binary cache): the cache itself fetches no NAR. */
static void cs_set_fetch_progress(struct store *st, store_fetch_progress_fn fn, void *ctx)
{
	store_set_fetch_progress(remote_of(st), fn, ctx);
}

/* The import index (--trust-stat) is this host's: the cache's. Its root
 * check asks the remote, as a writer does (store_cached_set_writer). */
static int cs_index_get(struct store *st, const void *key, size_t klen, void *val, size_t cap,
			size_t *len)
{
	return store_index_get(((struct cached *)st)->cache, key, klen, val, cap, len);
}

static int cs_index_put(struct store *st, const struct store_kv *kv, size_t n)
{
	return store_index_put(((struct cached *)st)->cache, kv, n);
}

static void cs_close(struct store *st)
{
	struct cached *c = (struct cached *)st;

	if (atomic_load(&c->fills))
		cache_sync(c);
	store_free(c->remote);
	store_free(c->cache);
	cache_claims_release(c);
	pthread_mutex_destroy(&c->lru_lock);
	digest_map_release(&c->used);
}

/* Each operation only where the remote has it, so the fallbacks stay. */
static void cs_set_ops(struct store *st, const struct store *r)
{
	st->close = cs_close;
	st->stage_dirs = r->stage_dirs ? cs_stage_dirs : NULL;
	st->commit_path = r->commit_path ? cs_commit_path : NULL;
	st->writer_enter = r->writer_enter ? cs_writer_enter : NULL;
	st->writer_leave = r->writer_leave ? cs_writer_leave : NULL;
	st->exclusive_enter = r->exclusive_enter ? cs_exclusive_enter : NULL;
	st->exclusive_leave = r->exclusive_leave ? cs_exclusive_leave : NULL;
	st->blob_delete = r->blob_delete ? cs_blob_delete : NULL;
	st->root_add = r->root_add ? cs_root_add : NULL;
	st->root_remove = r->root_remove ? cs_root_remove : NULL;
	st->temp_root_add = r->temp_root_add ? cs_temp_root_add : NULL;
	st->roots_each = r->roots_each ? cs_roots_each : NULL;
	st->usage = r->usage ? cs_usage : NULL;
	st->set_fetch_progress = r->set_fetch_progress ? cs_set_fetch_progress : NULL;
}

/* "N", "NK", "NM", "NG", "NT" (powers of 1024), N > 0. */
static int size_parse(const char *v, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;
	unsigned long long n;
	const char *u;

	errno = 0;
	n = (v[0] >= '0' && v[0] <= '9') ? strtoull(v, &end, 10) : 0;
	if (!n || errno)
		return -EINVAL;
	u = *end ? strchr(units, *end) : NULL;
	if (*end && (!u || end[1]))
		return -EINVAL;
	for (int shift = u ? (int)(u - units + 1) * 10 : 0; shift; shift -= 10) {
		if (n > UINT64_MAX >> 10)
			return -EINVAL;
		n <<= 10;
	}
	*out = n;
	return 0;
}

int store_cache_arg_parse(const char *arg, char **dir, uint64_t *bound)
{
	const char *q = strrchr(arg, '?');

	*bound = 0;
	if (q && strncmp(q + 1, "cache-size=", 11))
		return sf_err(-EINVAL, "--cache '%s': unknown parameter '%s' (only cache-size=)",
			      arg, q + 1);
	if (q && size_parse(q + 12, bound) < 0)
		return sf_err(-EINVAL,
			      "--cache '%s': cache-size= wants a size above 0 such as 512M or 10G",
			      arg);
	*dir = q ? strndup(arg, (size_t)(q - arg)) : strdup(arg);
	return *dir ? 0 : -ENOMEM;
}

void store_cached_set_writer(struct store *st)
{
	struct cached *c = (struct cached *)st;

	c->writer = true;
	/* Only a writer's root check is the remote's: only it has the index. */
	if (c->cache->index_get) {
		st->index_get = cs_index_get;
		st->index_put = cs_index_put;
	}
}

void store_cached_set_bound(struct store *st, uint64_t bytes)
{
	((struct cached *)st)->bound = bytes;
}

int store_cached_new(struct store *remote, struct store *cache, struct store **out)
{
	struct cached *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (asprintf(&c->base.location, "%s (cached in %s)",
		     remote->location ? remote->location : "?",
		     cache->location ? cache->location : "?") < 0) {
		free(c);
		return -ENOMEM;
	}
	c->remote = remote;
	c->cache = cache;
	c->blobs = (struct cache_blobs){{&cache_blob_ops}, c};
	c->dirs = (struct cache_dirs){{&cache_dir_ops}, c};
	c->paths = (struct cache_paths){{&cache_path_ops}, c};
	cache_claims_init(c);
	pthread_mutex_init(&c->lru_lock, NULL);
	digest_map_init(&c->used);
	c->base.blobs = &c->blobs.base;
	c->base.dirs = &c->dirs.base;
	c->base.paths = &c->paths.base;
	c->base.size_formula = remote->size_formula;
	cs_set_ops(&c->base, remote);
	*out = &c->base;
	return 0;
}
