/* local_paths.c - PathInfos in LMDB with stable listing cursors, and
 * watchers notified across processes. */
#include "backends/local/local_internal.h"

#include "common/err.h"
#include "store/path_info_watch.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CURSOR_LEN 8
#define LIST_BATCH 64
static const char next_cursor_key[] = "next_cursor";

struct local_paths {
	struct path_info_service base;
	struct local_env *env;
	int rootfd;
	char *root;
	bool readonly;
	struct watch_list watches;
};

static void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int record_corrupt(const uint8_t digest[STORE_PATH_DIGEST_LEN], const char *why)
{
	char hash[STORE_PATH_HASH_CHARS + 1];

	store_path_hash_part(digest, hash);
	return sf_err(-EIO, "PathInfo record '%s' is corrupt: %s", hash, why);
}

/* Decodes a "pathinfo" record (cursor || PathInfo) and checks its key. */
static int path_from_record(const uint8_t digest[STORE_PATH_DIGEST_LEN], const uint8_t *rec,
			    size_t len, struct path_info **out)
{
	struct path_info *pi;
	int rc;

	if (len < CURSOR_LEN)
		return record_corrupt(digest, "too short");
	rc = path_info_decode(rec + CURSOR_LEN, len - CURSOR_LEN, &pi);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return record_corrupt(digest, sf_errmsg(rc));
	if (memcmp(pi->path.digest, digest, STORE_PATH_DIGEST_LEN) != 0) {
		path_info_free(pi);
		return record_corrupt(digest, "it holds another path");
	}
	*out = pi;
	return 0;
}

static int local_paths_get(struct path_info_service *ps,
			   const uint8_t digest[STORE_PATH_DIGEST_LEN], struct path_info **out)
{
	struct local_paths *s = (struct local_paths *)ps;
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)digest}, val;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_get(txn, s->env->paths, &key, &val);
	if (rc == 0)
		rc = path_from_record(digest, val.mv_data, val.mv_size, out);
	else
		rc = local_mdb_err(rc, "cannot read a PathInfo");
	mdb_txn_abort(txn);
	return rc;
}

/* --- put --- */

/* Allocates the next cursor and records it in "pathinfo_seq". */
static int cursor_allocate(struct local_paths *s, MDB_txn *txn, MDB_val *path_key, uint64_t *cursor)
{
	MDB_val mkey = {sizeof(next_cursor_key) - 1, (void *)next_cursor_key}, mval, skey;
	uint8_t next[CURSOR_LEN], cur[CURSOR_LEN];
	int rc = mdb_get(txn, s->env->meta, &mkey, &mval);

	if (rc && rc != MDB_NOTFOUND)
		return local_mdb_err(rc, "cannot read the next cursor");
	if (rc == 0 && mval.mv_size != CURSOR_LEN)
		return sf_err(-EIO, "store meta record '%s' is corrupt", next_cursor_key);
	*cursor = rc == 0 ? be64_get(mval.mv_data) : 1;
	be64_put(cur, *cursor);
	be64_put(next, *cursor + 1);
	mval = (MDB_val){CURSOR_LEN, next};
	skey = (MDB_val){CURSOR_LEN, cur};
	rc = mdb_put(txn, s->env->meta, &mkey, &mval, 0);
	if (rc == 0)
		rc = mdb_put(txn, s->env->seq, &skey, path_key, 0);
	return local_mdb_err(rc, "cannot allocate a PathInfo cursor");
}

static int record_write(struct local_paths *s, MDB_txn *txn, MDB_val *key, uint64_t cursor,
			const struct path_info *pi)
{
	uint8_t *bytes;
	size_t len;
	MDB_val val;
	int rc = path_info_encode(pi, &bytes, &len);

	if (rc < 0)
		return rc;
	val.mv_size = CURSOR_LEN + len;
	rc = mdb_put(txn, s->env->paths, key, &val, MDB_RESERVE);
	if (rc == 0) {
		be64_put(val.mv_data, cursor);
		memcpy((uint8_t *)val.mv_data + CURSOR_LEN, bytes, len);
	}
	free(bytes);
	return local_mdb_err(rc, "cannot store a PathInfo");
}

/* A registered path never changes (path_info_merge): it keeps its record
 * and cursor, and only gains signatures. Runs inside the write transaction,
 * so the check and the write are one atomic step. */
static int record_merge(struct local_paths *s, MDB_txn *txn, MDB_val *key, const MDB_val *old,
			const struct path_info *pi, enum path_info_put_result *res)
{
	struct path_info *have;
	int rc = path_from_record(key->mv_data, old->mv_data, old->mv_size, &have);

	if (rc < 0)
		return rc;
	rc = path_info_merge(have, pi, res);
	if (rc == 0 && *res == PATH_INFO_SIGS_ADDED)
		rc = record_write(s, txn, key, be64_get(old->mv_data), have);
	path_info_free(have);
	return rc;
}

