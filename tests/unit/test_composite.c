/* test_composite.c - stores made of services from several stores
 * (store_open_services, store_composite_new; docs/services.md): where the
 * objects go, which optional operations are kept, and that every
 * sub-store is freed exactly once (the ASan build checks the frees). */
#include "harness.h"

#include "backends/composite.h"
#include "backends/memory/memory.h"
#include "backends/registry.h"
#include "store/gc.h"
#include "store/import.h"
#include "store/store_gc.h"
#include "store/store_write.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

struct cfx {
	char tmp[64], a[96], b[96], tree[96];
};

static void cfx_init(struct cfx *fx)
{
	FILE *f;
	char path[160];

	strcpy(fx->tmp, "/tmp/storefs-composite.XXXXXX");
	CHECK(mkdtemp(fx->tmp) != NULL);
	snprintf(fx->a, sizeof(fx->a), "%s/a", fx->tmp);
	snprintf(fx->b, sizeof(fx->b), "%s/b", fx->tmp);
	snprintf(fx->tree, sizeof(fx->tree), "%s/tree", fx->tmp);
	mkdir(fx->tree, 0755);
	snprintf(path, sizeof(path), "%s/file", fx->tree);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("bytes of a file\n", f);
	fclose(f);
}

static void cfx_release(struct cfx *fx)
{
	nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Blobs in a, Directories and PathInfos in b: an import puts each object
 * in its own store, and each store alone has only what it was given. */
TEST(composite_puts_each_service_in_its_store)
{
	struct cfx fx;
	struct store *st, *a, *b;
	struct path_info *pi, *got;
	uint64_t size;
	bool has;

	cfx_init(&fx);
	CHECK_OK(
	    store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.b, .paths = fx.b},
				STORE_OPEN_CREATE, &st));
	/* Directories and PathInfos share a store: registration stays atomic. */
	CHECK(st->stage_dirs && st->commit_path);
	/* A collection needs one store that knows every user of its blobs. */
	CHECK(!st->blob_delete && !st->paths_delete && !st->collect_lock && !st->exclusive_enter);
	CHECK_OK(store_import_path(st, fx.tree, NULL, &pi));
	CHECK_OK(store_root_add(st, "r", &pi->path));
	store_free(st);

	CHECK_OK(store_open(fx.a, STORE_OPEN_READONLY, &a));
	CHECK_OK(store_open(fx.b, STORE_OPEN_READONLY, &b));
	CHECK_ERR(path_info_service_get(a->paths, pi->path.digest, &got), -ENOENT);
	CHECK_OK(path_info_service_get(b->paths, pi->path.digest, &got));
	path_info_free(got);
	CHECK_OK(blob_service_has(b->blobs, &pi->root.digest, &has));
	CHECK(!has);
	CHECK_ERR(blob_service_stat(b->blobs, &pi->root.digest, &size), -ENOENT);
	store_free(a);
	store_free(b);
	path_info_free(pi);
	cfx_release(&fx);
}

/* Directories apart from PathInfos: no atomic registration (the generic
 * road, Directories first), and the import still reads back whole. */
TEST(composite_three_stores)
{
	struct cfx fx;
	char c[120];
	struct store *st;
	struct path_info *pi, *got;
	struct directory *d;

	cfx_init(&fx);
	snprintf(c, sizeof(c), "%s/c", fx.tmp);
	CHECK_OK(store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.b, .paths = c},
				     STORE_OPEN_CREATE, &st));
	CHECK(!st->stage_dirs && !st->commit_path);
	CHECK_OK(store_import_path(st, fx.tree, NULL, &pi));
	store_free(st);
	CHECK_OK(store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.b, .paths = c},
				     STORE_OPEN_READONLY, &st));
	CHECK_OK(path_info_service_get(st->paths, pi->path.digest, &got));
	CHECK_OK(dir_service_get(st->dirs, &got->root.digest, &d));
	CHECK_EQ(d->count, 1);
	directory_free(d);
	path_info_free(got);
	store_free(st);
	path_info_free(pi);
	cfx_release(&fx);
}

