/* local_dirs.c - Directories in the store's LMDB "directories" database,
 * verified against their digest on every get. */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <stdlib.h>

struct local_dirs {
	struct dir_service base;
	struct local_env *env;
	bool readonly;
};

/* The record must hash to its key and decode as a valid Directory. */
static int dir_from_record(const struct b3_digest *d, const MDB_val *v, struct directory **out)
{
	char text[B3_TEXT_LEN + 1];
	struct b3_digest got;
	int rc;

	b3_digest_of(v->mv_data, v->mv_size, &got);
	b3_digest_to_text(d, text);
	if (!b3_digest_eq(&got, d))
		return sf_err(-EIO, "directory record '%s' is corrupt: digest mismatch", text);
	rc = directory_decode(v->mv_data, v->mv_size, out);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return sf_err(-EIO, "directory record '%s' is corrupt: %s", text, sf_errmsg(rc));
	return 0;
}

static int local_dirs_get(struct dir_service *ds, const struct b3_digest *d, struct directory **out)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_get(txn, s->env->dirs, &key, &val);
	if (rc == 0)
		rc = dir_from_record(d, &val, out);
	else
		rc = local_mdb_err(rc, "cannot read a directory");
	mdb_txn_abort(txn);
	return rc;
}

struct encoded {
	uint8_t *bytes;
	size_t len;
};

static void encoded_free(struct encoded *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].bytes);
	free(e);
}

/* Encodes every Directory and checks it against its digest. */
static int encode_all(struct directory *const *dirs, const struct b3_digest *digests, size_t n,
		      struct encoded **out)
{
	struct encoded *e = calloc(n ? n : 1, sizeof(*e));
	struct b3_digest got;
	int rc = e ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = directory_encode(dirs[i], &e[i].bytes, &e[i].len);
		if (rc < 0)
			break;
		b3_digest_of(e[i].bytes, e[i].len, &got);
		if (!b3_digest_eq(&got, &digests[i]))
			rc = sf_err(-EINVAL, "directory does not match its digest");
	}
	if (rc < 0 && e)
		encoded_free(e, n);
	else
		*out = e;
	return rc;
}

static int put_all(struct local_dirs *s, MDB_txn *txn, const struct encoded *e,
		   const struct b3_digest *digests, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		MDB_val key = {B3_LEN, (void *)digests[i].bytes};
		MDB_val val = {e[i].len, e[i].bytes};
		int rc = mdb_put(txn, s->env->dirs, &key, &val, MDB_NOOVERWRITE);

		if (rc && rc != MDB_KEYEXIST)
			return local_mdb_err(rc, "cannot store a directory");
	}
	return 0;
}

static int local_dirs_put_batch(struct dir_service *ds, struct directory *const *dirs,
				const struct b3_digest *digests, size_t n)
{
	struct local_dirs *s = (struct local_dirs *)ds;
	struct encoded *e;
	MDB_txn *txn;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store is open read-only");
	rc = encode_all(dirs, digests, n, &e);
	if (rc < 0)
		return rc;
	rc = local_txn_begin(s->env, true, &txn);
	if (rc == 0) {
		rc = put_all(s, txn, e, digests, n);
		if (rc == 0)
			rc = local_mdb_err(mdb_txn_commit(txn), "cannot store directories");
		else
			mdb_txn_abort(txn);
	}
	encoded_free(e, n);
	return rc;
}

static void local_dirs_free(struct dir_service *ds)
{
	struct local_dirs *s = (struct local_dirs *)ds;

	local_env_put(s->env);
	free(s);
}

static const struct dir_service_ops local_dirs_ops = {
    .get = local_dirs_get,
    .put_batch = local_dirs_put_batch,
    .free = local_dirs_free,
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
