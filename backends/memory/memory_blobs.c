/* memory_blobs.c - a blob service over a digest map of refcounted buffers. */
#include "backends/memory/memory.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Immutable once stored; readers hold a reference so they may outlive the
 * service. */
struct mem_blob {
	atomic_size_t refs;
	size_t len;
	uint8_t data[];
};

struct mem_blobs {
	struct blob_service base;
	pthread_mutex_t lock;
	struct digest_map blobs; /* -> struct mem_blob, protected by lock */
};

struct mem_reader {
	struct blob_reader base;
	struct mem_blob *blob;
};

struct mem_writer {
	struct blob_writer base;
	struct mem_blobs *service;
	struct b3_hasher hasher;
	uint8_t *buf;
	size_t len, cap;
};

static void mem_blob_unref(struct mem_blob *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		free(b);
}

/* The blob for `d` with a new reference, or NULL. */
static struct mem_blob *mem_blobs_ref(struct mem_blobs *s, const struct b3_digest *d)
{
	struct mem_blob *b;

	pthread_mutex_lock(&s->lock);
	b = digest_map_get(&s->blobs, d);
	if (b)
		atomic_fetch_add(&b->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return b;
}

static int mem_stat(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	struct mem_blob *b = mem_blobs_ref((struct mem_blobs *)bs, d);

	if (!b)
		return -ENOENT;
	*size = b->len;
	mem_blob_unref(b);
	return 0;
}

static int mem_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct mem_blob *b = ((struct mem_reader *)r)->blob;
	size_t avail = off < b->len ? b->len - (size_t)off : 0;

	*n = len < avail ? len : avail;
	if (*n)
		memcpy(buf, b->data + off, *n);
	return 0;
}

static void mem_reader_close(struct blob_reader *r)
{
	mem_blob_unref(((struct mem_reader *)r)->blob);
	free(r);
}

static const struct blob_reader_ops mem_reader_ops = {
    .pread = mem_reader_pread,
    .close = mem_reader_close,
};

static int mem_open_read(struct blob_service *bs, const struct b3_digest *d,
			 struct blob_reader **out)
{
	struct mem_reader *r = malloc(sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->blob = mem_blobs_ref((struct mem_blobs *)bs, d);
	if (!r->blob) {
		free(r);
		return -ENOENT;
	}
	r->base = (struct blob_reader){.ops = &mem_reader_ops, .size = r->blob->len, .fd = -1};
	*out = &r->base;
	return 0;
}

static int mem_writer_write(struct blob_writer *bw, const void *buf, size_t len)
{
	struct mem_writer *w = (struct mem_writer *)bw;

	if (len > SIZE_MAX - w->len)
		return sf_err(-EOVERFLOW, "blob is too large for memory");
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *nb;

		while (cap < w->len + len)
			cap = cap > SIZE_MAX / 2 ? w->len + len : cap * 2;
		nb = realloc(w->buf, cap);
		if (!nb)
			return -ENOMEM;
		w->buf = nb;
		w->cap = cap;
	}
	if (len)
		memcpy(w->buf + w->len, buf, len);
	w->len += len;
	b3_hasher_update(&w->hasher, buf, len);
	return 0;
}

static void mem_writer_abort(struct blob_writer *bw)
{
	struct mem_writer *w = (struct mem_writer *)bw;

	free(w->buf);
	free(w);
}

static int digest_mismatch(const struct b3_digest *expect, const struct b3_digest *got)
{
	char e[B3_TEXT_LEN + 1], g[B3_TEXT_LEN + 1];

	b3_digest_to_text(expect, e);
	b3_digest_to_text(got, g);
	return sf_err(-EIO, "blob digest mismatch: expected '%s', got '%s'", e, g);
}

/* Inserts the written bytes under `d` unless present. */
static int mem_writer_store(struct mem_writer *w, const struct b3_digest *d, bool *created)
{
	struct mem_blobs *s = w->service;
	struct mem_blob *b = malloc(sizeof(*b) + w->len);
	int rc = 0;

	if (!b)
		return -ENOMEM;
	atomic_init(&b->refs, 1);
	b->len = w->len;
	if (w->len)
		memcpy(b->data, w->buf, w->len);
	pthread_mutex_lock(&s->lock);
	*created = !digest_map_get(&s->blobs, d);
	if (!*created)
		mem_blob_unref(b);
	else if (digest_map_put(&s->blobs, d, b, NULL) < 0) {
		mem_blob_unref(b);
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int mem_writer_commit(struct blob_writer *bw, const struct b3_digest *expect,
			     struct b3_digest *out, bool *created)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	struct b3_digest d;
	bool isnew = false;
	int rc;

	b3_hasher_final(&w->hasher, &d);
	if (expect && !b3_digest_eq(expect, &d))
		rc = digest_mismatch(expect, &d);
	else
		rc = mem_writer_store(w, &d, &isnew);
	if (rc == 0 && out)
		*out = d;
	if (rc == 0 && created)
		*created = isnew;
	mem_writer_abort(bw);
	return rc;
}

static const struct blob_writer_ops mem_writer_ops = {
    .write = mem_writer_write,
    .commit = mem_writer_commit,
    .abort = mem_writer_abort,
};

static int mem_open_write(struct blob_service *bs, struct blob_writer **out)
{
	struct mem_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->base.ops = &mem_writer_ops;
	w->service = (struct mem_blobs *)bs;
	b3_hasher_init(&w->hasher);
	*out = &w->base;
	return 0;
}

static void mem_blobs_free(struct blob_service *bs)
{
	struct mem_blobs *s = (struct mem_blobs *)bs;

	digest_map_foreach(&s->blobs, slot) mem_blob_unref(slot->value);
	digest_map_release(&s->blobs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct blob_service_ops mem_blobs_ops = {
    .stat = mem_stat,
    .open_read = mem_open_read,
    .open_write = mem_open_write,
    .flush = NULL,
    .free = mem_blobs_free,
};

int memory_blob_service_new(struct blob_service **out)
{
	struct mem_blobs *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &mem_blobs_ops;
	pthread_mutex_init(&s->lock, NULL);
	digest_map_init(&s->blobs);
	*out = &s->base;
	return 0;
}
