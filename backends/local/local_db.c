/* local_db.c - the LMDB environment of a local store: a per-process
 * registry sharing one environment per store, transactions, error codes. */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A large sparse map: the file only grows as data is written. */
#define LOCAL_MAP_SIZE ((size_t)1 << 40)
#define LOCAL_MAP_MIN  ((size_t)1 << 30)
/* MDB_NOTLS takes a reader slot per live read transaction; FUSE runs many
 * threads and several processes may read at once. */
#define LOCAL_MAX_READERS 1022

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct local_env *registry; /* protected by registry_lock */

int local_mdb_err(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case ENOMEM:
		return -ENOMEM;
	case MDB_MAP_FULL:
	case ENOSPC:
		return sf_err(-ENOSPC, "%s: %s", what, mdb_strerror(rc));
	case EACCES:
	case EROFS:
		return sf_err(-rc, "%s: %s", what, mdb_strerror(rc));
	default:
		return sf_err(-EIO, "%s: %s", what, mdb_strerror(rc));
	}
}

void local_env_format_seen(struct local_env *e, int format)
{
	int have = atomic_load(&e->format);

	while (have < format && !atomic_compare_exchange_weak(&e->format, &have, format))
		;
}

int local_txn_begin(struct local_env *e, bool write, MDB_txn **out)
{
	int rc = mdb_txn_begin(e->env, NULL, write ? 0 : MDB_RDONLY, out);

	return rc ? local_mdb_err(rc, "cannot begin a store transaction") : 0;
}

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Sums the size field (the second of six LE u64, see local_verify.c) of
 * every identity record. */
static int blob_bytes(struct local_env *e, MDB_txn *txn, struct store_usage *out,
		      struct local_map_span *span)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, e->verified, &cur);

	if (rc)
		return local_mdb_err(rc, "cannot read blob records");
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		local_map_span_add(span, &v);
		if (v.mv_size != LOCAL_IDENT_LEN)
			continue;
		out->blob_bytes += le64_at((const uint8_t *)v.mv_data + 8);
		out->objects++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : local_mdb_err(rc, "cannot read blob records");
}

int local_env_usage(struct local_env *e, struct store_usage *out)
{
	struct local_map_span span = {0, 0};
	MDB_stat dirs, paths;
	MDB_txn *txn;
	int rc = local_txn_begin(e, false, &txn);

	if (rc < 0)
		return rc;
	*out = (struct store_usage){0};
	rc = mdb_stat(txn, e->dirs, &dirs);
	if (rc == 0)
		rc = mdb_stat(txn, e->paths, &paths);
	if (rc == 0)
		out->objects = dirs.ms_entries + paths.ms_entries;
	rc = rc ? local_mdb_err(rc, "cannot count records") : 0;
	if (rc == 0 && e->has_verified)
		rc = blob_bytes(e, txn, out, &span);
	if (rc == 0)
		rc = local_inline_usage(e, txn, out, &span);
	mdb_txn_abort(txn);
	local_map_span_drop(&span);
	return rc;
}

/* Opens (or, when writable, creates) the named databases once per
 * environment; committing keeps the handles for the environment's life. */
static int env_open_dbis(struct local_env *e)
{
	unsigned flags = e->readonly ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int rc = local_txn_begin(e, !e->readonly, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_dbi_open(txn, "directories", flags, &e->dirs);
	/* "pathinfo" and "pathinfo_seq" are on-disk names of existing stores:
	 * the code says path_info, the database keeps its names. */
	if (rc == 0)
		rc = mdb_dbi_open(txn, "pathinfo", flags, &e->paths);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "pathinfo_seq", flags, &e->seq);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", flags, &e->meta);
	if (rc == 0) {
		/* Stores made before verified reads lack it; a read-only open
		 * then verifies with its in-process cache only. */
		rc = mdb_dbi_open(txn, "verified", flags, &e->verified);
		e->has_verified = rc == 0;
		if (rc == MDB_NOTFOUND && e->readonly)
			rc = 0;
	}
	if (rc == 0) {
		/* Small blobs (local_inline.c); stores made before them lack it. */
		rc = mdb_dbi_open(txn, "blobs", flags, &e->inline_blobs);
		e->has_inline = rc == 0;
		if (rc == MDB_NOTFOUND && e->readonly)
			rc = 0;
	}
	if (rc == 0) {
		/* The import index (local_index.c); stores made before it lack it. */
		rc = mdb_dbi_open(txn, "stat_index", flags, &e->stat_index);
		e->has_stat_index = rc == 0;
		if (rc == MDB_NOTFOUND && e->readonly)
			rc = 0;
	}
	if (rc == 0)
		return local_mdb_err(mdb_txn_commit(txn), "cannot open the store database");
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return sf_err(-EIO, "store database is incomplete (read-only open)");
	return local_mdb_err(rc, "cannot open the store database");
}

