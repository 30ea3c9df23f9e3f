/* test_postgres.c - what only the PostgreSQL store does: the schema's
 * version check, first writer wins between processes' connections,
 * signatures merged, atomic registration, damaged rows, secrets kept out
 * of messages. The conformance suites run in test_services.c. All but the
 * last need $STOREFS_TEST_PG_URL (tests/integration/t25-postgres.sh). */
#include "harness.h"
#include "pg_fixture.h"

#include "backends/registry.h"
#include "common/deadline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int mk_pi(const char *base, uint8_t nar_byte, struct path_info **out)
{
	struct node root = {.kind = NODE_FILE, .digest = b3_empty_digest, .size = 0};
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	rc = store_path_parse_basename(base, strlen(base), &pi->path);
	if (rc == 0)
		rc = path_info_set_root(pi, &root);
	pi->nar_size = 112;
	memset(pi->nar_sha256, nar_byte, 32);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

#define BASE "0123456789abcdfghijklmnpqrsvwxyz-hello"

TEST(postgres_newer_schema_refused)
{
	struct store *st;
	struct pg_fx fx;

	if (!pg_fx_base())
		return;
	CHECK_OK(pg_fx_new(&fx));
	CHECK_OK(store_open(fx.url, 0, &st));
	store_free(st);
	CHECK_OK(pg_fx_sql(&fx, "UPDATE storefs_schema_version SET version = 99"));
	CHECK_ERR(store_open(fx.url, 0, &st), -EPROTO);
	CHECK_MSG(strstr(sf_errmsg(-EPROTO), "version 99, newer than this storefs"), "message: %s",
		  sf_errmsg(-EPROTO));
	CHECK_OK(pg_fx_sql(&fx, "UPDATE storefs_schema_version SET version = 1"));
	CHECK_OK(store_open(fx.url, 0, &st));
	store_free(st);
	pg_fx_drop(&fx);
}

struct racer {
	const char *url;
	uint8_t nar_byte;
	pthread_barrier_t *go;
	int rc;
};

/* Each racer has a store (and connections) of its own, like another host. */
static void *race(void *arg)
{
	struct racer *r = arg;
	struct store *st = NULL;
	struct path_info *pi = NULL;

	r->rc = store_open(r->url, 0, &st);
	if (r->rc == 0)
		r->rc = mk_pi(BASE, r->nar_byte, &pi);
	pthread_barrier_wait(r->go);
	if (r->rc == 0)
		r->rc = path_info_service_put(st->paths, pi);
	path_info_free(pi);
	store_free(st);
	return NULL;
}

TEST(postgres_first_writer_wins)
{
	enum { N = 6 };
	struct racer r[N];
	pthread_t th[N];
	pthread_barrier_t go;
	struct path_info *got;
	struct store_path p;
	struct store *st;
	struct pg_fx fx;
	int won = -1, refused = 0;

	if (!pg_fx_base())
		return;
	CHECK_OK(pg_fx_new(&fx));
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){fx.url, (uint8_t)(i + 1), &go, 0};
		CHECK(pthread_create(&th[i], NULL, race, &r[i]) == 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (r[i].rc == 0)
			won = i;
		refused += r[i].rc == -EEXIST;
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ(refused, N - 1);
	CHECK(won >= 0);
	CHECK_OK(store_open(fx.url, STORE_OPEN_READONLY, &st));
	CHECK_OK(store_path_parse_basename(BASE, strlen(BASE), &p));
	CHECK_OK(path_info_service_get(st->paths, p.digest, &got));
	CHECK_EQ(got->nar_sha256[0], r[won].nar_byte);
	path_info_free(got);
	store_free(st);
	pg_fx_drop(&fx);
}

TEST(postgres_signatures_added_and_read_only)
{
	static const uint8_t sig[64] = {1, 2, 3};
	enum path_info_put_result res;
	struct path_info *pi, *got;
	struct store *st, *ro;
	struct pg_fx fx;

	if (!pg_fx_base())
		return;
	CHECK_OK(pg_fx_new(&fx));
	CHECK_OK(store_open(fx.url, 0, &st));
	CHECK_OK(mk_pi(BASE, 7, &pi));
	CHECK_OK(path_info_service_register(st->paths, pi, &res));
	CHECK_EQ(res, PATH_INFO_ADDED);
	CHECK_OK(path_info_service_register(st->paths, pi, &res));
	CHECK_EQ(res, PATH_INFO_UNCHANGED);
	CHECK_OK(path_info_add_sig(pi, "test-1", sig));
	CHECK_OK(path_info_service_register(st->paths, pi, &res));
	CHECK_EQ(res, PATH_INFO_SIGS_ADDED);
	CHECK_OK(path_info_service_get(st->paths, pi->path.digest, &got));
	CHECK(got->n_sigs == 1 && !strcmp(got->sigs[0].name, "test-1"));
	path_info_free(got);
	CHECK_OK(store_open(fx.url, STORE_OPEN_READONLY, &ro));
	CHECK_ERR(path_info_service_put(ro->paths, pi), -EROFS);
	store_free(ro);
	path_info_free(pi);
	store_free(st);
	pg_fx_drop(&fx);
}

/* One Directory {f: empty file} staged and committed with its PathInfo;
 * a commit refused by the immutability rule stores neither. */
static int one_dir(const char *name, struct directory **d, struct b3_digest *dg)
{
	struct node n = {.kind = NODE_FILE,
			 .name = (const uint8_t *)name,
			 .name_len = strlen(name),
			 .digest = b3_empty_digest};
	struct directory_builder *b;
	int rc = directory_builder_new(&b);

	if (rc == 0)
		rc = directory_builder_add(b, &n);
	if (rc < 0) {
		directory_builder_free(b);
		return rc;
	}
	rc = directory_builder_finish(b, d);
	return rc < 0 ? rc : directory_digest(*d, dg);
}

static int commit_one(struct store *st, const char *file, struct path_info *pi,
		      struct b3_digest *dg)
{
	struct dir_service *stage;
	struct directory *d;
	struct node root;
	int rc = one_dir(file, &d, dg);

	if (rc < 0)
		return rc;
	root = (struct node){.kind = NODE_DIRECTORY, .digest = *dg, .size = 1};
	rc = path_info_set_root(pi, &root);
	if (rc == 0)
		rc = store_stage_dirs(st, &stage);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	rc = stage->ops->put_batch(stage, &d, dg, 1);
	directory_free(d);
	if (rc == 0)
		rc = store_commit_path(st, stage, pi, NULL);
	dir_service_free(stage);
	return rc;
}

TEST(postgres_atomic_registration)
{
	struct path_info *pi;
	struct directory *got;
	struct b3_digest dg, dg2;
	struct store *st;
	struct pg_fx fx;

	if (!pg_fx_base())
		return;
	CHECK_OK(pg_fx_new(&fx));
	CHECK_OK(store_open(fx.url, 0, &st));
	CHECK(!st->blobs && st->dirs && st->paths);
	CHECK_OK(mk_pi(BASE, 9, &pi));
	CHECK_OK(commit_one(st, "f", pi, &dg));
	CHECK_OK(dir_service_get(st->dirs, &dg, &got));
	directory_free(got);
	/* Other content for the registered path: refused, its Directory
	 * is not stored either. */
	pi->nar_sha256[0] ^= 1;
	CHECK_ERR(commit_one(st, "g", pi, &dg2), -EEXIST);
	CHECK_ERR(dir_service_get(st->dirs, &dg2, &got), -ENOENT);
	path_info_free(pi);
	store_free(st);
	pg_fx_drop(&fx);
}

TEST(postgres_damaged_rows)
{
	struct b3_digest dg;
	struct directory *d, *got;
	struct path_info *pi, *gotp;
	struct store *st;
	struct pg_fx fx;

	if (!pg_fx_base())
		return;
	CHECK_OK(pg_fx_new(&fx));
	CHECK_OK(store_open(fx.url, 0, &st));
	CHECK_OK(one_dir("f", &d, &dg));
	CHECK_OK(dir_service_put(st->dirs, d, &dg));
	directory_free(d);
	CHECK_OK(mk_pi(BASE, 3, &pi));
	CHECK_OK(path_info_service_put(st->paths, pi));
	CHECK_OK(pg_fx_sql(&fx, "UPDATE storefs_directories SET data = data || '\\x00'::bytea;"
				"UPDATE storefs_path_infos SET info = '\\x0a'::bytea"));
	CHECK_ERR(dir_service_get(st->dirs, &dg, &got), -EIO);
	CHECK_MSG(strstr(sf_errmsg(-EIO), "digest mismatch"), "message: %s", sf_errmsg(-EIO));
	CHECK_ERR(path_info_service_get(st->paths, pi->path.digest, &gotp), -EIO);
	CHECK_MSG(strstr(sf_errmsg(-EIO), "is corrupt"), "message: %s", sf_errmsg(-EIO));
	path_info_free(pi);
	store_free(st);
	pg_fx_drop(&fx);
}

/* No server needed: port 1 on loopback refuses at once. */
TEST(postgres_secret_not_in_messages)
{
	struct store *st;
	int rc =
	    store_open("postgresql://who:hunter2-secret@127.0.0.1:1/db?connect_timeout=2", 0, &st);

	CHECK_ERR(rc, -EIO);
	CHECK_MSG(!strstr(sf_errmsg(rc), "hunter2"), "message: %s", sf_errmsg(rc));
	CHECK_MSG(strstr(sf_errmsg(rc), "postgresql://who@127.0.0.1:1/db"), "message: %s",
		  sf_errmsg(rc));
	CHECK_ERR(store_open("postgres://who:hunter2-secret@127.0.0.1:1/db?nonsense=%zz", 0, &st),
		  -EINVAL);
	CHECK_MSG(!strstr(sf_errmsg(-EINVAL), "hunter2"), "message: %s", sf_errmsg(-EINVAL));
	/* timeout= is storefs's, taken out before libpq sees the URL */
	rc = store_open("postgres://who:hunter2-secret@127.0.0.1:1/db?timeout=3&connect_timeout=2",
			0, &st);
	CHECK_ERR(rc, -EIO);
	CHECK_MSG(strstr(sf_errmsg(rc), "cannot connect"), "message: %s", sf_errmsg(rc));
	static const char *const bad[] = {"timeout=0", "timeout=", "timeout=2s", "timeout=86401",
					  "timeout=1&timeout=2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char url[128];

		snprintf(url, sizeof(url), "postgres://who:hunter2-secret@127.0.0.1:1/db?%s",
			 bad[i]);
		CHECK_ERR(store_open(url, 0, &st), -EINVAL);
		CHECK_MSG(strstr(sf_errmsg(-EINVAL), "timeout") &&
			      !strstr(sf_errmsg(-EINVAL), "hunter2"),
			  "%s: %s", bad[i], sf_errmsg(-EINVAL));
	}
}

struct seen {
	pthread_mutex_t lock;
	char last[STORE_PATH_MAX_BASENAME + 1];
};

static void seen_cb(void *ctx, const char *basename)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	snprintf(s->last, sizeof(s->last), "%s", basename);
	pthread_mutex_unlock(&s->lock);
}

