/* test_services.c - one conformance suite per service interface, run
 * against the memory and the local backend, plus local-only checks:
 * layout, marker, temp cleanup, corruption, import lock, persistence. */
#include "harness.h"
#include "pg_fixture.h"

#include "backends/local/local.h"
#include "backends/memory/memory.h"
#include "backends/registry.h"
#include "castore/blob_tracker.h"

#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- fixtures --- */

struct fx {
	struct store *st;
	bool local;
	bool pg; /* a PostgreSQL store (services_postgres) */
	struct pg_fx pgfx;
	char dir[64]; /* the local store, inside a private temp dir */
	char tmp[48];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static unsigned formula_flags(enum dir_size_formula f)
{
	return f == DIR_SIZE_NATIVE ? STORE_OPEN_NATIVE_SIZE : 0;
}

/* Set while the Directory and PathInfo suites run against PostgreSQL:
 * then every fixture that is not local is a fresh PostgreSQL store. */
static bool fx_pg;

static int fx_open(struct fx *fx, bool local, enum dir_size_formula f)
{
	int rc;

	*fx = (struct fx){.local = local, .pg = fx_pg && !local};
	if (fx->pg) {
		rc = pg_fx_new(&fx->pgfx);
		return rc < 0 ? rc : store_open(fx->pgfx.url, formula_flags(f), &fx->st);
	}
	if (!local)
		return memory_store_new(f, &fx->st);
	strcpy(fx->tmp, "/tmp/storefs-unit.XXXXXX");
	if (!mkdtemp(fx->tmp))
		return -errno;
	snprintf(fx->dir, sizeof(fx->dir), "%s/store", fx->tmp);
	return local_store_open(fx->dir, STORE_OPEN_CREATE | formula_flags(f), &fx->st);
}

/* Blobs of the stores opened next are all files (true: the layout of
 * releases before small blobs went inline) or small ones inline (false). */
static void files_only(bool on)
{
	if (on)
		setenv("STOREFS_INLINE_MAX", "0", 1);
	else
		unsetenv("STOREFS_INLINE_MAX");
}

static void fx_close(struct fx *fx)
{
	store_free(fx->st);
	fx->st = NULL;
	if (fx->local)
		rm_rf(fx->tmp);
	if (fx->pg)
		pg_fx_drop(&fx->pgfx);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

/* --- blob service conformance --- */

static void digest_hex_is(const struct b3_digest *d, const char *hex, const char *file, int line)
{
	char got[B3_HEX_LEN + 1];

	b3_digest_to_hex(d, got);
	if (strcmp(got, hex))
		test_fail(file, line, "digest %s, expected %s", got, hex);
}

static void blob_small(struct fx *fx)
{
	struct blob_service *bs = fx->st->blobs;
	struct blob_reader *r;
	struct b3_digest d, absent;
	uint8_t buf[64];
	uint64_t size;
	size_t n;
	bool found;

	CHECK_OK(blob_service_put(bs, "Hello World!", 12, &d));
	digest_hex_is(&d, "5ca7815adcb484e9a136c11efe69c1d530176d549b5d18d038eb5280b4b3470c",
		      __FILE__, __LINE__);
	CHECK_OK(blob_service_stat(bs, &d, &size));
	CHECK_EQ(size, 12);
	CHECK_OK(blob_service_has(bs, &d, &found));
	CHECK(found);
	b3_digest_of("absent", 6, &absent);
	CHECK_ERR(blob_service_stat(bs, &absent, &size), -ENOENT);
	CHECK_OK(blob_service_has(bs, &absent, &found));
	CHECK(!found);
	CHECK_ERR(blob_service_open_read(bs, &absent, &r), -ENOENT);

	CHECK_OK(blob_service_open_read(bs, &d, &r));
	CHECK_EQ(r->size, 12);
	CHECK_EQ(r->fd, -1); /* local: an LMDB value, no file (docs/store-format.md) */
	CHECK_OK(blob_reader_pread(r, buf, 5, 0, &n));
	CHECK(n == 5 && !memcmp(buf, "Hello", 5));
	CHECK_OK(blob_reader_pread(r, buf, sizeof(buf), 6, &n)); /* short read at EOF */
	CHECK(n == 6 && !memcmp(buf, "World!", 6));
	CHECK_OK(blob_reader_pread(r, buf, 4, 12, &n));
	CHECK_EQ(n, 0);
	CHECK_OK(blob_reader_pread(r, buf, 4, 1000, &n));
	CHECK_EQ(n, 0);
	CHECK_OK(blob_reader_pread_full(r, buf, 3, 9));
	CHECK(!memcmp(buf, "ld!", 3));
	CHECK_ERR(blob_reader_pread_full(r, buf, 4, 9), -EIO);
	blob_reader_close(r);
	/* Storing the same bytes again is fine and changes nothing. */
	CHECK_OK(blob_service_put(bs, "Hello World!", 12, &absent));
	CHECK(b3_digest_eq(&absent, &d));
}

static void blob_empty(struct fx *fx)
{
	struct blob_service *bs = fx->st->blobs;
	struct blob_reader *r;
	struct b3_digest d;
	uint64_t size = 99;
	uint8_t buf[4];
	size_t n = 99;

	CHECK_OK(blob_service_put(bs, "", 0, &d));
	CHECK(b3_digest_eq(&d, &b3_empty_digest));
	CHECK_OK(blob_service_stat(bs, &d, &size));
	CHECK_EQ(size, 0);
	CHECK_OK(blob_service_open_read(bs, &d, &r));
	CHECK_EQ(r->size, 0);
	CHECK_OK(blob_reader_pread(r, buf, sizeof(buf), 0, &n));
	CHECK_EQ(n, 0);
	blob_reader_close(r);
}

static void blob_expect(struct fx *fx)
{
	struct blob_service *bs = fx->st->blobs;
	struct blob_writer *w;
	struct b3_digest right, wrong, out;
	uint64_t size;

	b3_digest_of("expected", 8, &right);
	b3_digest_of("other", 5, &wrong);
	CHECK_OK(blob_service_open_write(bs, &w));
	CHECK_OK(blob_writer_write(w, "expected", 8));
	CHECK_ERR(blob_writer_commit(w, &wrong, &out), -EIO);
	CHECK(strstr(sf_errmsg(-EIO), "mismatch"));
	CHECK_ERR(blob_service_stat(bs, &right, &size), -ENOENT);
	/* Aborted writes leave nothing either. */
	CHECK_OK(blob_service_open_write(bs, &w));
	CHECK_OK(blob_writer_write(w, "expected", 8));
	blob_writer_abort(w);
	CHECK_ERR(blob_service_stat(bs, &right, &size), -ENOENT);
	CHECK_OK(blob_service_open_write(bs, &w));
	CHECK_OK(blob_writer_write(w, "expe", 4));
	CHECK_OK(blob_writer_write(w, "cted", 4));
	CHECK_OK(blob_writer_commit(w, &right, &out));
	CHECK(b3_digest_eq(&out, &right));
	CHECK_OK(blob_service_stat(bs, &right, &size));
	CHECK_EQ(size, 8);
}

/* BLOB_B of vectors.json (1 MiB-ish), written in uneven pieces. */
static void blob_large(struct fx *fx)
{
	size_t len = 255 * 4096, step = 7777;
	uint8_t *data = malloc(len), *back = malloc(len);
	struct blob_writer *w;
	struct blob_reader *r;
	struct b3_digest d;

	CHECK(data && back);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i % 255);
	CHECK_OK(blob_service_open_write(fx->st->blobs, &w));
	for (size_t off = 0; off < len; off += step)
		CHECK_OK(blob_writer_write(w, data + off, off + step > len ? len - off : step));
	CHECK_OK(blob_writer_commit(w, NULL, &d));
	digest_hex_is(&d, "a82c5154a7a0c262c6fdb929a317585646f8fbcf80326d0a7b8747edaf2d99d2",
		      __FILE__, __LINE__);
	CHECK_OK(blob_service_open_read(fx->st->blobs, &d, &r));
	CHECK_EQ(r->size, len);
	CHECK_OK(blob_reader_pread_full(r, back, len, 0));
	CHECK(!memcmp(back, data, len));
	CHECK_OK(blob_reader_pread_full(r, back, 1000, 654321));
	CHECK(!memcmp(back, data + 654321, 1000));
	blob_reader_close(r);
	free(data), free(back);
}

struct reader_job {
	struct blob_reader *r;
	const uint8_t *data;
	size_t len;
	unsigned seed;
	int errors;
};

static void *reader_thread(void *arg)
{
	struct reader_job *j = arg;
	uint8_t buf[4096];

	for (int i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(rand_r(&j->seed) % j->len);
		size_t want = (size_t)(rand_r(&j->seed) % sizeof(buf)), n;

		if (blob_reader_pread(j->r, buf, want, off, &n) < 0 ||
		    n != (off + want > j->len ? j->len - off : want) ||
		    memcmp(buf, j->data + off, n))
			j->errors++;
	}
	return NULL;
}

/* Several threads share one reader (positional reads need no locking). */
static void blob_concurrent(struct fx *fx)
{
	size_t len = 3 * 1024 * 1024 + 17;
	uint8_t *data = malloc(len);
	struct reader_job jobs[4];
	pthread_t th[4];
	struct blob_reader *r;
	struct b3_digest d;

	CHECK(data);
	fill_pattern(data, len, 3);
	CHECK_OK(blob_service_put(fx->st->blobs, data, len, &d));
	CHECK_OK(blob_service_open_read(fx->st->blobs, &d, &r));
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct reader_job){r, data, len, (unsigned)i + 1, 0};
		CHECK(pthread_create(&th[i], NULL, reader_thread, &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(jobs[i].errors, 0);
	}
	blob_reader_close(r);
	free(data);
}

struct writer_job {
	struct blob_service *bs;
	const uint8_t *data;
	size_t len;
	int rc;
};

static void *writer_thread(void *arg)
{
	struct writer_job *j = arg;
	struct b3_digest d;

	j->rc = blob_service_put(j->bs, j->data, j->len, &d);
	return NULL;
}

/* Concurrent writers of the same blob all succeed and agree. */
static void blob_concurrent_writers(struct fx *fx)
{
	size_t len = 512 * 1024;
	uint8_t *data = malloc(len);
	struct writer_job jobs[4];
	pthread_t th[4];
	struct b3_digest d;
	uint64_t size;

	CHECK(data);
	fill_pattern(data, len, 9);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct writer_job){fx->st->blobs, data, len, 1};
		CHECK(pthread_create(&th[i], NULL, writer_thread, &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_OK(jobs[i].rc);
	}
	b3_digest_of(data, len, &d);
	CHECK_OK(blob_service_stat(fx->st->blobs, &d, &size));
	CHECK_EQ(size, len);
	CHECK_OK(blob_service_flush(fx->st->blobs));
	free(data);
}

/* A reader stays usable after the service that opened it is freed. */
static void blob_reader_outlives(struct fx *fx)
{
	struct blob_reader *r;
	struct b3_digest d;
	char buf[8];

	CHECK_OK(blob_service_put(fx->st->blobs, "survivor", 8, &d));
	CHECK_OK(blob_service_open_read(fx->st->blobs, &d, &r));
	store_free(fx->st);
	fx->st = NULL;
	CHECK_OK(blob_reader_pread_full(r, buf, 8, 0));
	CHECK(!memcmp(buf, "survivor", 8));
	blob_reader_close(r);
}

static void blob_suite(bool local)
{
	void (*cases[])(struct fx *) = {blob_small,	     blob_empty,
					blob_expect,	     blob_large,
					blob_concurrent,     blob_concurrent_writers,
					blob_reader_outlives};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx fx;

		CHECK_OK(fx_open(&fx, local, DIR_SIZE_SPEC));
		cases[i](&fx);
		fx_close(&fx);
	}
}

