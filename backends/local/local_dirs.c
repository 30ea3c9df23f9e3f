/* local_dirs.c - Directories in the store's LMDB "directories" database,
 * verified against their digest on every get. */
#include "backends/local/local_internal.h"

#include "castore/dir_stage.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct local_dirs {
	struct dir_service base;
	struct local_env *env;
	bool readonly;
};

/* The record must hash to its key and decode as a valid Directory. */
static int dir_from_record(const struct b3_digest *digest, const MDB_val *v, struct directory **out)
{
	char text[B3_TEXT_LEN + 1];
	struct b3_digest got;
	int rc;

	b3_digest_of(v->mv_data, v->mv_size, &got);
	b3_digest_to_text(digest, text);
	if (!b3_digest_eq(&got, digest))
		return sf_err(-EIO, "directory record '%s' is corrupt: digest mismatch", text);
	rc = directory_decode(v->mv_data, v->mv_size, out);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return sf_err(-EIO, "directory record '%s' is corrupt: %s", text, sf_errmsg(rc));
	return 0;
}

static int local_dirs_get(struct dir_service *ds, const struct b3_digest *digest,
			  struct directory **out)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	MDB_val key = {B3_LEN, (void *)digest->bytes}, val;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_get(txn, s->env->dirs, &key, &val);
	if (rc == 0) {
		rc = dir_from_record(digest, &val, out);
		local_map_drop(&val);
	} else {
		rc = local_mdb_err(rc, "cannot read a directory");
	}
	mdb_txn_abort(txn);
	return rc;
}

/* created (may be NULL): which records this put added. */
static int put_all(struct local_dirs *s, MDB_txn *txn, const struct dir_encoded *e,
		   const struct b3_digest *digests, size_t n, bool *created)
{
	for (size_t i = 0; i < n; i++) {
		MDB_val key = {B3_LEN, (void *)digests[i].bytes};
		MDB_val val = {e[i].len, e[i].bytes};
		int rc = mdb_put(txn, s->env->dirs, &key, &val, MDB_NOOVERWRITE);

		if (created)
			created[i] = rc == 0;
		/* A damaged record is replaced (repair); an intact one kept. */
		if (rc == MDB_KEYEXIST &&
		    (val.mv_size != e[i].len ||
		     (e[i].len && memcmp(val.mv_data, e[i].bytes, e[i].len)))) {
			val = (MDB_val){e[i].len, e[i].bytes};
			rc = mdb_put(txn, s->env->dirs, &key, &val, 0);
		}
		if (rc && rc != MDB_KEYEXIST)
			return local_mdb_err(rc, "cannot store a directory");
	}
	return 0;
}

static int local_dirs_put_batch_created(struct dir_service *ds, struct directory *const *dirs,
					const struct b3_digest *digests, size_t n, bool *created)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	struct dir_encoded *e;
	MDB_txn *txn;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store is open read-only");
	rc = dir_encode_checked(dirs, digests, n, &e);
	if (rc < 0)
		return rc;
	rc = local_txn_begin(s->env, true, &txn);
	if (rc == 0) {
		rc = put_all(s, txn, e, digests, n, created);
		if (rc == 0)
			rc = local_mdb_err(mdb_txn_commit(txn), "cannot store directories");
		else
			mdb_txn_abort(txn);
	}
	dir_encoded_free(e, n);
	return rc;
}

static int local_dirs_put_batch(struct dir_service *ds, struct directory *const *dirs,
				const struct b3_digest *digests, size_t n)
{
	return local_dirs_put_batch_created(ds, dirs, digests, n, NULL);
}

static void local_dirs_free(struct dir_service *ds)
{
	struct local_dirs *s = (struct local_dirs *)ds;

	local_env_unref(s->env);
	free(s);
}

static const struct dir_service_ops local_dirs_ops = {
    .get = local_dirs_get,
    .put_batch = local_dirs_put_batch,
    .free = local_dirs_free,
    .put_batch_created = local_dirs_put_batch_created,
    .partial_batches = true,
};

int local_dirs_new(struct local_env *env, bool readonly, struct dir_service **out)
{
	struct local_dirs *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &local_dirs_ops;
	local_env_ref(env);
	s->env = env;
	s->readonly = readonly;
	*out = &s->base;
	return 0;
}

int local_dirs_each(struct dir_service *ds, store_digest_fn cb, void *ctx)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	struct b3_digest *v = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur = NULL;
	bool cur_open;
	MDB_val k, val;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn), mrc;

	if (rc < 0)
		return rc;
	/* Collects the keys first: callbacks must not run inside a txn. */
	mrc = mdb_cursor_open(txn, s->env->dirs, &cur);
	cur_open = mrc == 0;
	for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		if (k.mv_size != B3_LEN)
			continue;
		if (n == cap) {
			struct b3_digest *nv = reallocarray(v, cap ? 2 * cap : 256, sizeof(*v));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv, cap = cap ? 2 * cap : 256;
		}
		memcpy(v[n++].bytes, k.mv_data, B3_LEN);
	}
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = local_mdb_err(mrc, "cannot list directories");
	if (cur_open)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = cb(ctx, &v[i]);
	free(v);
	return rc;
}

/* --- staging: a closure's Directories held back until its PathInfo is
 * registered, so that both land in one LMDB transaction --- */

int local_dirs_stage_new(struct dir_service *real, struct dir_service **out)
{
	if (((struct local_dirs *)real)->readonly)
		return sf_err(-EROFS, "store is open read-only");
	/* The stage is written whole in the registration's transaction, so
	 * any part of a closure may be staged. */
	return dir_stage_new(real, true, out);
}

bool local_dirs_is_stage(struct dir_service *ds)
{
	struct dir_stage *st = dir_stage_of(ds);

	return st && st->real->ops == &local_dirs_ops;
}

int local_dirs_put_staged(struct dir_service *stage, MDB_txn *txn)
{
	struct dir_stage *st = dir_stage_of(stage);

	return put_all((struct local_dirs *)st->real, txn, st->e, st->digests, st->n, NULL);
}

int local_dirs_delete(struct dir_service *ds, const struct b3_digest *v, size_t n)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	MDB_txn *txn;
	int rc, mrc = 0;

	if (s->readonly)
		return sf_err(-EROFS, "store is open read-only");
	rc = local_txn_begin(s->env, true, &txn);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && (mrc == 0 || mrc == MDB_NOTFOUND); i++) {
		MDB_val key = {B3_LEN, (void *)v[i].bytes};

		mrc = mdb_del(txn, s->env->dirs, &key, NULL);
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return local_mdb_err(mrc, "cannot delete directories");
	}
	return local_mdb_err(mdb_txn_commit(txn), "cannot delete directories");
}
