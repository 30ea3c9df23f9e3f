/* pg_paths.c - PathInfos in table storefs_path_infos, keyed by the store
 * path digest, with a listing cursor each. Registration is one
 * transaction that takes the cursor row of storefs_meta first: the
 * immutability check (path_info_merge) and the write cannot interleave
 * with another registration, and cursors are committed in order. */
#include "backends/postgres/pg_internal.h"

#include "common/err.h"
#include "store/path_info_watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_BATCH 128

struct pg_paths {
	struct path_info_service base;
	struct pg_pool *pool;
	bool readonly;
	struct watch_list watches;
};

static int row_corrupt(struct pg_pool *p, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		       const char *why)
{
	char hash[STORE_PATH_HASH_CHARS + 1];

	store_path_hash_part(digest, hash);
	return sf_err(-EIO, "PostgreSQL database '%s': PathInfo '%s' is corrupt: %s", p->location,
		      hash, why);
}

/* Decodes a stored PathInfo and checks that it is the one asked for. */
static int path_from_row(struct pg_pool *p, const uint8_t *digest, const char *data, size_t len,
			 struct path_info **out)
{
	struct path_info *pi;
	int rc = path_info_decode((const uint8_t *)data, len, &pi);

	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return row_corrupt(p, digest, sf_errmsg(rc));
	if (digest && memcmp(pi->path.digest, digest, STORE_PATH_DIGEST_LEN) != 0) {
		path_info_free(pi);
		return row_corrupt(p, digest, "it holds another path");
	}
	*out = pi;
	return 0;
}

/* --- get --- */

struct get_op {
	const uint8_t *digest;
	struct path_info *out; /* NULL: absent */
};

static int get_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	struct get_op *op = arg;
	struct pg_param k = PG_BYTES(op->digest, STORE_PATH_DIGEST_LEN);
	PGresult *r;
	int rc = pg_exec(p, c, "path_get", &k, 1, &r);

	if (rc < 0)
		return rc;
	op->out = NULL;
	if (PQntuples(r) == 1)
		rc = path_from_row(p, op->digest, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
				   &op->out);
	PQclear(r);
	return rc;
}

static int pg_paths_get(struct path_info_service *ps, const uint8_t digest[STORE_PATH_DIGEST_LEN],
			struct path_info **out)
{
	struct pg_paths *s = (struct pg_paths *)ps;
	struct get_op op = {digest, NULL};
	int rc = pg_run(s->pool, get_op, &op);

	if (rc == 0 && !op.out)
		return -ENOENT;
	if (rc == 0)
		*out = op.out;
	return rc;
}

/* --- put --- */

struct put_op {
	const struct path_info *pi;
	const uint8_t *bytes; /* path_info_encode(pi) */
	size_t len;
	struct dir_service *stage; /* may be NULL */
	enum path_info_put_result res;
};

static int bigint_of(struct pg_pool *p, PGresult *r, uint64_t *out)
{
	if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8)
		return sf_err(-EIO, "PostgreSQL database '%s': table storefs_meta is damaged",
			      p->location);
	*out = pg_be64(PQgetvalue(r, 0, 0));
	return 0;
}

/* A registered path never changes (path_info_merge): it keeps its row and
 * cursor and only gains signatures. */
static int record_merge(struct pg_pool *p, struct pg_conn *c, PGresult *row, struct put_op *op)
{
	struct path_info *have;
	uint8_t *bytes;
	size_t len;
	int rc = path_from_row(p, op->pi->path.digest, PQgetvalue(row, 0, 0),
			       (size_t)PQgetlength(row, 0, 0), &have);

	if (rc < 0)
		return rc;
	rc = path_info_merge(have, op->pi, &op->res);
	if (rc == 0 && op->res == PATH_INFO_SIGS_ADDED) {
		rc = path_info_encode(have, &bytes, &len);
		if (rc == 0) {
			struct pg_param v[2] = {
			    PG_BYTES(op->pi->path.digest, STORE_PATH_DIGEST_LEN),
			    PG_BYTES(bytes, len)};

			rc = pg_exec(p, c, "path_update", v, 2, NULL);
			free(bytes);
		}
	}
	path_info_free(have);
	return rc;
}