TEST(services_blob_memory)
{
	blob_suite(false);
}

TEST(services_blob_local)
{
	blob_suite(true);
}

/* --- Directory service conformance --- */

/* Closure shapes (docs/castore.md §5, vectors.json): A empty; K = {.keep}; B = {a: A};
 * C = {a: A, a': A}; D = {a: A, b: B}; P = {keep: K}. */
struct dirs {
	struct directory *a, *k, *b, *c, *d, *p, *p_other;
	struct b3_digest dg_a, dg_k, dg_b, dg_c, dg_d, dg_p, dg_p_other;
};

static struct node mk_file(const char *name)
{
	return (struct node){.kind = NODE_FILE,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .digest = b3_empty_digest};
}

static struct node mk_dir(const char *name, const struct b3_digest *dg, uint64_t size)
{
	return (struct node){.kind = NODE_DIRECTORY,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .digest = *dg,
			     .size = size};
}

static int mk(struct directory **out, struct b3_digest *dg, const struct node *n, size_t count)
{
	struct directory_builder *b;
	int rc = directory_builder_new(&b);

	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = directory_builder_add(b, &n[i]);
	if (rc < 0) {
		directory_builder_free(b);
		return rc;
	}
	rc = directory_builder_finish(b, out);
	return rc < 0 ? rc : directory_digest(*out, dg);
}

