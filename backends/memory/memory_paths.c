/* memory_paths.c - a PathInfo service over an insertion-ordered array. */
#include "backends/memory/memory.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <pthread.h>
#include <stdlib.h>

struct mem_path {
	uint8_t *bytes; /* path_info_encode() output */
	size_t len;
};

struct mem_watch {
	path_info_watch_fn cb;
	void *ctx;
};

struct mem_paths {
	struct path_info_service base;
	pthread_mutex_t lock;
	/* All protected by lock. Cursor c is at entries[c - 1]. */
	struct mem_path **entries;
	size_t count, cap;
	struct digest_map by_digest; /* padded store path digest -> entry */
	struct mem_watch *watches;
	size_t n_watches;
};

/* Store path digests are uniformly random like BLAKE3 digests, so a zero
 * padded one keys the digest map just as well. */
static struct b3_digest path_key(const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct b3_digest k = {{0}};

	memcpy(k.bytes, digest, STORE_PATH_DIGEST_LEN);
	return k;
}

static int mem_paths_get(struct path_info_service *ps, const uint8_t digest[STORE_PATH_DIGEST_LEN],
			 struct path_info **out)
{
	struct mem_paths *s = (struct mem_paths *)ps;
	struct b3_digest key = path_key(digest);
	struct mem_path *e;
	int rc;

	pthread_mutex_lock(&s->lock);
	e = digest_map_get(&s->by_digest, &key);
	rc = e ? path_info_decode(e->bytes, e->len, out) : -ENOENT;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int mem_paths_append(struct mem_paths *s, const struct b3_digest *key, struct mem_path *e)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct mem_path **v = realloc(s->entries, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->entries = v;
		s->cap = cap;
	}
	if (digest_map_put(&s->by_digest, key, e, NULL) < 0)
		return -ENOMEM;
	s->entries[s->count++] = e;
	return 0;
}

/* A known path keeps its entry and only gains signatures (path_info_merge);
 * called with the lock held, so the check and the write are one step. */
static int mem_paths_merge(struct mem_path *e, const struct path_info *pi,
			   enum path_info_put_result *res)
{
	struct path_info *have;
	uint8_t *bytes;
	size_t len;
	int rc = path_info_decode(e->bytes, e->len, &have);

	if (rc < 0)
		return rc;
	rc = path_info_merge(have, pi, res);
	if (rc == 0 && *res == PATH_INFO_SIGS_ADDED)
		rc = path_info_encode(have, &bytes, &len);
	if (rc == 0 && *res == PATH_INFO_SIGS_ADDED) {
		free(e->bytes);
		e->bytes = bytes;
		e->len = len;
	}
	path_info_free(have);
	return rc;
}

/* Appends a new path; `bytes` is taken over on success. */
static int mem_paths_add(struct mem_paths *s, const struct b3_digest *key, uint8_t *bytes,
			 size_t len)
{
	struct mem_path *e = malloc(sizeof(*e));
	int rc = e ? mem_paths_append(s, key, e) : -ENOMEM;

	if (rc < 0) {
		free(e);
		return rc;
	}
	e->bytes = bytes;
	e->len = len;
	return 0;
}

static int mem_paths_store(struct mem_paths *s, const struct path_info *pi, uint8_t *bytes,
			   size_t len, enum path_info_put_result *res)
{
	struct b3_digest key = path_key(pi->path.digest);
	struct mem_path *e;
	int rc;

	pthread_mutex_lock(&s->lock);
	e = digest_map_get(&s->by_digest, &key);
	*res = e ? PATH_INFO_UNCHANGED : PATH_INFO_ADDED;
	rc = e ? mem_paths_merge(e, pi, res) : mem_paths_add(s, &key, bytes, len);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0 || e)
		free(bytes);
	return rc;
}

/* Copies the watch list so that callbacks run without the lock. */
static void mem_paths_notify(struct mem_paths *s, const struct path_info *pi)
{
	char name[STORE_PATH_MAX_BASENAME + 1];
	struct mem_watch *w;
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n_watches;
	w = n ? malloc(n * sizeof(*w)) : NULL;
	if (w)
		memcpy(w, s->watches, n * sizeof(*w));
	pthread_mutex_unlock(&s->lock);
	if (!w)
		return;
	store_path_basename(&pi->path, name);
	for (size_t i = 0; i < n; i++)
		w[i].cb(w[i].ctx, name);
	free(w);
}

static int mem_paths_put(struct path_info_service *ps, const struct path_info *pi,
			 enum path_info_put_result *res)
{
	struct mem_paths *s = (struct mem_paths *)ps;
	enum path_info_put_result r;
	uint8_t *bytes;
	size_t len;
	int rc = path_info_validate(pi);

	if (rc == 0)
		rc = path_info_encode(pi, &bytes, &len);
	if (rc == 0)
		rc = mem_paths_store(s, pi, bytes, len, &r);
	if (rc < 0)
		return rc;
	if (r == PATH_INFO_ADDED)
		mem_paths_notify(s, pi);
	if (res)
		*res = r;
	return 0;
}

/* Decodes the entry at cursor `c`; -ENOENT past the end. */
static int mem_paths_at(struct mem_paths *s, uint64_t c, struct path_info **out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&s->lock);
	if (c >= 1 && c <= s->count)
		rc = path_info_decode(s->entries[c - 1]->bytes, s->entries[c - 1]->len, out);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int mem_paths_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb,
			  void *ctx)
{
	struct mem_paths *s = (struct mem_paths *)ps;

	for (uint64_t c = after + 1; c > after; c++) {
		struct path_info *pi;
		int rc = mem_paths_at(s, c, &pi);

		if (rc == -ENOENT)
			return 0;
		if (rc < 0)
			return rc;
		rc = cb(ctx, pi, c);
		path_info_free(pi);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static int mem_paths_watch(struct path_info_service *ps, path_info_watch_fn cb, void *ctx)
{
	struct mem_paths *s = (struct mem_paths *)ps;
	struct mem_watch *w;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	w = realloc(s->watches, (s->n_watches + 1) * sizeof(*w));
	if (w) {
		w[s->n_watches++] = (struct mem_watch){cb, ctx};
		s->watches = w;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void mem_paths_free(struct path_info_service *ps)
{
	struct mem_paths *s = (struct mem_paths *)ps;

	for (size_t i = 0; i < s->count; i++) {
		free(s->entries[i]->bytes);
		free(s->entries[i]);
	}
	free(s->entries);
	free(s->watches);
	digest_map_release(&s->by_digest);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int mem_paths_last_cursor(struct path_info_service *ps, uint64_t *out)
{
	struct mem_paths *s = (struct mem_paths *)ps;

	pthread_mutex_lock(&s->lock);
	*out = s->count;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct path_info_service_ops mem_paths_ops = {
    .last_cursor = mem_paths_last_cursor,
    .get = mem_paths_get,
    .put = mem_paths_put,
    .list = mem_paths_list,
    .watch = mem_paths_watch,
    .free = mem_paths_free,
};

int memory_path_info_service_new(struct path_info_service **out)
{
	struct mem_paths *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &mem_paths_ops;
	pthread_mutex_init(&s->lock, NULL);
	digest_map_init(&s->by_digest);
	*out = &s->base;
	return 0;
}
