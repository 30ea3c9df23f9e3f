/* test_cache.c - the verified cache in front of a remote store
 * (store_cached_new, --cache; docs/services.md "The cache"): a remote
 * that lies is refused and nothing is kept, concurrent misses make one
 * fetch, a Directory closure is checked before it is kept. */
#include "harness.h"

#include "backends/cache.h"
#include "backends/memory/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A blob service in front of a memory one that counts opens and can serve
 * the bytes of `swap_from` under the digest `swap_to` (a lying remote). */
struct liar {
	struct blob_service base;
	struct blob_service *inner;
	atomic_int opens;
	bool swap;
	struct b3_digest swap_to, swap_from;
};

static struct liar *liar_of(struct blob_service *s)
{
	return (struct liar *)s;
}

static int liar_stat(struct blob_service *s, const struct b3_digest *d, uint64_t *size)
{
	return blob_service_stat(liar_of(s)->inner, d, size);
}

static int liar_open_read(struct blob_service *s, const struct b3_digest *d,
			  struct blob_reader **out)
{
	struct liar *l = liar_of(s);

	atomic_fetch_add(&l->opens, 1);
	usleep(20 * 1000); /* a slow remote: the other readers miss meanwhile */
	if (l->swap && b3_digest_eq(d, &l->swap_to))
		d = &l->swap_from;
	return blob_service_open_read(l->inner, d, out);
}

static int liar_open_write(struct blob_service *s, struct blob_writer **out)
{
	return blob_service_open_write(liar_of(s)->inner, out);
}

static void liar_free(struct blob_service *s)
{
	blob_service_free(liar_of(s)->inner);
	free(s);
}

static const struct blob_service_ops liar_ops = {
    .stat = liar_stat,
    .open_read = liar_open_read,
    .open_write = liar_open_write,
    .free = liar_free,
};

/* A memory remote whose blobs go through a liar, behind a memory cache. */
static void cached_fixture(struct liar **liar, struct store **cache, struct store **st)
{
	struct store *remote;
	struct liar *l = calloc(1, sizeof(*l));

	CHECK(l != NULL);
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &remote));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, cache));
	l->base.ops = &liar_ops;
	l->inner = remote->blobs;
	remote->blobs = &l->base;
	*liar = l;
	CHECK_OK(store_cached_new(remote, *cache, st));
}

static int read_all(struct store *st, const struct b3_digest *d, char *buf, size_t len)
{
	struct blob_reader *r;
	int rc = blob_service_open_read(st->blobs, d, &r);

	if (rc == 0) {
		rc = blob_reader_pread_full(r, buf, len, 0);
		blob_reader_close(r);
	}
	return rc;
}

TEST(cache_keeps_what_it_fetched)
{
	struct liar *l;
	struct store *cache, *st;
	struct b3_digest d;
	char buf[5];
	bool has;

	cached_fixture(&l, &cache, &st);
	CHECK_OK(blob_service_put(l->inner, "hello", 5, &d));
	CHECK_OK(read_all(st, &d, buf, 5));
	CHECK_MEM(buf, "hello", 5);
	CHECK_OK(blob_service_has(cache->blobs, &d, &has));
	CHECK(has);
	CHECK_OK(read_all(st, &d, buf, 5));
	CHECK_EQ(atomic_load(&l->opens), 1); /* the second read was the cache's */
	store_free(st);
}

TEST(cache_refuses_a_lying_remote)
{
	struct liar *l;
	struct store *cache, *st;
	struct b3_digest real, claimed;
	char buf[5];
	bool has;

	cached_fixture(&l, &cache, &st);
	CHECK_OK(blob_service_put(l->inner, "hello", 5, &real));
	b3_digest_of("hellp", 5, &claimed);
	l->swap = true, l->swap_to = claimed, l->swap_from = real;
	CHECK_ERR(read_all(st, &claimed, buf, 5), -EIO);
	CHECK_OK(blob_service_has(cache->blobs, &claimed, &has));
	CHECK(!has);
	CHECK_OK(blob_service_has(cache->blobs, &real, &has));
	CHECK(!has);
	store_free(st);
}

struct reader_arg {
	struct store *st;
	struct b3_digest d;
	int rc;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	char buf[5];

	a->rc = read_all(a->st, &a->d, buf, 5);
	return NULL;
}

