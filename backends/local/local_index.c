/* local_index.c - the import index (store/stat_index.c) as the LMDB
 * database "stat_index": the store keeps the records, the importer alone
 * knows what they mean. */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <string.h>

static struct local_env *env_of(struct store *st)
{
	return ((struct local_store *)st)->env;
}

static int index_get(struct store *st, const void *key, size_t klen, void *val, size_t cap,
		     size_t *len)
{
	struct local_env *e = env_of(st);
	MDB_val k = {klen, (void *)key}, v;
	MDB_txn *txn;
	int rc;

	if (!e->has_stat_index)
		return -ENOENT;
	rc = local_txn_begin(e, false, &txn);
	if (rc < 0)
		return rc;
	rc = local_mdb_err(mdb_get(txn, e->stat_index, &k, &v), "cannot read the import index");
	if (rc == 0) {
		memcpy(val, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}

static int index_put(struct store *st, const struct store_kv *kv, size_t n)
{
	struct local_env *e = env_of(st);
	MDB_txn *txn;
	int rc, mrc = 0;

	if (!e->has_stat_index)
		return sf_err(-EROFS, "the store's import index is read-only");
	rc = local_txn_begin(e, true, &txn);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && mrc == 0; i++) {
		MDB_val k = {kv[i].klen, (void *)kv[i].key}, v = {kv[i].vlen, (void *)kv[i].val};

		mrc = mdb_put(txn, e->stat_index, &k, &v, 0);
	}
	if (mrc == 0)
		mrc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return local_mdb_err(mrc, "cannot write the import index");
}

void local_index_set_ops(struct store *st)
{
	st->index_get = index_get;
	st->index_put = index_put;
}