static uint64_t size_of(const struct directory *d, enum dir_size_formula f)
{
	uint64_t s = 0;

	directory_size(d, f, &s);
	return s;
}

static int dirs_build(struct dirs *x, enum dir_size_formula f)
{
	enum dir_size_formula other = f == DIR_SIZE_SPEC ? DIR_SIZE_NATIVE : DIR_SIZE_SPEC;
	struct node n[2];
	int rc;

	*x = (struct dirs){0};
	n[0] = mk_file(".keep");
	if ((rc = mk(&x->a, &x->dg_a, NULL, 0)) || (rc = mk(&x->k, &x->dg_k, n, 1)))
		return rc;
	n[0] = mk_dir("a", &x->dg_a, 0);
	if ((rc = mk(&x->b, &x->dg_b, n, 1)))
		return rc;
	n[1] = mk_dir("a'", &x->dg_a, 0);
	if ((rc = mk(&x->c, &x->dg_c, n, 2)))
		return rc;
	n[1] = mk_dir("b", &x->dg_b, size_of(x->b, f));
	if ((rc = mk(&x->d, &x->dg_d, n, 2)))
		return rc;
	n[0] = mk_dir("keep", &x->dg_k, size_of(x->k, f));
	if ((rc = mk(&x->p, &x->dg_p, n, 1)))
		return rc;
	n[0] = mk_dir("keep", &x->dg_k, size_of(x->k, other));
	return mk(&x->p_other, &x->dg_p_other, n, 1);
}

static void dirs_free(struct dirs *x)
{
	directory_free(x->a), directory_free(x->k), directory_free(x->b);
	directory_free(x->c), directory_free(x->d), directory_free(x->p);
	directory_free(x->p_other);
}

/* A private copy, for APIs that take ownership. */
static struct directory *dup_dir(const struct directory *d)
{
	struct directory *c = NULL;
	uint8_t *buf;
	size_t len;

	if (directory_encode(d, &buf, &len) < 0)
		return NULL;
	directory_decode(buf, len, &c);
	free(buf);
	return c;
}

static void dir_put_get(struct fx *fx, struct dirs *x)
{
	struct dir_service *ds = fx->st->dirs;
	struct directory *got;
	struct b3_digest dg;

	/* A child must be stored before its parent. */
	CHECK_ERR(dir_service_put(ds, x->b, &dg), -EINVAL);
	CHECK_ERR(dir_service_get(ds, &x->dg_b, &got), -ENOENT);
	CHECK_OK(dir_service_put(ds, x->a, &dg));
	CHECK(b3_digest_eq(&dg, &b3_empty_digest) && b3_digest_eq(&dg, &x->dg_a));
	CHECK_OK(dir_service_put(ds, x->b, &dg));
	CHECK(b3_digest_eq(&dg, &x->dg_b));
	CHECK_OK(dir_service_put(ds, x->b, &dg)); /* again: no change */
	CHECK_OK(dir_service_get(ds, &x->dg_a, &got));
	CHECK_EQ(got->count, 0);
	directory_free(got);
	CHECK_OK(dir_service_get(ds, &x->dg_b, &got));
	CHECK(got->count == 1 && got->nodes[0].kind == NODE_DIRECTORY);
	CHECK(b3_digest_eq(&got->nodes[0].digest, &x->dg_a));
	directory_free(got);
	CHECK_ERR(dir_service_get(ds, &x->dg_d, &got), -ENOENT);
}

struct visits {
	struct b3_digest seen[8];
	size_t n;
	size_t stop_after; /* 0: never */
};

static int visit_cb(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct visits *v = ctx;
	struct b3_digest check;

	if (directory_digest(d, &check) < 0 || !b3_digest_eq(&check, digest) || v->n == 8)
		return -EPROTO;
	v->seen[v->n++] = *digest;
	return v->stop_after && v->n == v->stop_after ? 7 : 0;
}

static void dir_recursive(struct fx *fx, struct dirs *x)
{
	struct dir_service *ds = fx->st->dirs;
	struct visits v = {.n = 0};
	struct b3_digest dg;

	CHECK_OK(dir_service_put(ds, x->a, &dg));
	CHECK_OK(dir_service_put(ds, x->b, &dg));
	CHECK_OK(dir_service_put(ds, x->d, &dg));
	/* Root first, breadth first, A once although D and B both hold it. */
	CHECK_OK(dir_service_get_recursive(ds, &x->dg_d, visit_cb, &v));
	CHECK_EQ(v.n, 3);
	CHECK(b3_digest_eq(&v.seen[0], &x->dg_d));
	CHECK(b3_digest_eq(&v.seen[1], &x->dg_a));
	CHECK(b3_digest_eq(&v.seen[2], &x->dg_b));
	v = (struct visits){.stop_after = 2};
	CHECK_EQ(dir_service_get_recursive(ds, &x->dg_d, visit_cb, &v), 7);
	CHECK_EQ(v.n, 2);
	v = (struct visits){.n = 0};
	CHECK_ERR(dir_service_get_recursive(ds, &x->dg_c, visit_cb, &v), -ENOENT);
	CHECK_EQ(v.n, 0);
}

/* A closure stored around the checks (put_batch directly) with its child
 * missing: the walk fails with -EIO naming the child and its parent. */
static void dir_missing_child(struct fx *fx, struct dirs *x)
{
	struct dir_service *ds = fx->st->dirs;
	struct directory *batch[1] = {x->p};
	char child[B3_TEXT_LEN + 1], parent[B3_TEXT_LEN + 1];
	struct visits v = {.n = 0};
	const char *msg;

	CHECK_OK(ds->ops->put_batch(ds, batch, &x->dg_p, 1));
	CHECK_ERR(dir_service_get_recursive(ds, &x->dg_p, visit_cb, &v), -EIO);
	CHECK_EQ(v.n, 1);
	b3_digest_to_text(&x->dg_k, child);
	b3_digest_to_text(&x->dg_p, parent);
	msg = sf_errmsg(-EIO);
	CHECK_MSG(strstr(msg, child) && strstr(msg, parent), "message: %s", msg);
}

/* Runs one putter sequence against a fresh store, expecting `put_fail_at`
 * (-1: none) and the close result. */