static bool seen_wait(struct seen *s, const char *want, int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		bool got;

		pthread_mutex_lock(&s->lock);
		got = !strcmp(s->last, want);
		pthread_mutex_unlock(&s->lock);
		if (got)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

struct getter {
	struct store *st;
	const uint8_t *digest;
	int errors;
};

static void *get_many(void *arg)
{
	struct getter *g = arg;

	for (int i = 0; i < 50; i++) {
		struct path_info *pi;

		if (path_info_service_get(g->st->paths, g->digest, &pi) == 0)
			path_info_free(pi);
		else
			g->errors++;
	}
	return NULL;
}

/* Readers in parallel, so that the pool keeps several connections. */
static int fill_pool(struct store *st, const uint8_t *digest)
{
	struct getter g[4];
	pthread_t th[4];
	int errors = 0;

	for (int i = 0; i < 4; i++) {
		g[i] = (struct getter){st, digest, 0};
		if (pthread_create(&th[i], NULL, get_many, &g[i]))
			return -EAGAIN;
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		errors += g[i].errors;
	}
	return errors ? -EIO : 0;
}

/* The server restarted under an open store: no request fails (its kept
 * connections, all dead, are replaced at the first failure); stopped:
 * -EIO with a message at once, no hang; started again: the same store
 * works and its watcher, reconnected, announces a path registered by
 * another store in the meantime. Needs $STOREFS_TEST_PG_STOP/_START. */
TEST(postgres_outage_and_recovery)
{
	const char *stop = getenv("STOREFS_TEST_PG_STOP"), *start = getenv("STOREFS_TEST_PG_START");
	static const char later[] = "1123456789abcdfghijklmnpqrsvwxyz-later";
	struct seen w = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct path_info *pi, *p2, *got;
	struct store *st, *other;
	struct pg_fx fx;
	uint64_t t0;

	if (!pg_fx_base() || !stop || !start)
		return;
	CHECK_OK(pg_fx_new(&fx));
	CHECK_OK(store_open(fx.url, 0, &st));
	CHECK_OK(mk_pi(BASE, 5, &pi));
	CHECK_OK(path_info_service_put(st->paths, pi));
	CHECK_OK(path_info_service_watch(st->paths, seen_cb, &w));
	CHECK_OK(fill_pool(st, pi->path.digest));
	/* A restart between two requests: no request fails. */
	CHECK_OK(system(stop));
	CHECK_OK(system(start));
	CHECK_OK(fill_pool(st, pi->path.digest));
	/* Requests while it is down fail at once. */
	CHECK_OK(system(stop));
	t0 = deadline_now_ms();
	CHECK_ERR(path_info_service_get(st->paths, pi->path.digest, &got), -EIO);
	CHECK_MSG(deadline_now_ms() - t0 < 5000, "EIO took %llu ms",
		  (unsigned long long)(deadline_now_ms() - t0));
	CHECK_MSG(strstr(sf_errmsg(-EIO), "PostgreSQL database"), "message: %s", sf_errmsg(-EIO));
	CHECK_OK(system(start));
	CHECK_OK(fill_pool(st, pi->path.digest));
	CHECK_OK(store_open(fx.url, 0, &other));
	CHECK_OK(mk_pi(later, 6, &p2));
	CHECK_OK(path_info_service_put(other->paths, p2));
	CHECK_MSG(seen_wait(&w, later, 15), "the watcher did not announce %s (last: '%s')", later,
		  w.last);
	path_info_free(p2);
	path_info_free(pi);
	store_free(other);
	store_free(st);
	pg_fx_drop(&fx);
}