static int put_record(struct local_paths *s, MDB_txn *txn, const struct path_info *pi,
		      enum path_info_put_result *res)
{
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)pi->path.digest}, old;
	uint64_t cursor = 0;
	int rc = mdb_get(txn, s->env->paths, &key, &old);

	if (rc == 0)
		return record_merge(s, txn, &key, &old, pi, res);
	if (rc != MDB_NOTFOUND)
		return local_mdb_err(rc, "cannot read a PathInfo");
	*res = PATH_INFO_ADDED;
	rc = cursor_allocate(s, txn, &key, &cursor);
	return rc < 0 ? rc : record_write(s, txn, &key, cursor, pi);
}

/* Registers `pi` (with the staged Directories, if any) in one transaction. */
static int paths_put(struct local_paths *s, struct dir_service *stage, const struct path_info *pi,
		     enum path_info_put_result *res)
{
	char name[STORE_PATH_MAX_BASENAME + 1];
	enum path_info_put_result r = PATH_INFO_ADDED;
	MDB_txn *txn;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store '%s' is open read-only", s->root);
	rc = path_info_validate(pi);
	if (rc == 0)
		rc = local_txn_begin(s->env, true, &txn);
	if (rc < 0)
		return rc;
	/* Staged Directories are written even for a path that exists: they
	 * are content-addressed, so this only restores lost ones. */
	rc = stage ? local_dirs_put_staged(stage, txn) : 0;
	if (rc == 0)
		rc = put_record(s, txn, pi, &r);
	if (rc == 0)
		rc = local_mdb_err(mdb_txn_commit(txn), "cannot store a PathInfo");
	else
		mdb_txn_abort(txn);
	if (rc == 0 && r == PATH_INFO_ADDED) {
		store_path_basename(&pi->path, name);
		local_notify(s->rootfd, s->root, name);
	}
	if (rc == 0 && res)
		*res = r;
	return rc;
}

static int local_paths_put(struct path_info_service *ps, const struct path_info *pi,
			   enum path_info_put_result *res)
{
	return paths_put((struct local_paths *)ps, NULL, pi, res);
}

int local_paths_put_with(struct path_info_service *ps, struct dir_service *stage,
			 const struct path_info *pi, enum path_info_put_result *res)
{
	return paths_put((struct local_paths *)ps, stage, pi, res);
}

/* --- list --- */

struct list_item {
	uint64_t cursor;
	uint8_t digest[STORE_PATH_DIGEST_LEN];
	uint8_t *rec;
	size_t len;
};

static void items_release(struct list_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].rec);
}

/* Copies the record of one "pathinfo_seq" entry into `it`. */
static int item_fill(struct local_paths *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
		     struct list_item *it)
{
	MDB_val pval;
	int rc;

	if (k->mv_size != CURSOR_LEN || v->mv_size != STORE_PATH_DIGEST_LEN)
		return sf_err(-EIO, "store listing record is corrupt");
	it->cursor = be64_get(k->mv_data);
	memcpy(it->digest, v->mv_data, STORE_PATH_DIGEST_LEN);
	rc = mdb_get(txn, s->env->paths, (MDB_val *)v, &pval);
	if (rc)
		return rc == MDB_NOTFOUND ? record_corrupt(it->digest, "listed but missing")
					  : local_mdb_err(rc, "cannot read a PathInfo");
	it->rec = malloc(pval.mv_size ? pval.mv_size : 1);
	if (!it->rec)
		return -ENOMEM;
	memcpy(it->rec, pval.mv_data, pval.mv_size);
	it->len = pval.mv_size;
	return 0;
}

/* Reads up to LIST_BATCH records with cursor > after in one short read
 * transaction, so that callbacks never run inside one. */
static int list_batch(struct local_paths *s, uint64_t after, struct list_item *items, size_t *n)
{
	uint8_t start[CURSOR_LEN];
	MDB_val k = {CURSOR_LEN, start}, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn), mrc;

	*n = 0;
	if (rc < 0)
		return rc;
	be64_put(start, after + 1);
	mrc = mdb_cursor_open(txn, s->env->seq, &cur);
	if (mrc) {
		mdb_txn_abort(txn);
		return local_mdb_err(mrc, "cannot list PathInfos");
	}
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && *n < LIST_BATCH) {
		rc = item_fill(s, txn, &k, &v, &items[*n]);
		if (rc < 0)
			break;
		if (++*n < LIST_BATCH)
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = local_mdb_err(mrc, "cannot list PathInfos");
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

/* Calls `cb` for a batch; 1 when it asked to stop. */
static int list_deliver(struct list_item *items, size_t n, path_info_list_fn cb, void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		struct path_info *pi;
		int rc = path_from_record(items[i].digest, items[i].rec, items[i].len, &pi);

		if (rc < 0)
			return rc;
		rc = cb(ctx, pi, items[i].cursor);
		path_info_free(pi);
		if (rc != 0)
			return rc < 0 ? rc : 1;
	}
	return 0;
}