static void putter_case(struct fx *fx, struct directory *const *seq, size_t n, int put_fail_at,
			int close_rc, const struct b3_digest *root)
{
	enum dir_size_formula f = fx->st->size_formula;
	struct dir_putter *p;
	struct b3_digest got, dg;
	struct directory *check;

	fx_close(fx);
	CHECK_OK(fx_open(fx, fx->local, f));
	CHECK_OK(dir_putter_new(fx->st->dirs, fx->st->size_formula, &p));
	for (size_t i = 0; i < n; i++) {
		struct directory *c = dup_dir(seq[i]);

		CHECK(c);
		if ((int)i == put_fail_at) {
			CHECK_ERR(dir_putter_put(p, c, &dg), -EINVAL);
		} else {
			CHECK_OK(dir_putter_put(p, c, &dg));
			CHECK_OK(directory_digest(seq[i], &got));
			CHECK(b3_digest_eq(&dg, &got));
			/* Nothing is stored before close. */
			if (i == 1 && put_fail_at < 0)
				CHECK_ERR(dir_service_get(fx->st->dirs, &dg, &check), -ENOENT);
		}
	}
	CHECK_ERR(dir_putter_close(p, &got), close_rc);
	if (close_rc == 0) {
		CHECK(b3_digest_eq(&got, root));
		CHECK_OK(dir_service_get(fx->st->dirs, root, &check));
		directory_free(check);
	} else if (root) {
		CHECK_ERR(dir_service_get(fx->st->dirs, root, &check), -ENOENT);
	}
}

static void dir_putter_cases(struct fx *fx, struct dirs *x)
{
	struct directory *s1[] = {x->a}, *s2[] = {x->a, x->b}, *s3[] = {x->a, x->a, x->c};
	struct directory *s4[] = {x->a, x->c}, *s5[] = {x->a, x->c, x->b}, *s6[] = {x->b};
	struct directory *s7[] = {x->k, x->p}, *s8[] = {x->k, x->p_other};
	struct dir_putter *p;
	struct b3_digest dg;

	putter_case(fx, s1, 1, -1, 0, &x->dg_a);
	putter_case(fx, s2, 2, -1, 0, &x->dg_b);
	putter_case(fx, s3, 3, -1, 0, &x->dg_c);
	putter_case(fx, s4, 2, -1, 0, &x->dg_c);
	/* B is not connected to the root C: fails at close, stores nothing. */
	putter_case(fx, s5, 3, -1, -EINVAL, &x->dg_b);
	putter_case(fx, s6, 1, 0, -EINVAL, NULL);
	/* Sizes must follow the store's formula. */
	putter_case(fx, s7, 2, -1, 0, &x->dg_p);
	putter_case(fx, s8, 2, 1, -EINVAL, &x->dg_p_other);
	CHECK(strstr(sf_errmsg(-EINVAL), "wrong size"));
	/* An empty closure has no root; an abandoned putter frees everything. */
	CHECK_OK(dir_putter_new(fx->st->dirs, fx->st->size_formula, &p));
	CHECK_ERR(dir_putter_close(p, &dg), -EINVAL);
	CHECK_OK(dir_putter_new(fx->st->dirs, fx->st->size_formula, &p));
	CHECK_OK(dir_putter_put(p, dup_dir(x->a), &dg));
	dir_putter_free(p);
}

struct walk_job {
	struct dir_service *ds;
	struct b3_digest root;
	int errors;
};

static void *walk_thread(void *arg)
{
	struct walk_job *j = arg;

	for (int i = 0; i < 200; i++) {
		struct visits v = {.n = 0};

		if (dir_service_get_recursive(j->ds, &j->root, visit_cb, &v) != 0 || v.n != 3)
			j->errors++;
	}
	return NULL;
}

/* Readers in several threads while another thread keeps storing. */
static void dir_concurrent(struct fx *fx, struct dirs *x)
{
	struct walk_job jobs[4];
	pthread_t th[4];
	struct b3_digest dg;

	CHECK_OK(dir_service_put(fx->st->dirs, x->a, &dg));
	CHECK_OK(dir_service_put(fx->st->dirs, x->b, &dg));
	CHECK_OK(dir_service_put(fx->st->dirs, x->d, &dg));
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct walk_job){fx->st->dirs, x->dg_d, 0};
		CHECK(pthread_create(&th[i], NULL, walk_thread, &jobs[i]) == 0);
	}
	for (int i = 0; i < 50; i++) {
		CHECK_OK(dir_service_put(fx->st->dirs, x->k, &dg));
		CHECK_OK(dir_service_put(fx->st->dirs, x->c, &dg));
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(jobs[i].errors, 0);
	}
}

static void dir_suite(bool local, enum dir_size_formula f)
{
	void (*cases[])(struct fx *, struct dirs *) = {
	    dir_put_get, dir_recursive, dir_missing_child, dir_putter_cases, dir_concurrent};
	struct dirs x;

	CHECK_OK(dirs_build(&x, f));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx fx;

		CHECK_OK(fx_open(&fx, local, f));
		CHECK_EQ(fx.st->size_formula, f);
		cases[i](&fx, &x);
		fx_close(&fx);
	}
	dirs_free(&x);
}

TEST(services_dir_memory_spec)
{
	dir_suite(false, DIR_SIZE_SPEC);
}

TEST(services_dir_memory_native)
{
	dir_suite(false, DIR_SIZE_NATIVE);
}

TEST(services_dir_local_spec)
{
	dir_suite(true, DIR_SIZE_SPEC);
}

TEST(services_dir_local_native)
{
	dir_suite(true, DIR_SIZE_NATIVE);
}

/* --- PathInfo service conformance --- */

/* A file-rooted PathInfo for "<hash of i>-<name>". */
static int mk_path_info(unsigned i, const char *name, uint64_t nar_size, struct path_info **out)
{
	static const char alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";
	char base[STORE_PATH_MAX_BASENAME + 1];
	struct node root = {.kind = NODE_FILE, .digest = b3_empty_digest};
	struct path_info *pi;
	int rc;

	/* The first four characters spell i in base 32: distinct for each i. */
	for (int j = 0; j < STORE_PATH_HASH_CHARS; j++)
		base[j] = alphabet[j < 4 ? (i >> (5 * j)) & 31 : (i * 7 + (unsigned)j * 3) % 32];
	snprintf(base + STORE_PATH_HASH_CHARS, sizeof(base) - STORE_PATH_HASH_CHARS, "-%s", name);
	rc = path_info_new(&pi);
	if (rc < 0)
		return rc;
	rc = store_path_parse_basename(base, strlen(base), &pi->path);
	if (rc == 0)
		rc = path_info_set_root(pi, &root);
	pi->nar_size = nar_size;
	memset(pi->nar_sha256, (int)i, sizeof(pi->nar_sha256));
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

struct listing {
	char names[16][STORE_PATH_MAX_BASENAME + 1];
	uint64_t cursors[16];
	uint64_t nar_sizes[16];
	size_t n, stop_after;
	int fail_with;
};

static int list_cb(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct listing *l = ctx;

	if (l->n == 16)
		return -EPROTO;
	store_path_basename(&pi->path, l->names[l->n]);
	l->cursors[l->n] = cursor;
	l->nar_sizes[l->n++] = pi->nar_size;
	if (l->fail_with)
		return l->fail_with;
	return l->stop_after && l->n == l->stop_after ? 1 : 0;
}

struct watch_log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char last[STORE_PATH_MAX_BASENAME + 1];
	unsigned count;
};