/* A new path: its row at cursor `cursor`, the next cursor, and a
 * notification that PostgreSQL delivers when (and if) this commits. */
static int record_insert(struct pg_pool *p, struct pg_conn *c, uint64_t cursor, struct put_op *op)
{
	char name[STORE_PATH_MAX_BASENAME + 1], cur[24], next[24];
	char note[24 + STORE_PATH_MAX_BASENAME + 2];
	struct pg_param v[4];
	int rc;

	store_path_basename(&op->pi->path, name);
	snprintf(cur, sizeof(cur), "%" PRIu64, cursor);
	snprintf(next, sizeof(next), "%" PRIu64, cursor + 1);
	snprintf(note, sizeof(note), "%s %s", cur, name);
	v[0] = PG_BYTES(op->pi->path.digest, STORE_PATH_DIGEST_LEN);
	v[1] = PG_TEXT(cur);
	v[2] = PG_TEXT(name);
	v[3] = PG_BYTES(op->bytes, op->len);
	rc = pg_exec(p, c, "path_insert", v, 4, NULL);
	v[0] = PG_TEXT(next);
	if (rc == 0)
		rc = pg_exec(p, c, "cursor_set", v, 1, NULL);
	v[0] = PG_TEXT(note);
	if (rc == 0)
		rc = pg_exec(p, c, "path_notify", v, 1, NULL);
	op->res = PATH_INFO_ADDED;
	return rc;
}

static int put_record(struct pg_pool *p, struct pg_conn *c, struct put_op *op)
{
	struct pg_param k = PG_BYTES(op->pi->path.digest, STORE_PATH_DIGEST_LEN);
	PGresult *r;
	uint64_t cursor;
	int rc = pg_exec(p, c, "cursor_lock", NULL, 0, &r);

	if (rc < 0)
		return rc;
	rc = bigint_of(p, r, &cursor);
	PQclear(r);
	if (rc == 0)
		rc = pg_exec(p, c, "path_get", &k, 1, &r);
	if (rc < 0)
		return rc;
	rc = PQntuples(r) == 1 ? record_merge(p, c, r, op) : record_insert(p, c, cursor, op);
	PQclear(r);
	return rc;
}

static int put_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	struct put_op *op = arg;
	int rc = pg_command(p, c, "BEGIN");

	/* Staged Directories are written even for a path that exists: they
	 * are content-addressed, so this only restores lost ones. */
	if (rc == 0 && op->stage)
		rc = pg_dirs_put_staged(p, c, op->stage);
	if (rc == 0)
		rc = put_record(p, c, op);
	if (rc == 0)
		rc = pg_command(p, c, "COMMIT");
	if (rc < 0)
		pg_rollback(p, c, rc);
	return rc;
}

int pg_paths_put_with(struct path_info_service *ps, struct dir_service *stage,
		      const struct path_info *pi, enum path_info_put_result *res)
{
	struct pg_paths *s = (struct pg_paths *)ps;
	struct put_op op = {pi, NULL, 0, stage, PATH_INFO_ADDED};
	uint8_t *bytes;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "PostgreSQL database '%s' is open read-only",
			      s->pool->location);
	rc = path_info_validate(pi);
	if (rc == 0)
		rc = path_info_encode(pi, &bytes, &op.len);
	if (rc < 0)
		return rc;
	op.bytes = bytes;
	rc = pg_run(s->pool, put_op, &op);
	free(bytes);
	if (rc == 0 && res)
		*res = op.res;
	return rc;
}

static int pg_paths_put(struct path_info_service *ps, const struct path_info *pi,
			enum path_info_put_result *res)
{
	return pg_paths_put_with(ps, NULL, pi, res);
}

/* --- list: keyset pagination, a batch per short read, callbacks outside
 * any connection --- */

struct list_item {
	uint64_t cursor;
	char *rec;
	size_t len;
};

struct list_op {
	uint64_t after;
	struct list_item *items;
	size_t n;
};

static void items_release(struct list_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].rec);
}

