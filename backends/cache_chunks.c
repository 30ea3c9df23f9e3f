/* cache_chunks.c - a blob the remote keeps as chunks, read through the
 * cache chunk by chunk (docs/services.md "Chunks in the cache"): each
 * chunk is a blob of its own in the cache, named by its digest, fetched
 * once (however many readers, of however many blobs, miss it at once)
 * and verified by that digest before it is kept; once the reads have
 * passed every chunk, the blob is kept whole too, verified by its own
 * digest, so later opens get a local file. */
#include "backends/cache_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Chunk readers of the cache a reader keeps open: a read crossing a
 * chunk boundary and a sequential reader's next reads find theirs. */
#define HELD_CHUNKS 2
/* A chunk longer than this is refused (each is fetched into memory). */
#define CHUNK_LEN_MAX (16u << 20)
/* The piece in which a blob is copied from its chunks. */
#define COPY_PIECE (256u << 10)

struct held {
	size_t i;
	struct blob_reader *r; /* NULL: slot free */
};

struct chunked {
	struct blob_reader base;
	struct cached *c;
	struct blob_reader *remote; /* lends the list, fetches chunks */
	const struct blob_chunk *v; /* the remote's list */
	size_t n;
	struct b3_digest digest;
	pthread_mutex_t lock; /* one read at a time; guards what follows */
	struct held held[HELD_CHUNKS];
	unsigned next_slot;
	bool *seen;    /* chunk i was read through this reader */
	size_t n_seen; /* how many were */
	bool kept;     /* the whole blob was kept, or tried */
	int failed;    /* the chunks do not make the blob: every read fails */
};