static void watch_cb(void *ctx, const char *basename)
{
	struct watch_log *w = ctx;

	pthread_mutex_lock(&w->lock);
	snprintf(w->last, sizeof(w->last), "%s", basename);
	w->count++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Waits up to 5 s until `want` was seen; true if it was. */
static bool watch_wait(struct watch_log *w, const char *want)
{
	struct timespec until;
	bool seen;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&w->lock);
	while (strcmp(w->last, want) && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0) {
	}
	seen = !strcmp(w->last, want);
	pthread_mutex_unlock(&w->lock);
	return seen;
}

static void paths_put_get(struct fx *fx, struct path_info **p)
{
	struct path_info_service *ps = fx->st->paths;
	char a[STORE_PATH_MAX_BASENAME + 1], b[STORE_PATH_MAX_BASENAME + 1];
	struct path_info *got, *absent;

	for (int i = 0; i < 3; i++)
		CHECK_OK(path_info_service_put(ps, p[i]));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(path_info_service_get(ps, p[i]->path.digest, &got));
		store_path_basename(&got->path, a);
		store_path_basename(&p[i]->path, b);
		CHECK_STR(a, b);
		CHECK_EQ(got->nar_size, p[i]->nar_size);
		CHECK(got->root.kind == NODE_FILE &&
		      b3_digest_eq(&got->root.digest, &b3_empty_digest));
		path_info_free(got);
	}
	CHECK_OK(mk_path_info(40, "absent", 1, &absent));
	CHECK_ERR(path_info_service_get(ps, absent->path.digest, &got), -ENOENT);
	path_info_free(absent);
}

static void paths_list(struct fx *fx, struct path_info **p)
{
	struct path_info_service *ps = fx->st->paths;
	char want[STORE_PATH_MAX_BASENAME + 1];
	struct listing l = {.n = 0};

	for (int i = 0; i < 3; i++)
		CHECK_OK(path_info_service_put(ps, p[i]));
	CHECK_OK(path_info_service_list(ps, 0, list_cb, &l));
	CHECK_EQ(l.n, 3);
	for (size_t i = 0; i < 3; i++) {
		store_path_basename(&p[i]->path, want);
		CHECK_STR(l.names[i], want);
		CHECK_EQ(l.cursors[i], i + 1);
	}
	/* A registered path never changes (other content is refused) and
	 * keeps its cursor when registered again; a new path comes last. */
	p[1]->nar_size = 999;
	CHECK_ERR(path_info_service_put(ps, p[1]), -EEXIST);
	p[1]->nar_size = 101;
	CHECK_OK(path_info_service_put(ps, p[1]));
	CHECK_OK(path_info_service_put(ps, p[3]));
	l = (struct listing){.n = 0};
	CHECK_OK(path_info_service_list(ps, 0, list_cb, &l));
	CHECK_EQ(l.n, 4);
	CHECK_EQ(l.cursors[1], 2);
	CHECK_EQ(l.nar_sizes[1], 101);
	CHECK_EQ(l.cursors[3], 4);
	store_path_basename(&p[3]->path, want);
	CHECK_STR(l.names[3], want);
	/* Resumption after a cursor, early stop, and errors from the callback. */
	l = (struct listing){.n = 0};
	CHECK_OK(path_info_service_list(ps, 2, list_cb, &l));
	CHECK(l.n == 2 && l.cursors[0] == 3 && l.cursors[1] == 4);
	l = (struct listing){.stop_after = 2};
	CHECK_OK(path_info_service_list(ps, 0, list_cb, &l));
	CHECK_EQ(l.n, 2);
	l = (struct listing){.fail_with = -EPIPE};
	CHECK_ERR(path_info_service_list(ps, 1, list_cb, &l), -EPIPE);
	CHECK_EQ(l.n, 1);
	l = (struct listing){.n = 0};
	CHECK_OK(path_info_service_list(ps, UINT64_MAX, list_cb, &l));
	CHECK_EQ(l.n, 0);
}

static void paths_watch(struct fx *fx, struct path_info **p)
{
	struct watch_log w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	char want[STORE_PATH_MAX_BASENAME + 1];

	CHECK_OK(path_info_service_put(fx->st->paths, p[0]));
	CHECK_OK(path_info_service_watch(fx->st->paths, watch_cb, &w));
	CHECK_OK(path_info_service_put(fx->st->paths, p[2]));
	store_path_basename(&p[2]->path, want);
	CHECK_MSG(watch_wait(&w, want), "no notification for %s", want);
	/* Free the service (and its watcher) before `w` goes away. */
	store_free(fx->st);
	fx->st = NULL;
	CHECK_EQ(w.count, 1);
}

struct counter {
	uint64_t n, last;
	bool ordered;
};

static int count_cb(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct counter *c = ctx;

	c->ordered = c->ordered && cursor > c->last && pi->nar_size == cursor;
	c->last = cursor;
	c->n++;
	return 0;
}

static void paths_many(struct fx *fx, struct path_info **unused)
{
	struct counter c = {.ordered = true};

	for (unsigned i = 1; i <= 150; i++) {
		struct path_info *pi;
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		/* nar_size carries the expected cursor. */
		CHECK_OK(mk_path_info(100 + i, name, i, &pi));
		CHECK_OK(path_info_service_put(fx->st->paths, pi));
		path_info_free(pi);
	}
	CHECK_OK(path_info_service_list(fx->st->paths, 0, count_cb, &c));
	CHECK(c.n == 150 && c.ordered && c.last == 150);
	c = (struct counter){.ordered = true, .last = 100};
	CHECK_OK(path_info_service_list(fx->st->paths, 100, count_cb, &c));
	CHECK(c.n == 50 && c.ordered);
}