static int local_paths_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb,
			    void *ctx)
{
	struct local_paths *s = (struct local_paths *)ps;
	struct list_item *items = calloc(LIST_BATCH, sizeof(*items));
	size_t n;
	int rc = 0;

	if (!items)
		return -ENOMEM;
	for (; after < UINT64_MAX;) {
		rc = list_batch(s, after, items, &n);
		if (rc == 0 && n)
			rc = list_deliver(items, n, cb, ctx);
		if (n)
			after = items[n - 1].cursor;
		items_release(items, n);
		if (rc != 0 || n < LIST_BATCH)
			break;
	}
	free(items);
	return rc < 0 ? rc : 0;
}

/* --- watch and lifetime --- */

static void watch_stop(void *w)
{
	local_watch_stop(w);
}

static int local_paths_watch(struct path_info_service *ps, path_info_watch_fn cb, void *ctx)
{
	struct local_paths *s = (struct local_paths *)ps;
	struct local_watcher *w;
	int rc = local_watch_start(s->rootfd, s->root, cb, ctx, &w);

	if (rc < 0)
		return rc;
	rc = watch_list_add(&s->watches, w);
	if (rc < 0)
		local_watch_stop(w);
	return rc;
}

static void local_paths_free(struct path_info_service *ps)
{
	struct local_paths *s = (struct local_paths *)ps;

	watch_list_release(&s->watches);
	local_env_unref(s->env);
	close(s->rootfd);
	free(s->root);
	free(s);
}

static int local_paths_last_cursor(struct path_info_service *ps, uint64_t *out)
{
	struct local_paths *s = (struct local_paths *)ps;
	MDB_val mkey = {sizeof(next_cursor_key) - 1, (void *)next_cursor_key}, mval;
	MDB_txn *txn;
	int rc = local_txn_begin(s->env, false, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_get(txn, s->env->meta, &mkey, &mval);
	if (rc == 0 && mval.mv_size == CURSOR_LEN)
		*out = be64_get(mval.mv_data) - 1;
	else if (rc == MDB_NOTFOUND)
		*out = 0;
	rc = rc == 0 && mval.mv_size != CURSOR_LEN
		 ? sf_err(-EIO, "store meta record '%s' is corrupt", next_cursor_key)
	     : rc && rc != MDB_NOTFOUND ? local_mdb_err(rc, "cannot read the next cursor")
					: 0;
	mdb_txn_abort(txn);
	return rc;
}

static const struct path_info_service_ops local_paths_ops = {
    .last_cursor = local_paths_last_cursor,
    .get = local_paths_get,
    .put = local_paths_put,
    .list = local_paths_list,
    .watch = local_paths_watch,
    .free = local_paths_free,
};

int local_paths_new(struct local_env *env, int rootfd, const char *root, bool readonly,
		    struct path_info_service **out)
{
	struct local_paths *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	s->root = strdup(root);
	if (s->rootfd < 0 || !s->root) {
		if (s->rootfd >= 0)
			close(s->rootfd);
		free(s->root);
		free(s);
		return -ENOMEM;
	}
	s->base.ops = &local_paths_ops;
	local_env_ref(env);
	s->env = env;
	s->readonly = readonly;
	watch_list_init(&s->watches, watch_stop);
	*out = &s->base;
	return 0;
}

/* --- delete (garbage collection) --- */

/* Removes one path's "pathinfo" and "pathinfo_seq" records; absent: 0. */
static int delete_one(struct local_paths *s, MDB_txn *txn, const struct store_path *p)
{
	MDB_val key = {STORE_PATH_DIGEST_LEN, (void *)p->digest}, val, skey;
	uint8_t cur[CURSOR_LEN];
	int rc = mdb_get(txn, s->env->paths, &key, &val);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return local_mdb_err(rc, "cannot read a pathinfo");
	if (val.mv_size < CURSOR_LEN)
		return record_corrupt(p->digest, "too short");
	memcpy(cur, val.mv_data, CURSOR_LEN);
	skey = (MDB_val){CURSOR_LEN, cur};
	rc = mdb_del(txn, s->env->paths, &key, NULL);
	if (rc == 0)
		rc = mdb_del(txn, s->env->seq, &skey, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	return local_mdb_err(rc, "cannot delete a pathinfo");
}

int local_paths_delete(struct path_info_service *ps, const struct store_path *v, size_t n)
{
	struct local_paths *s = (struct local_paths *)ps;
	char name[STORE_PATH_MAX_BASENAME + 1];
	MDB_txn *txn;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store '%s' is open read-only", s->root);
	rc = local_txn_begin(s->env, true, &txn);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = delete_one(s, txn, &v[i]);
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	rc = local_mdb_err(mdb_txn_commit(txn), "cannot delete pathinfos");
	/* Mounts drop their cached entry of each name and look it up again. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		store_path_basename(&v[i], name);
		local_notify(s->rootfd, s->root, name);
	}
	return rc;
}