/* The chunk that holds byte `off` (< size). */
static size_t chunk_at(const struct chunked *k, uint64_t off)
{
	size_t lo = 0, hi = k->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->v[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int remote_broken(struct chunked *k, const char *why)
{
	char text[B3_TEXT_LEN + 1];

	b3_digest_to_text(&k->digest, text);
	return sf_err(-EIO, "the chunk list of blob '%s' from '%s' %s: not served", text,
		      k->c->remote->location ? k->c->remote->location : "?", why);
}

/* --- fetching: the chunk asked for, and after it those a sequential
 * reader will want next --- */

struct piece {
	const uint8_t *buf;
	size_t len;
};

static int copy_piece(void *ctx, struct blob_writer *w)
{
	struct piece *p = ctx;

	return blob_writer_write(w, p->buf, p->len);
}

/* A reader that read the chunk before `i` reads on: fetch ahead. */
static bool sequential(const struct chunked *k, size_t i)
{
	return i > 0 && k->seen[i - 1];
}

/* Chunk i (claimed by the caller) and, for a sequential reader, the next
 * chunks the cache lacks and no one else fetches, at once; each fetched
 * one is kept. Every claim is released. The result is chunk i's. */
static int fetch_from(struct chunked *k, size_t i)
{
	size_t idx[BLOB_CHUNKS_FETCH_MAX], m = 0;
	uint8_t *bufs[BLOB_CHUNKS_FETCH_MAX] = {0};
	int rcs[BLOB_CHUNKS_FETCH_MAX], rc = 0;
	uint64_t size;

	idx[m++] = i;
	for (size_t j = i + 1; sequential(k, i) && j < k->n && m < BLOB_CHUNKS_FETCH_MAX; j++) {
		const struct b3_digest *d = &k->v[j].digest;

		/* claimed, then looked for: a fetch that ended before the claim
		 * is seen */
		if (!cache_fetch_try_claim(k->c, d))
			continue;
		if (blob_service_stat(k->c->cache->blobs, d, &size) == -ENOENT)
			idx[m++] = j;
		else
			cache_fetch_done(k->c, d);
	}
	sf_err_clear(); /* a stat's miss */
	for (size_t x = 0; x < m; x++) {
		rcs[x] = -EAGAIN; /* not fetched */
		if (rc == 0 && !(bufs[x] = malloc(k->v[idx[x]].len)))
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = blob_reader_chunks_fetch(k->remote, idx, m, bufs, rcs);
	for (size_t x = 0; x < m; x++) {
		const struct blob_chunk *ch = &k->v[idx[x]];
		int krc = rcs[x] == -EAGAIN && rc < 0 ? rc : rcs[x];

		if (krc == 0)
			krc = cache_blob_keep(k->c, &ch->digest, ch->len, copy_piece,
					      &(struct piece){bufs[x], ch->len});
		cache_fetch_done(k->c, &ch->digest);
		if (krc == 0)
			cache_filled(k->c, &ch->digest);
		if (x == 0)
			rc = krc; /* its message is the one recorded (the lowest index) */
		free(bufs[x]);
	}
	return rc;
}

/* The cache's reader of chunk i, fetched first if the cache lacks it. */
static int chunk_get(struct chunked *k, size_t i, struct blob_reader **out)
{
	const struct b3_digest *d = &k->v[i].digest;
	int rc = cache_blob_lookup(k->c, d, out);
	bool mine;

	while (rc == -ENOENT) {
		rc = cache_fetch_claim(k->c, d, &mine);
		if (rc == 0 && mine) {
			/* kept by a fetch that ended between the miss and the claim */
			rc = cache_blob_lookup(k->c, d, out);
			if (rc != -ENOENT) {
				cache_fetch_done(k->c, d);
				return rc;
			}
			rc = fetch_from(k, i);
		}
		if (rc == 0) /* -ENOENT: evicted meanwhile, or that fetch failed: again */
			rc = cache_blob_lookup(k->c, d, out);
	}
	return rc;
}

/* Chunk i's reader, from the held ones or opened (and then held). */
static int chunk_open(struct chunked *k, size_t i, struct blob_reader **out)
{
	struct held *h;
	int rc;

	for (unsigned s = 0; s < HELD_CHUNKS; s++) {
		if (k->held[s].r && k->held[s].i == i) {
			*out = k->held[s].r;
			return 0;
		}
	}
	h = &k->held[k->next_slot++ % HELD_CHUNKS];
	blob_reader_close(h->r);
	h->r = NULL;
	rc = chunk_get(k, i, &h->r);
	if (rc == 0 && h->r->size != k->v[i].len)
		rc = remote_broken(k, "names a chunk by the wrong length");
	if (rc < 0) {
		blob_reader_close(h->r);
		h->r = NULL;
		return rc;
	}
	h->i = i;
	*out = h->r;
	return 0;
}

/* --- the whole blob, once every chunk was read --- */

struct whole {
	struct chunked *k;
	struct b3_hasher hasher; /* what the chunks make, to tell a lie from a failure */
	bool copied;		 /* every chunk went to the writer */
};

static int copy_chunks(void *ctx, struct blob_writer *w)
{
	struct whole *wh = ctx;
	struct chunked *k = wh->k;
	uint8_t *buf = malloc(COPY_PIECE);
	struct blob_reader *r;
	int rc = buf ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < k->n; i++) {
		rc = chunk_open(k, i, &r);
		for (uint32_t at = 0; rc == 0 && at < k->v[i].len; at += COPY_PIECE) {
			size_t len = k->v[i].len - at < COPY_PIECE ? k->v[i].len - at : COPY_PIECE;

			rc = blob_reader_pread_full(r, buf, len, at);
			if (rc == 0)
				rc = blob_writer_write(w, buf, len);
			if (rc == 0)
				b3_hasher_update(&wh->hasher, buf, len);
		}
	}
	free(buf);
	wh->copied = rc == 0;
	return rc;
}

/* Keeps the blob whole, copied from its chunks and verified by its own
 * digest. Chunks that do not make the blob: -EIO, and this reader fails
 * from now on; another failure is logged (the bytes read were verified
 * chunk by chunk, and the chunks stay kept). */
static int keep_whole(struct chunked *k)
{
	char text[B3_TEXT_LEN + 1];
	struct whole wh = {.k = k};
	struct b3_digest got;
	int rc;

	b3_hasher_init(&wh.hasher);
	rc = cache_blob_keep(k->c, &k->digest, k->base.size, copy_chunks, &wh);
	if (rc == 0) {
		cache_filled(k->c, &k->digest);
		return 0;
	}
	b3_hasher_final(&wh.hasher, &got);
	if (wh.copied && !b3_digest_eq(&got, &k->digest))
		return k->failed = remote_broken(k, "names chunks that do not make the blob");
	b3_digest_to_text(&k->digest, text);
	log_msg(LOG_WARN, "blob '%s' is not kept whole in the cache: %s", text, sf_errmsg(rc));
	sf_err_clear();
	return 0;
}

/* --- the reader --- */

static int read_chunks(struct chunked *k, uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0, i = chunk_at(k, off);
	struct blob_reader *r;
	int rc = 0;

	while (rc == 0 && done < len) {
		const struct blob_chunk *ch = &k->v[i];
		uint64_t pos = off + done, in_end = ch->off + ch->len;
		size_t take = in_end - pos < len - done ? (size_t)(in_end - pos) : len - done;

		rc = chunk_open(k, i, &r);
		if (rc == 0)
			rc = blob_reader_pread_full(r, buf + done, take, pos - ch->off);
		if (rc == 0 && !k->seen[i]) {
			k->seen[i] = true;
			k->n_seen++;
		}
		done += take;
		i++;
	}
	if (rc == 0 && k->n_seen == k->n && !k->kept) {
		k->kept = true;
		rc = keep_whole(k);
	}
	return rc;
}

static int chunked_pread(struct blob_reader *br, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct chunked *k = (struct chunked *)br;
	int rc;

	*n = 0;
	if (off >= k->base.size || len == 0)
		return 0;
	if (len > k->base.size - off)
		len = (size_t)(k->base.size - off);
	pthread_mutex_lock(&k->lock);
	rc = k->failed ? sf_err(k->failed, "a blob whose chunks do not make it is not served")
		       : read_chunks(k, buf, len, off);
	pthread_mutex_unlock(&k->lock);
	if (rc == 0)
		*n = len;
	return rc;
}

static void chunked_close(struct blob_reader *br)
{
	struct chunked *k = (struct chunked *)br;

	for (unsigned s = 0; s < HELD_CHUNKS; s++)
		blob_reader_close(k->held[s].r);
	blob_reader_close(k->remote);
	pthread_mutex_destroy(&k->lock);
	free(k->seen);
	free(k);
}

static const struct blob_reader_ops chunked_ops = {
    .pread = chunked_pread,
    .close = chunked_close,
};

/* The remote's list must tile the blob: from 0, in order, no gap, no
 * overlap, each chunk of 1..CHUNK_LEN_MAX bytes, to its size. */
static bool list_tiles(const struct blob_chunk *v, size_t n, uint64_t size)
{
	uint64_t end = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i].off != end || v[i].len == 0 || v[i].len > CHUNK_LEN_MAX)
			return false;
		end += v[i].len;
	}
	return end == size && (n > 0 || size == 0);
}

int cache_chunked_new(struct cached *c, const struct b3_digest *d, struct blob_reader *remote,
		      struct blob_reader **out)
{
	struct chunked *k;
	const struct blob_chunk *v;
	size_t n;
	int rc = blob_reader_chunks(remote, &v, &n);

	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (k)
		k->seen = calloc(n ? n : 1, sizeof(*k->seen));
	if (!k || !k->seen) {
		free(k);
		blob_reader_close(remote);
		return -ENOMEM;
	}
	k->base =
	    (struct blob_reader){.ops = &chunked_ops, .size = remote->size, .fd = -1, .lazy = true};
	k->c = c;
	k->remote = remote;
	k->v = v;
	k->n = n;
	k->digest = *d;
	pthread_mutex_init(&k->lock, NULL);
	if (!list_tiles(v, n, remote->size)) {
		rc = remote_broken(k, "does not add up to the blob");
		chunked_close(&k->base);
		return rc;
	}
	*out = &k->base;
	return 0;
}