static void paths_suite(bool local)
{
	void (*cases[])(struct fx *, struct path_info **) = {paths_put_get, paths_list, paths_watch,
							     paths_many};
	const char *names[4] = {"hello-1.0", "zlib", "a.b_c+d?e=f", "later"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct path_info *p[4] = {0};
		struct fx fx;

		for (unsigned j = 0; j < 4; j++)
			CHECK_OK(mk_path_info(j + 1, names[j], 100 + j, &p[j]));
		CHECK_OK(fx_open(&fx, local, DIR_SIZE_SPEC));
		cases[i](&fx, p);
		fx_close(&fx);
		for (int j = 0; j < 4; j++)
			path_info_free(p[j]);
	}
}

TEST(services_paths_memory)
{
	paths_suite(false);
}

TEST(services_paths_local)
{
	paths_suite(true);
}

/* The Directory and PathInfo suites against PostgreSQL, when
 * tests/integration/t25-postgres.sh gives a server. */
TEST(services_postgres)
{
	if (!pg_fx_base())
		return;
	fx_pg = true;
	dir_suite(false, DIR_SIZE_SPEC);
	dir_suite(false, DIR_SIZE_NATIVE);
	paths_suite(false);
	fx_pg = false;
}

/* --- local store only --- */

static int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t len = (ssize_t)strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)len) != len) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -EIO : 0;
}

static size_t count_entries(const char *dir)
{
	char cmd[256], out[32];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	f = popen(cmd, "r");
	if (!f)
		return (size_t)-1;
	if (!fgets(out, sizeof(out), f))
		out[0] = '\0';
	pclose(f);
	return (size_t)strtoul(out, NULL, 10);
}

TEST(local_layout_and_marker)
{
	char path[256], text[256];
	struct b3_digest d;
	struct stat st;
	struct fx fx;

	files_only(true);
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_NATIVE));
	files_only(false);
	snprintf(path, sizeof(path), "%s/%s", fx.dir, LOCAL_STORE_MARKER);
	CHECK_OK(read_file(path, text, sizeof(text)));
	CHECK_STR(text, "storefs local store 1\ndir-size native\n");
	CHECK_OK(blob_service_put(fx.st->blobs, "Hello World!", 12, &d));
	CHECK_OK(local_blob_path(fx.dir, &d, path, sizeof(path)));
	CHECK(strstr(path, "/blobs/5c/a7/5ca7815adcb484e9a136c11efe69c1d530176d549b5d18d038eb5280b"
			   "4b3470c"));
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0444);
	snprintf(path, sizeof(path), "%s/tmp", fx.dir);
	CHECK_EQ(count_entries(path), 0);
	CHECK_ERR(local_blob_path(fx.dir, &d, path, 20), -ENAMETOOLONG);
	fx_close(&fx);
}