TEST(cache_collapses_concurrent_misses)
{
	struct liar *l;
	struct store *cache, *st;
	struct reader_arg a[8];
	pthread_t t[8];
	struct b3_digest d;

	cached_fixture(&l, &cache, &st);
	CHECK_OK(blob_service_put(l->inner, "hello", 5, &d));
	for (int i = 0; i < 8; i++) {
		a[i] = (struct reader_arg){st, d, 1};
		CHECK(pthread_create(&t[i], NULL, reader, &a[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_OK(a[i].rc);
	}
	CHECK_EQ(atomic_load(&l->opens), 1);
	store_free(st);
}

/* A Directory whose child the remote lacks is not kept: the closure is
 * checked before anything goes to the cache. */
TEST(cache_checks_directory_closures)
{
	struct liar *l;
	struct store *cache, *st;
	struct directory *child, *parent, *got;
	struct directory_builder *b;
	struct b3_digest dc, dp;
	struct node n = {.kind = NODE_DIRECTORY, .name = (const uint8_t *)"sub", .name_len = 3};

	cached_fixture(&l, &cache, &st);
	CHECK_OK(directory_builder_new(&b));
	CHECK_OK(directory_builder_finish(b, &child));
	CHECK_OK(directory_digest(child, &dc));
	n.digest = dc;
	CHECK_OK(directory_size(child, DIR_SIZE_SPEC, &n.size));
	CHECK_OK(directory_builder_new(&b));
	CHECK_OK(directory_builder_add(b, &n));
	CHECK_OK(directory_builder_finish(b, &parent));
	/* The remote (written through the cached store, whose writes are
	 * the remote's) holds the parent only: put_batch does not check. */
	CHECK_OK(directory_digest(parent, &dp));
	CHECK_OK(st->dirs->ops->put_batch(st->dirs, &parent, &dp, 1));
	CHECK_ERR(dir_service_get(st->dirs, &dp, &got), -EIO);
	CHECK_ERR(dir_service_get(cache->dirs, &dp, &got), -ENOENT);
	/* With the child there, both are kept. */
	CHECK_OK(st->dirs->ops->put_batch(st->dirs, &child, &dc, 1));
	CHECK_OK(dir_service_get(st->dirs, &dp, &got));
	directory_free(got);
	CHECK_OK(dir_service_get(cache->dirs, &dc, &got));
	directory_free(got);
	directory_free(child);
	directory_free(parent);
	store_free(st);
}

/* --- a remote that keeps one blob as chunks (docs/services.md "Chunks in
 * the cache"): its reader lends the list and fetches chunks from the
 * memory service beneath, counting fetches per chunk --- */

#define NCHUNKS	 4
#define CHUNK_SZ 1000

struct chunker {
	struct blob_service base;
	struct blob_service *inner;
	struct b3_digest blob; /* the blob the list claims to make */
	struct blob_chunk list[NCHUNKS];
	atomic_int fetches[NCHUNKS];
};

struct chunker_reader {
	struct blob_reader base;
	struct chunker *k;
};

static int ck_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	(void)r, (void)buf, (void)len, (void)off, (void)n;
	return -ENOTSUP; /* the cache reads chunks, never this */
}

static void ck_close(struct blob_reader *r)
{
	free(r);
}

static int ck_chunks(struct blob_reader *r, const struct blob_chunk **v, size_t *n)
{
	*v = ((struct chunker_reader *)r)->k->list;
	*n = NCHUNKS;
	return 0;
}

static int ck_fetch(struct blob_reader *r, const size_t *idx, size_t k, uint8_t *const *bufs,
		    int *rc)
{
	struct chunker *c = ((struct chunker_reader *)r)->k;

	usleep(20 * 1000); /* a slow remote: other readers miss meanwhile */
	for (size_t x = 0; x < k; x++) {
		struct blob_reader *in;

		atomic_fetch_add(&c->fetches[idx[x]], 1);
		rc[x] = blob_service_open_read(c->inner, &c->list[idx[x]].digest, &in);
		if (rc[x] == 0) {
			rc[x] = blob_reader_pread_full(in, bufs[x], c->list[idx[x]].len, 0);
			blob_reader_close(in);
		}
	}
	return 0;
}

static const struct blob_reader_ops ck_reader_ops = {
    .pread = ck_pread, .close = ck_close, .chunks = ck_chunks, .chunks_fetch = ck_fetch};

static int ck_stat(struct blob_service *s, const struct b3_digest *d, uint64_t *size)
{
	struct chunker *c = (struct chunker *)s;

	if (b3_digest_eq(d, &c->blob)) {
		*size = NCHUNKS * CHUNK_SZ;
		return 0;
	}
	return blob_service_stat(c->inner, d, size);
}

static int ck_open_read(struct blob_service *s, const struct b3_digest *d, struct blob_reader **out)
{
	struct chunker *c = (struct chunker *)s;
	struct chunker_reader *r;

	if (!b3_digest_eq(d, &c->blob))
		return -ENOENT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base = (struct blob_reader){
	    .ops = &ck_reader_ops, .size = NCHUNKS * CHUNK_SZ, .fd = -1, .lazy = true};
	r->k = c;
	*out = &r->base;
	return 0;
}

static int ck_open_write(struct blob_service *s, struct blob_writer **out)
{
	return blob_service_open_write(((struct chunker *)s)->inner, out);
}

static void ck_free(struct blob_service *s)
{
	blob_service_free(((struct chunker *)s)->inner);
	free(s);
}

static const struct blob_service_ops chunker_ops = {
    .stat = ck_stat, .open_read = ck_open_read, .open_write = ck_open_write, .free = ck_free};

/* Chunk i's bytes: CHUNK_SZ bytes of 'a' + i. The blob is their
 * concatenation, or with `lie`, something else. */
static void chunker_fixture(bool lie, struct chunker **out, uint8_t *whole, struct store **cache,
			    struct store **st)
{
	struct store *remote;
	struct chunker *c = calloc(1, sizeof(*c));

	CHECK(c != NULL);
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &remote));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, cache));
	c->base.ops = &chunker_ops;
	c->inner = remote->blobs;
	for (int i = 0; i < NCHUNKS; i++) {
		memset(whole + i * CHUNK_SZ, 'a' + i, CHUNK_SZ);
		CHECK_OK(
		    blob_service_put(c->inner, whole + i * CHUNK_SZ, CHUNK_SZ, &c->list[i].digest));
		c->list[i].off = (uint64_t)i * CHUNK_SZ;
		c->list[i].len = CHUNK_SZ;
	}
	b3_digest_of(whole, NCHUNKS * CHUNK_SZ, &c->blob);
	if (lie)
		b3_digest_of("another blob", 12, &c->blob);
	remote->blobs = &c->base;
	*out = c;
	CHECK_OK(store_cached_new(remote, *cache, st));
}