/* Parallel writer sessions each hold every sub-store's writer lock. */
TEST(composite_writer_sessions)
{
	struct cfx fx;
	struct store *st;
	struct store_write *w[5];
	struct b3_digest d;
	bool has;

	cfx_init(&fx);
	CHECK_OK(
	    store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.b, .paths = fx.b},
				STORE_OPEN_CREATE, &st));
	for (int i = 0; i < 5; i++)
		CHECK_OK(store_write_begin(st, &w[i]));
	store_write_end(w[1]);
	store_write_end(w[3]);
	CHECK_OK(store_write_begin(st, &w[1]));
	for (int i = 0; i < 5; i++)
		if (i != 3)
			store_write_end(w[i]);
	/* A failed session cannot take its blobs back from a shared blob
	 * store: it says nothing and removes nothing. */
	CHECK_OK(store_write_begin(st, &w[0]));
	CHECK_OK(blob_service_put(store_write_blobs(w[0]), "orphan", 6, &d));
	CHECK_ERR(store_write_fail(w[0], NULL), -ENOTSUP);
	CHECK_OK(blob_service_has(st->blobs, &d, &has));
	CHECK(has);
	store_free(st);
	cfx_release(&fx);
}

/* A store lacking a named service is refused; the caller keeps the stores. */
TEST(composite_refuses_a_missing_service)
{
	struct store *m1, *m2, *st = NULL;
	const size_t from[STORE_ROLES] = {0, 1, 1};

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m1));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m2));
	dir_service_free(m2->dirs);
	m2->dirs = NULL;
	CHECK_ERR(store_composite_new((struct store *[]){m1, m2}, 2, from, &st), -EINVAL);
	CHECK(st == NULL);
	/* Without the Directories of m2, from m1 they are fine. */
	CHECK_OK(store_composite_new((struct store *[]){m1, m2}, 2, (size_t[]){0, 0, 1}, &st));
	CHECK(!st->stage_dirs);
	store_free(st);
}

/* The same address for all three is that store itself, not a composite. */
TEST(composite_not_built_for_one_store)
{
	struct cfx fx;
	struct store *st;

	cfx_init(&fx);
	CHECK_OK(
	    store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.a, .paths = fx.a},
				STORE_OPEN_CREATE, &st));
	CHECK(st->blob_delete != NULL); /* the local store's own operations */
	store_free(st);
	CHECK_ERR(
	    store_open_services(
		&(struct store_addrs){.blobs = fx.a, .dirs = "bogus://x", .paths = fx.a}, 0, &st),
	    -EINVAL);
	cfx_release(&fx);
}

static int progress_calls;
static void *progress_ctx;

static void fake_set_progress(struct store *st, store_fetch_progress_fn fn, void *ctx)
{
	(void)st, (void)fn;
	progress_calls++;
	progress_ctx = ctx;
}

/* A sub-store that fetches NARs (a binary cache) hears of the composite's
 * progress listener; without one the composite has none either. */
TEST(composite_passes_fetch_progress)
{
	struct store *m1, *m2, *st;
	int ctx;

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m1));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m2));
	CHECK_OK(store_composite_new((struct store *[]){m1, m2}, 2, (size_t[]){0, 1, 1}, &st));
	CHECK_ERR(store_set_fetch_progress(st, NULL, &ctx), -ENOTSUP);
	store_free(st);

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m1));
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &m2));
	m2->set_fetch_progress = fake_set_progress;
	CHECK_OK(store_composite_new((struct store *[]){m1, m2}, 2, (size_t[]){0, 1, 1}, &st));
	progress_calls = 0;
	CHECK_OK(store_set_fetch_progress(st, NULL, &ctx));
	CHECK_EQ(progress_calls, 1);
	CHECK(progress_ctx == &ctx);
	store_free(st);
}

/* The import index of --trust-stat is the PathInfo store's (docs/services.md):
 * records written through the composite are in it; a PathInfo store
 * without one (memory://) gives the composite none. */
TEST(composite_index_is_the_path_info_stores)
{
	struct cfx fx;
	struct store *st, *b;
	const struct store_kv kv = {.key = "k", .klen = 1, .val = "value", .vlen = 5};
	char val[8];
	size_t len;

	cfx_init(&fx);
	CHECK_OK(
	    store_open_services(&(struct store_addrs){.blobs = fx.a, .dirs = fx.b, .paths = fx.b},
				STORE_OPEN_CREATE, &st));
	CHECK_OK(store_index_put(st, &kv, 1));
	store_free(st);
	CHECK_OK(store_open(fx.b, STORE_OPEN_READONLY, &b));
	CHECK_OK(store_index_get(b, "k", 1, val, sizeof(val), &len));
	CHECK_EQ(len, 5);
	CHECK_MEM(val, "value", 5);
	store_free(b);
	CHECK_OK(store_open_services(
	    &(struct store_addrs){.blobs = fx.a, .dirs = "memory://", .paths = "memory://"},
	    STORE_OPEN_CREATE, &st));
	CHECK(!st->index_get && !st->index_put);
	store_free(st);
	cfx_release(&fx);
}