TEST(local_rejects_foreign_dirs)
{
	char tmp[] = "/tmp/storefs-unit.XXXXXX", path[256], sub[64];
	struct store *st = NULL;

	CHECK(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/precious", tmp);
	CHECK_OK(write_file(path, "data"));
	CHECK_ERR(local_store_open(tmp, STORE_OPEN_CREATE, &st), -EINVAL);
	snprintf(path, sizeof(path), "'%s' is not a storefs store", tmp);
	CHECK_STR(sf_errmsg(-EINVAL), path);
	CHECK_EQ(count_entries(tmp), 1); /* nothing written */
	/* Missing or empty without CREATE; a plain file; a damaged marker. */
	snprintf(sub, sizeof(sub), "%s/missing", tmp);
	CHECK_ERR(local_store_open(sub, 0, &st), -ENOENT);
	CHECK(mkdir(sub, 0755) == 0);
	CHECK_ERR(local_store_open(sub, 0, &st), -ENOENT);
	CHECK_EQ(count_entries(sub), 0);
	snprintf(path, sizeof(path), "%s/precious", tmp);
	CHECK_ERR(local_store_open(path, STORE_OPEN_CREATE, &st), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/%s", sub, LOCAL_STORE_MARKER);
	CHECK_OK(write_file(path, "storefs local store 3\ndir-size spec\n"));
	CHECK_ERR(local_store_open(sub, STORE_OPEN_CREATE, &st), -EINVAL);
	CHECK_OK(write_file(path, "storefs local store 1\ndir-size bogus\n"));
	CHECK_ERR(local_store_open(sub, STORE_OPEN_CREATE, &st), -EINVAL);
	CHECK_OK(write_file(path, "storefs local store 1\ndir-size spec\n"));
	CHECK_OK(local_store_open(sub, 0, &st));
	CHECK_EQ(st->size_formula, DIR_SIZE_SPEC);
	store_free(st);
	rm_rf(tmp);
}

/* A pid that is certainly not running: a child that has exited. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

TEST(local_cleans_dead_temp_files)
{
	char dead[160], alive[160], other[160];
	struct fx fx;

	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	snprintf(dead, sizeof(dead), "%s/tmp/%ld.0.deadbeef", fx.dir, (long)dead_pid());
	snprintf(alive, sizeof(alive), "%s/tmp/%ld.0.0badcafe", fx.dir, (long)getpid());
	snprintf(other, sizeof(other), "%s/tmp/unrelated", fx.dir);
	CHECK_OK(write_file(dead, "partial"));
	CHECK_OK(write_file(alive, "partial"));
	CHECK_OK(write_file(other, "x"));
	store_free(fx.st);
	CHECK_OK(local_store_open(fx.dir, 0, &fx.st));
	CHECK(access(dead, F_OK) < 0 && errno == ENOENT);
	CHECK(access(alive, F_OK) == 0);
	CHECK(access(other, F_OK) == 0);
	fx_close(&fx);
}

/* A blob file of the wrong size (torn by a crash) is replaced on re-put. */
TEST(local_replaces_torn_blob)
{
	char path[256], text[64];
	struct b3_digest d;
	uint64_t size;
	struct fx fx;

	files_only(true);
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	files_only(false);
	CHECK_OK(blob_service_put(fx.st->blobs, "Hello World!", 12, &d));
	CHECK_OK(local_blob_path(fx.dir, &d, path, sizeof(path)));
	CHECK(chmod(path, 0644) == 0);
	CHECK_OK(write_file(path, "Hell"));
	CHECK_OK(blob_service_stat(fx.st->blobs, &d, &size));
	CHECK_EQ(size, 4);
	CHECK_OK(blob_service_put(fx.st->blobs, "Hello World!", 12, &d));
	CHECK_OK(read_file(path, text, sizeof(text)));
	CHECK_STR(text, "Hello World!");
	fx_close(&fx);
}

/* Reads blob `d` whole and compares it with `want`. */
static void blob_is(struct blob_service *bs, const struct b3_digest *d, const uint8_t *want,
		    size_t len, const char *file, int line)
{
	struct blob_reader *r;
	uint8_t *got = malloc(len + 1);
	size_t n = 0;

	if (!got || blob_service_open_read(bs, d, &r) < 0) {
		free(got);
		test_fail(file, line, "blob cannot be opened");
		return;
	}
	if (blob_reader_pread(r, got, len + 1, 0, &n) < 0 || n != len || memcmp(got, want, len))
		test_fail(file, line, "blob holds other bytes (%zu of %zu)", n, len);
	blob_reader_close(r);
	free(got);
}

/* An import's put of bytes it hashed itself: stored as inline value or
 * file, "have it" the second time, a torn file replaced, created blobs
 * listed by a tracker; a backend without it says -EOPNOTSUPP. */
TEST(local_put_hashed)
{
	static uint8_t big[40000];
	const uint8_t small[] = "put_hashed small blob";
	struct b3_digest ds, db, dt;
	struct blob_tracker *t;
	const struct b3_digest *listed;
	char path[256];
	bool created;
	struct fx fx;

	fill_pattern(big, sizeof(big), 5);
	b3_digest_of(small, sizeof(small), &ds);
	b3_digest_of(big, sizeof(big), &db);
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	CHECK_OK(blob_service_put_hashed(fx.st->blobs, small, sizeof(small), &ds, &created));
	CHECK(created);
	CHECK_OK(blob_service_put_hashed(fx.st->blobs, small, sizeof(small), &ds, &created));
	CHECK(!created);
	blob_is(fx.st->blobs, &ds, small, sizeof(small), __FILE__, __LINE__);
	CHECK_OK(blob_service_put_hashed(fx.st->blobs, big, sizeof(big), &db, &created));
	CHECK(created);
	CHECK_OK(local_blob_path(fx.dir, &db, path, sizeof(path)));
	CHECK(access(path, F_OK) == 0); /* above the inline limit: a file */
	CHECK_OK(blob_service_put_hashed(fx.st->blobs, big, sizeof(big), &db, &created));
	CHECK(!created);
	CHECK_OK(blob_service_flush(fx.st->blobs));
	CHECK(chmod(path, 0644) == 0);
	CHECK_OK(write_file(path, "torn"));
	CHECK_OK(blob_service_put_hashed(fx.st->blobs, big, sizeof(big), &db, NULL));
	blob_is(fx.st->blobs, &db, big, sizeof(big), __FILE__, __LINE__);
	CHECK_OK(blob_tracker_new(fx.st->blobs, &t));
	big[0] ^= 1;
	b3_digest_of(big, sizeof(big), &dt);
	CHECK_OK(blob_service_put_hashed(blob_tracker_service(t), big, sizeof(big), &dt, NULL));
	CHECK_OK(blob_service_put_hashed(blob_tracker_service(t), small, sizeof(small), &ds, NULL));
	CHECK_EQ(blob_tracker_created(t, &listed), 1);
	CHECK(b3_digest_eq(&listed[0], &dt));
	blob_tracker_free(t);
	fx_close(&fx);
	CHECK_OK(fx_open(&fx, false, DIR_SIZE_SPEC));
	CHECK_ERR(blob_service_put_hashed(fx.st->blobs, small, sizeof(small), &ds, NULL),
		  -EOPNOTSUPP);
	fx_close(&fx);
}

/* Rewrites the LMDB "directories" record of `d` with one byte flipped. */
static int flip_dir_record(const char *store, const struct b3_digest *d, size_t off)
{
	char db[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	uint8_t copy[4096];
	int rc;

	snprintf(db, sizeof(db), "%s/db", store);
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
	    (rc = mdb_env_open(env, db, 0, 0644)))
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0 && !(rc = mdb_dbi_open(txn, "directories", 0, &dbi)) &&
	    !(rc = mdb_get(txn, dbi, &key, &val))) {
		if (val.mv_size > sizeof(copy) || off >= val.mv_size)
			rc = EINVAL;
		if (rc == 0) {
			memcpy(copy, val.mv_data, val.mv_size);
			copy[off] ^= 0x01;
			val.mv_data = copy;
			rc = mdb_put(txn, dbi, &key, &val, 0);
		}
	}
	rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc;
}

TEST(local_detects_corrupt_directory)
{
	struct directory *got;
	struct visits v = {.n = 0};
	struct b3_digest dg;
	struct dirs x;
	struct fx fx;
	char text[B3_TEXT_LEN + 1];

	CHECK_OK(dirs_build(&x, DIR_SIZE_SPEC));
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	CHECK_OK(dir_service_put(fx.st->dirs, x.k, &dg));
	CHECK_OK(dir_service_put(fx.st->dirs, x.p, &dg));
	store_free(fx.st);
	/* Byte 15 lies inside the file digest: the record still decodes, so
	 * only the digest check can notice. */
	CHECK_EQ(flip_dir_record(fx.dir, &x.dg_k, 15), 0);
	CHECK_OK(local_store_open(fx.dir, 0, &fx.st));
	CHECK_ERR(dir_service_get(fx.st->dirs, &x.dg_k, &got), -EIO);
	b3_digest_to_text(&x.dg_k, text);
	CHECK(strstr(sf_errmsg(-EIO), text) && strstr(sf_errmsg(-EIO), "corrupt"));
	CHECK_ERR(dir_service_get_recursive(fx.st->dirs, &x.dg_p, visit_cb, &v), -EIO);
	CHECK_OK(dir_service_get(fx.st->dirs, &x.dg_p, &got));
	directory_free(got);
	fx_close(&fx);
	dirs_free(&x);
}

/* In a child: opens the store for an import and exits with the result
 * (0, or 100 + errno), after holding it for `hold_ms`. */
static pid_t child_import(const char *dir, unsigned flags, int hold_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct store *st;
		int rc = local_store_open(dir, STORE_OPEN_IMPORT | flags, &st);

		if (rc == 0) {
			usleep((useconds_t)hold_ms * 1000);
			store_free(st);
		}
		_exit(rc == 0 ? 0 : 100 - rc);
	}
	return pid;
}

