/* pg_dirs.c - Directories in table storefs_directories: the canonical
 * encoding by digest, checked against the digest when stored and again
 * when read (the database is shared, so not trusted more than a disk). */
#include "backends/postgres/pg_internal.h"

#include "castore/dir_stage.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct pg_dirs {
	struct dir_service base;
	struct pg_pool *pool;
	bool readonly;
};

/* --- get --- */

struct get_op {
	const struct b3_digest *digest;
	struct directory *out;
};

static int dir_from_row(struct pg_pool *p, const struct b3_digest *digest, const char *data,
			size_t len, struct directory **out)
{
	char text[B3_TEXT_LEN + 1];
	struct b3_digest got;
	int rc;

	b3_digest_of(data, len, &got);
	b3_digest_to_text(digest, text);
	if (!b3_digest_eq(&got, digest))
		return sf_err(-EIO,
			      "PostgreSQL database '%s': directory '%s' is corrupt: digest "
			      "mismatch",
			      p->location, text);
	rc = directory_decode((const uint8_t *)data, len, out);
	if (rc < 0 && rc != -ENOMEM)
		return sf_err(-EIO, "PostgreSQL database '%s': directory '%s' is corrupt: %s",
			      p->location, text, sf_errmsg(rc));
	return rc;
}

static int get_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	struct get_op *op = arg;
	struct pg_param k = PG_BYTES(op->digest->bytes, B3_LEN);
	PGresult *r;
	int rc = pg_exec(p, c, "dir_get", &k, 1, &r);

	if (rc < 0)
		return rc;
	rc = PQntuples(r) == 1 ? dir_from_row(p, op->digest, PQgetvalue(r, 0, 0),
					      (size_t)PQgetlength(r, 0, 0), &op->out)
			       : -ENOENT;
	PQclear(r);
	return rc;
}

static int pg_dirs_get(struct dir_service *ds, const struct b3_digest *d, struct directory **out)
{
	struct pg_dirs *s = (struct pg_dirs *)ds;
	struct get_op op = {d, NULL};
	int rc = pg_run(s->pool, get_op, &op);

	if (rc == 0)
		*out = op.out;
	return rc;
}

/* --- put --- */

/* Inserts within the transaction open on `c`; a Directory already there
 * is the same bytes (same digest), so a conflict is left alone. */
static int insert_all(struct pg_pool *p, struct pg_conn *c, const struct dir_encoded *e,
		      const struct b3_digest *digests, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct pg_param v[2] = {PG_BYTES(digests[i].bytes, B3_LEN),
					/* "" would be sent as NULL: the empty
					 * Directory encodes to no bytes */
					PG_BYTES(e[i].bytes ? (void *)e[i].bytes : "", e[i].len)};

		rc = pg_exec(p, c, "dir_put", v, 2, NULL);
	}
	return rc;
}

struct put_op {
	const struct dir_encoded *e;
	const struct b3_digest *digests;
	size_t n;
};

static int put_op(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	struct put_op *op = arg;
	int rc = pg_command(p, c, "BEGIN");

	if (rc == 0)
		rc = insert_all(p, c, op->e, op->digests, op->n);
	if (rc == 0)
		rc = pg_command(p, c, "COMMIT");
	if (rc < 0)
		pg_rollback(p, c, rc);
	return rc;
}

static int pg_dirs_put_batch(struct dir_service *ds, struct directory *const *dirs,
			     const struct b3_digest *digests, size_t n)
{
	struct pg_dirs *s = (struct pg_dirs *)ds;
	struct dir_encoded *e;
	struct put_op op;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "PostgreSQL database '%s' is open read-only",
			      s->pool->location);
	rc = dir_encode_checked(dirs, digests, n, &e);
	if (rc < 0)
		return rc;
	op = (struct put_op){e, digests, n};
	rc = n ? pg_run(s->pool, put_op, &op) : 0;
	dir_encoded_free(e, n);
	return rc;
}

static void pg_dirs_free(struct dir_service *ds)
{
	struct pg_dirs *s = (struct pg_dirs *)ds;

	pg_pool_unref(s->pool);
	free(s);
}

static const struct dir_service_ops pg_dirs_ops = {
    .get = pg_dirs_get,
    .put_batch = pg_dirs_put_batch,
    .free = pg_dirs_free,
};

int pg_dirs_new(struct pg_pool *p, bool readonly, struct dir_service **out)
{
	struct pg_dirs *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &pg_dirs_ops;
	s->pool = pg_pool_ref(p);
	s->readonly = readonly;
	*out = &s->base;
	return 0;
}

/* --- staging: a closure's Directories held back until its PathInfo is
 * registered, so that both commit in one transaction --- */

int pg_dirs_stage_new(struct dir_service *real, struct dir_service **out)
{
	if (((struct pg_dirs *)real)->readonly)
		return sf_err(-EROFS, "PostgreSQL database '%s' is open read-only",
			      ((struct pg_dirs *)real)->pool->location);
	return dir_stage_new(real, false, out);
}

bool pg_dirs_is_stage(struct dir_service *ds)
{
	struct dir_stage *st = dir_stage_of(ds);

	return st && st->real->ops == &pg_dirs_ops;
}

int pg_dirs_put_staged(struct pg_pool *p, struct pg_conn *c, struct dir_service *stage)
{
	struct dir_stage *st = dir_stage_of(stage);

	return insert_all(p, c, st->e, st->digests, st->n);
}
