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