static int child_status(pid_t pid)
{
	int status = -1;

	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(local_import_lock)
{
	struct store *second;
	char want[96];
	struct fx fx;
	pid_t pid;

	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	store_free(fx.st);
	CHECK_OK(local_store_open(fx.dir, STORE_OPEN_IMPORT, &fx.st));
	/* Another process, and another open in this one, are refused. */
	CHECK_EQ(child_status(child_import(fx.dir, 0, 0)), 100 + EBUSY);
	CHECK_ERR(local_store_open(fx.dir, STORE_OPEN_IMPORT, &second), -EBUSY);
	snprintf(want, sizeof(want), "locked by another import (pid %ld)", (long)getpid());
	CHECK(strstr(sf_errmsg(-EBUSY), want));
	/* Plain opens are not affected. */
	CHECK_OK(local_store_open(fx.dir, 0, &second));
	store_free(second);
	store_free(fx.st);
	/* A waiting open gets the lock once the holder is done. */
	pid = child_import(fx.dir, 0, 300);
	usleep(100 * 1000);
	CHECK_ERR(local_store_open(fx.dir, STORE_OPEN_IMPORT, &fx.st), -EBUSY);
	CHECK_OK(local_store_open(fx.dir, STORE_OPEN_IMPORT | STORE_OPEN_WAIT, &fx.st));
	CHECK_EQ(child_status(pid), 0);
	fx_close(&fx);
}

TEST(local_persists_and_read_only)
{
	struct path_info *pi, *got;
	struct directory *dir;
	struct b3_digest blob;
	struct dirs x;
	struct fx fx;
	uint64_t size;
	struct blob_writer *w;

	CHECK_OK(dirs_build(&x, DIR_SIZE_NATIVE));
	CHECK_OK(mk_path_info(5, "persist", 42, &pi));
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_NATIVE));
	CHECK_OK(blob_service_put(fx.st->blobs, "Hello World!", 12, &blob));
	CHECK_OK(dir_service_put(fx.st->dirs, x.a, &blob));
	CHECK_OK(dir_service_put(fx.st->dirs, x.b, &blob));
	CHECK_OK(path_info_service_put(fx.st->paths, pi));
	store_free(fx.st);
	/* Reopened without the native flag, read-only: the formula persists. */
	CHECK_OK(local_store_open(fx.dir, STORE_OPEN_READONLY, &fx.st));
	CHECK_EQ(fx.st->size_formula, DIR_SIZE_NATIVE);
	b3_digest_of("Hello World!", 12, &blob);
	CHECK_OK(blob_service_stat(fx.st->blobs, &blob, &size));
	CHECK_OK(dir_service_get(fx.st->dirs, &x.dg_b, &dir));
	directory_free(dir);
	CHECK_OK(path_info_service_get(fx.st->paths, pi->path.digest, &got));
	CHECK_EQ(got->nar_size, 42);
	path_info_free(got);
	CHECK_ERR(blob_service_open_write(fx.st->blobs, &w), -EROFS);
	CHECK_ERR(dir_service_put(fx.st->dirs, x.a, &blob), -EROFS);
	CHECK_ERR(path_info_service_put(fx.st->paths, pi), -EROFS);
	CHECK_ERR(local_store_open(fx.dir, STORE_OPEN_READONLY | STORE_OPEN_IMPORT, &fx.st),
		  -EINVAL);
	fx_close(&fx);
	path_info_free(pi);
	dirs_free(&x);
}

/* Another process registering a path wakes our watcher. */
TEST(local_watch_across_processes)
{
	struct watch_log w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	char want[STORE_PATH_MAX_BASENAME + 1], stale[200];
	struct path_info *pi;
	struct fx fx;
	pid_t pid;

	CHECK_OK(mk_path_info(9, "from-child", 7, &pi));
	CHECK_OK(fx_open(&fx, true, DIR_SIZE_SPEC));
	/* A socket file nobody listens on is removed by the sender. */
	snprintf(stale, sizeof(stale), "%s/notify/%ld.0.sock", fx.dir, (long)dead_pid());
	CHECK_OK(path_info_service_watch(fx.st->paths, watch_cb, &w));
	{
		int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};

		CHECK(strlen(stale) < sizeof(a.sun_path));
		memcpy(a.sun_path, stale, strlen(stale) + 1);
		CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
		close(fd);
	}
	pid = fork();
	if (pid == 0) {
		struct store *st;

		_exit(local_store_open(fx.dir, 0, &st) == 0 &&
			      path_info_service_put(st->paths, pi) == 0
			  ? 0
			  : 1);
	}
	CHECK_EQ(child_status(pid), 0);
	store_path_basename(&pi->path, want);
	CHECK_MSG(watch_wait(&w, want), "no notification for %s", want);
	CHECK(access(stale, F_OK) < 0);
	fx_close(&fx);
	path_info_free(pi);
}

/* --- the registry --- */

TEST(registry_urls)
{
	char tmp[] = "/tmp/storefs-unit.XXXXXX", url[128], buf[256];
	const char *saved = getenv("STOREFS_STORE");
	char *keep = saved ? strdup(saved) : NULL;
	struct store *st;

	CHECK(mkdtemp(tmp));
	CHECK_OK(store_open("memory://", 0, &st));
	CHECK_STR(st->location, "memory://");
	store_free(st);
	CHECK_ERR(store_open("gs://bucket/x", 0, &st), -EINVAL);
	CHECK(strstr(sf_errmsg(-EINVAL), "unsupported store URL 'gs://bucket/x'"));
	CHECK_ERR(store_open("", 0, &st), -EINVAL);
	CHECK_ERR(store_open("local://", 0, &st), -EINVAL);
	snprintf(url, sizeof(url), "local://%s/a", tmp);
	CHECK_OK(store_open(url, STORE_OPEN_CREATE, &st));
	store_free(st);
	snprintf(url, sizeof(url), "%s/a", tmp);
	CHECK_OK(store_open(url, 0, &st));
	store_free(st);
	/* The default location follows $STOREFS_STORE. */
	snprintf(url, sizeof(url), "%s/default", tmp);
	setenv("STOREFS_STORE", url, 1);
	CHECK_STR(store_default_location(buf, sizeof(buf)), url);
	CHECK(store_default_location(buf, 8) == NULL);
	CHECK_OK(store_open(NULL, STORE_OPEN_CREATE, &st));
	CHECK_STR(st->location, url);
	store_free(st);
	unsetenv("STOREFS_STORE");
	if (geteuid() == 0)
		CHECK_STR(store_default_location(buf, sizeof(buf)), "/var/lib/storefs");
	if (keep)
		setenv("STOREFS_STORE", keep, 1);
	free(keep);
	rm_rf(tmp);
}