/* One attempt at opening the environment with a map of `size` bytes; the
 * handle is closed on failure, as LMDB requires. */
static int env_try_open(const char *dbdir, unsigned flags, size_t size, MDB_env **out)
{
	int rc = mdb_env_create(out);

	if (rc)
		return rc;
	rc = mdb_env_set_maxdbs(*out, 8);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(*out, LOCAL_MAX_READERS);
	if (rc == 0)
		rc = mdb_env_set_mapsize(*out, size);
	if (rc == 0)
		rc = mdb_env_open(*out, dbdir, flags, 0644);
	if (rc)
		mdb_env_close(*out);
	return rc;
}

static int env_create(const char *dbdir, bool readonly, struct local_env *e)
{
	unsigned flags = MDB_NOTLS | (readonly ? MDB_RDONLY : 0);
	int rc = ENOMEM, dead;

	/* A smaller map where the address space is short (ThreadSanitizer's
	 * shadow memory, `ulimit -v`: ENOMEM; valgrind refuses a mapping it
	 * cannot place with EINVAL); LMDB still maps at least the file. */
	for (size_t size = LOCAL_MAP_SIZE; (rc == ENOMEM || rc == EINVAL) && size >= LOCAL_MAP_MIN;
	     size /= 4)
		rc = env_try_open(dbdir, flags, size, &e->env);
	if (rc)
		return sf_err(rc == EACCES || rc == EROFS ? -rc : -EIO,
			      "cannot open the store database '%s': %s", dbdir, mdb_strerror(rc));
	/* Frees reader slots left behind by crashed processes. */
	mdb_reader_check(e->env, &dead);
	e->readonly = readonly;
	rc = env_open_dbis(e);
	if (rc < 0)
		mdb_env_close(e->env);
	return rc;
}

static struct local_env *registry_find(const struct stat *sb, pid_t pid)
{
	for (struct local_env *e = registry; e; e = e->next)
		if (e->dev == sb->st_dev && e->ino == sb->st_ino && e->pid == pid)
			return e;
	return NULL;
}

/* The environment's mode is fixed by whoever opens it first in the
 * process; a read-only one cannot serve a writer. */
static int env_share(struct local_env *e, bool readonly, const char *dbdir)
{
	if (e->readonly && !readonly)
		return sf_err(-EBUSY, "store database '%s' is already open read-only here", dbdir);
	e->refs++;
	return 0;
}

int local_env_open(const char *dbdir, bool readonly, struct local_env **out)
{
	struct local_env *e;
	struct stat sb;
	int rc;

	if (stat(dbdir, &sb) < 0)
		return sf_err_sys(errno, "cannot open '%s'", dbdir);
	pthread_mutex_lock(&registry_lock);
	e = registry_find(&sb, getpid());
	if (e) {
		rc = env_share(e, readonly, dbdir);
	} else {
		e = calloc(1, sizeof(*e));
		rc = e ? env_create(dbdir, readonly, e) : -ENOMEM;
		if (rc == 0) {
			e->dev = sb.st_dev, e->ino = sb.st_ino, e->pid = getpid();
			e->refs = 1;
			atomic_init(&e->format, 1);
			e->next = registry;
			registry = e;
		} else {
			free(e);
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (rc == 0)
		*out = e;
	return rc;
}

void local_env_ref(struct local_env *e)
{
	pthread_mutex_lock(&registry_lock);
	e->refs++;
	pthread_mutex_unlock(&registry_lock);
}

void local_env_unref(struct local_env *e)
{
	bool last;

	if (!e)
		return;
	pthread_mutex_lock(&registry_lock);
	last = --e->refs == 0;
	if (last) {
		for (struct local_env **p = &registry; *p; p = &(*p)->next) {
			if (*p == e) {
				*p = e->next;
				break;
			}
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (last) {
		/* An environment inherited through fork() belongs to the parent. */
		if (e->pid == getpid())
			mdb_env_close(e->env);
		free(e);
	}
}
