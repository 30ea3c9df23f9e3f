/* test_gc.c - store_gc over a local store: roots, dry run, delete refusals
 * (the integration side, with Nix closures, mounts and kills, is t55-gc.sh). */
#include "harness.h"

#include "backends/registry.h"
#include "store/gc.h"
#include "store/import.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

struct gc_fx {
	char tmp[64], store[96], a[96], b[96];
	struct store *st;
	struct path_info *pa, *pb;
};

/* Two trees sharing one file: a (rooted as "ra") and b. */
static int gc_fx_open(struct gc_fx *fx)
{
	int rc;

	*fx = (struct gc_fx){0};
	strcpy(fx->tmp, "/tmp/storefs-gc.XXXXXX");
	if (!mkdtemp(fx->tmp))
		return -errno;
	snprintf(fx->store, sizeof(fx->store), "%s/store", fx->tmp);
	snprintf(fx->a, sizeof(fx->a), "%s/a", fx->tmp);
	snprintf(fx->b, sizeof(fx->b), "%s/b", fx->tmp);
	mkdir(fx->a, 0755);
	mkdir(fx->b, 0755);
	write_file(fx->a, "shared", "same bytes\n");
	write_file(fx->b, "shared", "same bytes\n");
	write_file(fx->b, "own", "only in b\n");
	rc = store_open(fx->store, STORE_OPEN_CREATE | STORE_OPEN_IMPORT, &fx->st);
	if (rc == 0)
		rc = store_import_path(fx->st, fx->a, NULL, &fx->pa);
	if (rc == 0)
		rc = store_import_path(fx->st, fx->b, NULL, &fx->pb);
	if (rc == 0)
		rc = store_root_add(fx->st, "ra", &fx->pa->path);
	/* Blobs changed since a collection started are kept (docs/gc.md). */
	usleep(30 * 1000);
	return rc;
}

static void gc_fx_close(struct gc_fx *fx)
{
	path_info_free(fx->pa);
	path_info_free(fx->pb);
	store_free(fx->st);
	nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void count_path(void *ctx, const struct store_path *p)
{
	(void)p;
	(*(int *)ctx)++;
}

static bool has_path(struct store *st, const struct path_info *pi)
{
	struct path_info *got;
	int rc = path_info_service_get(st->paths, pi->path.digest, &got);

	if (rc == 0)
		path_info_free(got);
	return rc == 0;
}

TEST(gc_roots_and_dry_run)
{
	struct gc_result dry, r;
	struct gc_fx fx;
	int seen = 0;
	struct gc_options o = {.dry_run = true, .on_path = count_path, .ctx = &seen};

	CHECK_OK(gc_fx_open(&fx));
	CHECK_OK(store_gc(fx.st, &o, &dry));
	CHECK_EQ(seen, 1);
	CHECK(has_path(fx.st, fx.pb));
	o.dry_run = false;
	CHECK_OK(store_gc(fx.st, &o, &r));
	CHECK_EQ(r.paths, 1);
	CHECK_EQ(r.dirs, 1);
	CHECK_EQ(r.blobs, 1); /* "own"; "shared" stays with a */
	CHECK_EQ(r.bytes_freed, 10);
	CHECK_EQ(dry.blobs, r.blobs);
	CHECK_EQ(dry.bytes_freed, r.bytes_freed);
	CHECK(!has_path(fx.st, fx.pb));
	CHECK(has_path(fx.st, fx.pa));
	/* A second run finds nothing. */
	CHECK_OK(store_gc(fx.st, &o, &r));
	CHECK_EQ(r.paths + r.dirs + r.blobs, 0);
	gc_fx_close(&fx);
}

TEST(gc_delete_refuses_roots)
{
	struct gc_options o = {0};
	struct gc_result r;
	struct gc_fx fx;

	CHECK_OK(gc_fx_open(&fx));
	o.only = &fx.pa->path, o.n_only = 1;
	CHECK_ERR(store_gc(fx.st, &o, &r), -EBUSY);
	CHECK(strstr(sf_errmsg(-EBUSY), "root 'ra'"));
	CHECK(has_path(fx.st, fx.pa));
	o.ignore_liveness = true;
	CHECK_OK(store_gc(fx.st, &o, &r));
	CHECK_EQ(r.paths, 1);
	CHECK(!has_path(fx.st, fx.pa));
	CHECK(has_path(fx.st, fx.pb));
	CHECK_OK(store_root_remove(fx.st, "ra"));
	CHECK_ERR(store_root_remove(fx.st, "ra"), -ENOENT);
	CHECK_ERR(store_root_add(fx.st, "../x", &fx.pb->path), -EINVAL);
	gc_fx_close(&fx);
}

TEST(gc_not_supported_by_memory_store)
{
	struct gc_options o = {0};
	struct gc_result r;
	struct store *st;

	CHECK_OK(store_open("memory://", 0, &st));
	CHECK_ERR(store_gc(st, &o, &r), -ENOTSUP);
	store_free(st);
}