static int list_copy(struct pg_pool *p, PGresult *r, struct list_op *op)
{
	int rows = PQntuples(r);

	for (int i = 0; i < rows && i < LIST_BATCH; i++) {
		struct list_item *it = &op->items[op->n];
		size_t len = (size_t)PQgetlength(r, i, 1);

		if (PQgetlength(r, i, 0) != 8)
			return sf_err(-EIO, "PostgreSQL database '%s': a listing cursor is damaged",
				      p->location);
		it->cursor = pg_be64(PQgetvalue(r, i, 0));
		it->rec = malloc(len ? len : 1);
		if (!it->rec)
			return -ENOMEM;
		memcpy(it->rec, PQgetvalue(r, i, 1), len);
		it->len = len;
		op->n++;
	}
	return 0;
}

static int list_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	struct list_op *op = arg;
	char after[24], limit[24];
	struct pg_param v[2] = {PG_TEXT(after), PG_TEXT(limit)};
	PGresult *r;
	int rc;

	items_release(op->items, op->n);
	op->n = 0;
	snprintf(after, sizeof(after), "%" PRIu64, op->after);
	snprintf(limit, sizeof(limit), "%d", LIST_BATCH);
	rc = pg_exec(p, c, "path_list", v, 2, &r);
	if (rc < 0)
		return rc;
	rc = list_copy(p, r, op);
	PQclear(r);
	return rc;
}

/* Calls `cb` for a batch; 1 when it asked to stop. */
static int list_deliver(struct pg_pool *p, struct list_op *op, path_info_list_fn cb, void *ctx)
{
	for (size_t i = 0; i < op->n; i++) {
		struct path_info *pi;
		int rc = path_from_row(p, NULL, op->items[i].rec, op->items[i].len, &pi);

		if (rc < 0)
			return rc;
		rc = cb(ctx, pi, op->items[i].cursor);
		path_info_free(pi);
		if (rc != 0)
			return rc < 0 ? rc : 1;
	}
	return 0;
}

static int pg_paths_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb,
			 void *ctx)
{
	struct pg_paths *s = (struct pg_paths *)ps;
	struct list_op op = {.after = after, .items = calloc(LIST_BATCH, sizeof(*op.items))};
	int rc = 0;

	if (!op.items)
		return -ENOMEM;
	/* Cursors are bigint: past INT64_MAX there is nothing. */
	while (op.after <= INT64_MAX) {
		rc = pg_run(s->pool, list_op, &op);
		if (rc == 0)
			rc = list_deliver(s->pool, &op, cb, ctx);
		if (rc != 0 || op.n < LIST_BATCH)
			break;
		op.after = op.items[op.n - 1].cursor;
	}
	items_release(op.items, op.n);
	free(op.items);
	return rc < 0 ? rc : 0;
}

static int last_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	PGresult *r;
	int rc = pg_exec(p, c, "cursor_last", NULL, 0, &r);

	if (rc < 0)
		return rc;
	rc = bigint_of(p, r, arg);
	PQclear(r);
	return rc;
}

static int pg_paths_last_cursor(struct path_info_service *ps, uint64_t *out)
{
	return pg_run(((struct pg_paths *)ps)->pool, last_op, out);
}

/* --- watch and lifetime --- */

static void watch_stop(void *w)
{
	pg_watch_stop(w);
}

static int pg_paths_watch(struct path_info_service *ps, path_info_watch_fn cb, void *ctx)
{
	struct pg_paths *s = (struct pg_paths *)ps;
	struct pg_watcher *w;
	int rc = pg_watch_start(s->pool, ps, cb, ctx, &w);

	if (rc < 0)
		return rc;
	rc = watch_list_add(&s->watches, w);
	if (rc < 0)
		pg_watch_stop(w);
	return rc;
}

static void pg_paths_free(struct path_info_service *ps)
{
	struct pg_paths *s = (struct pg_paths *)ps;

	watch_list_release(&s->watches);
	pg_pool_unref(s->pool);
	free(s);
}

static const struct path_info_service_ops pg_paths_ops = {
    .get = pg_paths_get,
    .put = pg_paths_put,
    .list = pg_paths_list,
    .watch = pg_paths_watch,
    .free = pg_paths_free,
    .last_cursor = pg_paths_last_cursor,
};

int pg_paths_new(struct pg_pool *p, bool readonly, struct path_info_service **out)
{
	struct pg_paths *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &pg_paths_ops;
	s->pool = pg_pool_ref(p);
	s->readonly = readonly;
	watch_list_init(&s->watches, watch_stop);
	*out = &s->base;
	return 0;
}
