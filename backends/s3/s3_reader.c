/* s3_reader.c - a chunked blob read lazily: a chunk is fetched (and
 * checked against its own digest) when a read first needs it; the blob's
 * own digest is checked once every chunk has been fetched (docs/s3.md
 * "Reads"). */
#include "backends/s3/s3_internal.h"

#include "common/err.h"
#include "common/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct s3_lazy {
	struct blob_reader base;
	struct s3_client *c;
	struct b3_digest digest;
	char key[512];
	pthread_mutex_t lock; /* one fetch at a time; guards what follows */
	int tmp;	      /* fetched chunks at their offsets in the blob */
	struct s3_chunk *chunks;
	struct blob_chunk *lent; /* the same list, as blob_reader_chunks() lends it */
	size_t n;
	bool *have;		/* chunk i fetched and verified */
	size_t hashed;		/* chunks [0, hashed) fed to `whole` */
	struct b3_hasher whole; /* the blob's digest, over the chunks in order */
	int failed;		/* the blob did not hash to its name: every read fails */
};

/* The first chunk that holds byte `off` (< size). */
static size_t chunk_at(const struct s3_lazy *r, uint64_t off)
{
	size_t lo = 0, hi = r->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->chunks[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Feeds the chunks fetched in a row from `hashed` on to the blob's hasher;
 * after the last one, compares the digest. */
static int hash_prefix(struct s3_lazy *r)
{
	uint8_t *buf = NULL;
	struct b3_digest got;
	size_t got_n;
	int rc = 0;

	while (rc == 0 && r->hashed < r->n && r->have[r->hashed]) {
		const struct s3_chunk *ch = &r->chunks[r->hashed];

		if (!buf && !(buf = malloc(S3_CDC_MAX)))
			return -ENOMEM;
		rc = pread_full(r->tmp, buf, ch->len, ch->off, &got_n);
		if (rc < 0 || got_n != ch->len)
			rc = sf_err_sys(rc < 0 ? -rc : EIO, "cannot read a fetched chunk back");
		else
			b3_hasher_update(&r->whole, buf, ch->len);
		r->hashed++;
	}
	free(buf);
	if (rc == 0 && r->hashed == r->n) {
		r->hashed++; /* compared once */
		b3_hasher_final(&r->whole, &got);
		if (!b3_digest_eq(&got, &r->digest))
			r->failed =
			    sf_err(-EIO,
				   "S3 chunk list '%s' in bucket '%s' does not make the blob "
				   "it names (damaged or replaced in the bucket): not served",
				   r->key, r->c->url.bucket);
		rc = r->failed;
	}
	return rc;
}

struct fetch_job {
	struct s3_lazy *r;
	size_t want[S3_PARALLEL]; /* chunk indexes */
	int rc[S3_PARALLEL];
};

/* Job i of s3_parallel(): chunk want[i] into the temporary file. */
static int fetch_one(void *ctx, size_t i)
{
	struct fetch_job *j = ctx;
	const struct s3_chunk *ch = &j->r->chunks[j->want[i]];

	j->rc[i] = s3_fetch_chunk(j->r->c, &ch->d, ch->len, j->r->tmp, ch->off);
	return j->rc[i];
}

/* Fetches the chunks that hold [off, off + len) that are not here yet,
 * S3_PARALLEL at a time. A read that follows on from a fetched chunk
 * (a sequential reader) also fetches the chunks after it, so a whole read
 * has S3_PARALLEL requests in flight; a read elsewhere fetches only what
 * it needs. */
static int fetch_range(struct s3_lazy *r, uint64_t off, uint64_t len)
{
	size_t first = chunk_at(r, off), last = chunk_at(r, off + len - 1), i = first, miss = first;
	bool fetched = false;
	int rc = 0;

	/* Sequential: the first chunk missing comes right after one fetched.
	 * Not `first` itself: reads seldom start at a cut, so a sequential
	 * read mostly starts in the chunk it had (each chunk was fetched alone
	 * while this looked at `first`: a 64 MiB dd had 1 GET in flight). */
	while (miss <= last && r->have[miss])
		miss++;
	if (miss <= last && miss > 0 && r->have[miss - 1] && last < miss + S3_PARALLEL - 1)
		last = miss + S3_PARALLEL - 1 < r->n ? miss + S3_PARALLEL - 1 : r->n - 1;
	while (rc == 0 && i <= last) {
		struct fetch_job j = {.r = r};
		size_t k = 0;

		for (; i <= last && k < S3_PARALLEL; i++) {
			if (r->have[i])
				continue;
			j.rc[k] = -EAGAIN; /* not fetched unless its job ran */
			j.want[k++] = i;
		}
		rc = s3_parallel(k, fetch_one, &j);
		for (size_t x = 0; x < k; x++)
			r->have[j.want[x]] = j.rc[x] == 0;
		fetched |= k > 0;
	}
	if (rc == 0 && fetched)
		rc = hash_prefix(r);
	return rc;
}

static int lazy_pread(struct blob_reader *br, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct s3_lazy *r = (struct s3_lazy *)br;
	int rc;

	*n = 0;
	if (off >= r->base.size || len == 0)
		return 0;
	if (len > r->base.size - off)
		len = (size_t)(r->base.size - off);
	pthread_mutex_lock(&r->lock);
	rc = r->failed ? sf_err(r->failed, "S3 blob '%s' did not verify: not served", r->key)
		       : fetch_range(r, off, len);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0) {
		rc = pread_full(r->tmp, buf, len, off, n);
		if (rc < 0)
			rc = sf_err_sys(-rc, "cannot read a fetched S3 chunk");
	}
	return rc;
}

static int lazy_chunks(struct blob_reader *br, const struct blob_chunk **v, size_t *n)
{
	struct s3_lazy *r = (struct s3_lazy *)br;

	*v = r->lent;
	*n = r->n;
	return 0;
}

struct mem_job {
	struct s3_lazy *r;
	const size_t *idx;
	uint8_t *const *bufs;
	int *rc;
};

/* Job i of s3_parallel(): chunk idx[i] into bufs[i]. */
static int fetch_mem_one(void *ctx, size_t i)
{
	struct mem_job *j = ctx;
	const struct s3_chunk *ch = &j->r->chunks[j->idx[i]];

	j->rc[i] = s3_fetch_chunk_mem(j->r->c, &ch->d, ch->len, j->bufs[i]);
	return j->rc[i];
}

/* Not through the temporary file: the caller keeps the chunks. */
static int lazy_chunks_fetch(struct blob_reader *br, const size_t *idx, size_t k,
			     uint8_t *const *bufs, int *rc)
{
	struct s3_lazy *r = (struct s3_lazy *)br;
	struct mem_job j = {r, idx, bufs, rc};

	if (k > BLOB_CHUNKS_FETCH_MAX)
		return sf_err(-EINVAL, "%zu chunks asked for at once", k);
	for (size_t x = 0; x < k; x++) {
		if (idx[x] >= r->n)
			return sf_err(-EINVAL, "no chunk %zu in a list of %zu", idx[x], r->n);
		rc[x] = -EAGAIN; /* not fetched unless its job ran */
	}
	return s3_parallel(k, fetch_mem_one, &j);
}

static void lazy_close(struct blob_reader *br)
{
	struct s3_lazy *r = (struct s3_lazy *)br;

	close(r->tmp);
	pthread_mutex_destroy(&r->lock);
	free(r->chunks);
	free(r->lent);
	free(r->have);
	free(r);
}

static const struct blob_reader_ops lazy_ops = {
    .pread = lazy_pread,
    .close = lazy_close,
    .chunks = lazy_chunks,
    .chunks_fetch = lazy_chunks_fetch,
};

int s3_lazy_reader_new(struct s3_client *c, const struct b3_digest *d, const char *key,
		       uint64_t size, struct s3_chunk *chunks, size_t n, int tmp_fd,
		       struct blob_reader **out)
{
	struct s3_lazy *r = calloc(1, sizeof(*r));
	bool *have = calloc(n ? n : 1, sizeof(*have));
	struct blob_chunk *lent = calloc(n ? n : 1, sizeof(*lent));

	/* sized now, so a read past the fetched chunks cannot end early */
	if (!r || !have || !lent || ftruncate(tmp_fd, (off_t)size) < 0) {
		int rc =
		    r && have && lent ? sf_err_sys(errno, "cannot size a temporary file") : -ENOMEM;

		free(r);
		free(have);
		free(lent);
		free(chunks);
		close(tmp_fd);
		return rc;
	}
	r->base = (struct blob_reader){.ops = &lazy_ops, .size = size, .fd = -1, .lazy = true};
	r->c = c;
	r->digest = *d;
	snprintf(r->key, sizeof(r->key), "%s", key);
	pthread_mutex_init(&r->lock, NULL);
	r->tmp = tmp_fd;
	r->chunks = chunks;
	r->n = n;
	r->have = have;
	for (size_t i = 0; i < n; i++)
		lent[i] = (struct blob_chunk){chunks[i].d, chunks[i].off, chunks[i].len};
	r->lent = lent;
	b3_hasher_init(&r->whole);
	*out = &r->base;
	return 0;
}