static int read_at(struct store *st, const struct b3_digest *d, void *buf, size_t len, uint64_t off)
{
	struct blob_reader *r;
	int rc = blob_service_open_read(st->blobs, d, &r);

	if (rc == 0) {
		rc = blob_reader_pread_full(r, buf, len, off);
		blob_reader_close(r);
	}
	return rc;
}

/* Whether the cache holds `d` (false on an error: the CHECK that uses it
 * fails then). */
static bool cached(struct store *cache, const struct b3_digest *d)
{
	bool has = false;

	return blob_service_has(cache->blobs, d, &has) == 0 && has;
}

/* A read in part keeps the chunks it needed; a new reader finds them in
 * the cache; read whole, the blob is kept whole. */
TEST(cache_keeps_chunks)
{
	static uint8_t whole[NCHUNKS * CHUNK_SZ], buf[NCHUNKS * CHUNK_SZ];
	struct store *cache, *st;
	struct chunker *c;

	chunker_fixture(false, &c, whole, &cache, &st);
	CHECK_OK(read_at(st, &c->blob, buf, 10, 2 * CHUNK_SZ + 995)); /* chunks 2 and 3 */
	CHECK_MEM(buf, whole + 2 * CHUNK_SZ + 995, 10);
	CHECK(!cached(cache, &c->list[0].digest));
	CHECK(cached(cache, &c->list[2].digest));
	CHECK(cached(cache, &c->list[3].digest));
	CHECK(!cached(cache, &c->blob));
	CHECK_OK(read_at(st, &c->blob, buf, 10, 2 * CHUNK_SZ + 995));
	CHECK_EQ(atomic_load(&c->fetches[2]), 1);
	CHECK_OK(read_at(st, &c->blob, buf, sizeof(buf), 0));
	CHECK_MEM(buf, whole, sizeof(buf));
	CHECK(cached(cache, &c->blob));
	for (int i = 0; i < NCHUNKS; i++)
		CHECK_EQ(atomic_load(&c->fetches[i]), 1);
	store_free(st);
}

/* Genuine chunks that do not make the blob named: a whole read is EIO,
 * the blob is not kept (the chunks, each what its digest names, are). */
TEST(cache_refuses_a_lying_chunk_list)
{
	static uint8_t whole[NCHUNKS * CHUNK_SZ], buf[NCHUNKS * CHUNK_SZ];
	struct store *cache, *st;
	struct chunker *c;

	chunker_fixture(true, &c, whole, &cache, &st);
	CHECK_ERR(read_at(st, &c->blob, buf, sizeof(buf), 0), -EIO);
	CHECK(!cached(cache, &c->blob));
	CHECK(cached(cache, &c->list[0].digest));
	/* a list that does not tile the blob is refused at open */
	c->list[1].len = CHUNK_SZ - 1;
	CHECK_ERR(read_at(st, &c->blob, buf, 1, 0), -EIO);
	store_free(st);
}

struct whole_arg {
	struct store *st;
	struct b3_digest d;
	int rc;
};

static void *whole_reader(void *p)
{
	static _Thread_local uint8_t buf[NCHUNKS * CHUNK_SZ];
	struct whole_arg *a = p;

	a->rc = read_at(a->st, &a->d, buf, sizeof(buf), 0);
	return NULL;
}

/* Readers of one chunked blob, each with its reader, at once: each chunk
 * fetched once. */
TEST(cache_collapses_concurrent_chunk_misses)
{
	static uint8_t whole[NCHUNKS * CHUNK_SZ];
	struct store *cache, *st;
	struct whole_arg a[6];
	struct chunker *c;
	pthread_t t[6];

	chunker_fixture(false, &c, whole, &cache, &st);
	for (int i = 0; i < 6; i++) {
		a[i] = (struct whole_arg){st, c->blob, 1};
		CHECK(pthread_create(&t[i], NULL, whole_reader, &a[i]) == 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		CHECK_OK(a[i].rc);
	}
	for (int i = 0; i < NCHUNKS; i++)
		CHECK_EQ(atomic_load(&c->fetches[i]), 1);
	store_free(st);
}
