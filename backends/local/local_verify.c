/* local_verify.c - verified reads: which blob file identities are known to
 * hold the right bytes, hashing files in full, and the quarantine. */
#include "backends/local/local_internal.h"

#include "common/err.h"
#include "common/io.h"
#include "common/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_CHUNK (1u << 20)
/* Direct-mapped cache: 16384 x 80 bytes, 1.3 MiB per open store. */
#define CACHE_SLOTS (1u << 14)
/* Deferred records kept at most until a flush (80 bytes each); more are
 * dropped. */
#define PENDING_MAX	 65536
#define QUARANTINE_TRIES 100

struct cache_slot {
	struct b3_digest d;
	struct local_ident id;
	bool used;
};

struct pending {
	struct b3_digest d;
	struct local_ident id;
};

struct local_verifier {
	struct local_env *env;
	bool writable; /* may write the "verified" database */
	pthread_mutex_t lock;
	struct cache_slot *cache; /* protected by lock */
	struct pending *pending;  /* protected by lock */
	size_t n_pending, cap_pending;
};

void local_ident_of(const struct stat *sb, struct local_ident *out)
{
	*out = (struct local_ident){
	    .ino = (uint64_t)sb->st_ino,
	    .size = (uint64_t)sb->st_size,
	    .mtime_s = sb->st_mtim.tv_sec,
	    .mtime_ns = sb->st_mtim.tv_nsec,
	    .ctime_s = sb->st_ctim.tv_sec,
	    .ctime_ns = sb->st_ctim.tv_nsec,
	};
}

static void ident_encode(const struct local_ident *id, uint8_t out[LOCAL_IDENT_LEN])
{
	uint64_t v[6] = {id->ino,
			 id->size,
			 (uint64_t)id->mtime_s,
			 (uint64_t)id->mtime_ns,
			 (uint64_t)id->ctime_s,
			 (uint64_t)id->ctime_ns};

	for (int i = 0; i < 6; i++)
		for (int b = 0; b < 8; b++)
			out[i * 8 + b] = (uint8_t)(v[i] >> (8 * b));
}

static bool ident_eq(const struct local_ident *a, const struct local_ident *b)
{
	return a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
	       a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

static struct cache_slot *cache_slot(struct local_verifier *v, const struct b3_digest *digest)
{
	unsigned i = (unsigned)digest->bytes[0] | (unsigned)digest->bytes[1] << 8;

	return &v->cache[i & (CACHE_SLOTS - 1)];
}

int local_verifier_new(struct local_env *env, bool readonly, struct local_verifier **out)
{
	struct local_verifier *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->cache = calloc(CACHE_SLOTS, sizeof(*v->cache));
	if (!v->cache) {
		free(v);
		return -ENOMEM;
	}
	local_env_ref(env);
	v->env = env;
	v->writable = !readonly && !env->readonly && env->has_verified;
	pthread_mutex_init(&v->lock, NULL);
	*out = v;
	return 0;
}

void local_verifier_free(struct local_verifier *v)
{
	if (!v)
		return;
	/* Pending records are dropped: a record is written only by a flush,
	 * after the bytes it vouches for are durable (local_flush()). */
	pthread_mutex_destroy(&v->lock);
	local_env_unref(v->env);
	free(v->pending);
	free(v->cache);
	free(v);
}

/* The LMDB record of `d` equals `id`. */
static bool db_known(struct local_verifier *v, const struct b3_digest *digest,
		     const struct local_ident *id)
{
	MDB_val key = {B3_LEN, (void *)digest->bytes}, val;
	uint8_t want[LOCAL_IDENT_LEN];
	MDB_txn *txn;
	bool same = false;

	/* No record to trust: the caller hashes the file instead. */
	if (!v->env->has_verified || local_txn_begin(v->env, false, &txn) < 0) {
		sf_err_clear();
		return false;
	}
	if (mdb_get(txn, v->env->verified, &key, &val) == 0 && val.mv_size == LOCAL_IDENT_LEN) {
		ident_encode(id, want);
		same = memcmp(val.mv_data, want, LOCAL_IDENT_LEN) == 0;
	}
	mdb_txn_abort(txn);
	return same;
}

static void cache_put(struct local_verifier *v, const struct b3_digest *digest,
		      const struct local_ident *id)
{
	struct cache_slot *s;

	pthread_mutex_lock(&v->lock);
	s = cache_slot(v, digest);
	*s = (struct cache_slot){.d = *digest, .id = *id, .used = true};
	pthread_mutex_unlock(&v->lock);
}

bool local_verifier_known(struct local_verifier *v, const struct b3_digest *digest,
			  const struct local_ident *id)
{
	struct cache_slot *s;
	bool hit;

	pthread_mutex_lock(&v->lock);
	s = cache_slot(v, digest);
	hit = s->used && b3_digest_eq(&s->d, digest) && ident_eq(&s->id, id);
	pthread_mutex_unlock(&v->lock);
	if (hit)
		return true;
	if (!db_known(v, digest, id))
		return false;
	cache_put(v, digest, id);
	return true;
}

/* Writes `n` records in one transaction. */
static int db_write(struct local_verifier *v, const struct pending *p, size_t n)
{
	uint8_t enc[LOCAL_IDENT_LEN];
	MDB_txn *txn;
	int rc = local_txn_begin(v->env, true, &txn), mrc = 0;

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && mrc == 0; i++) {
		MDB_val key = {B3_LEN, (void *)p[i].d.bytes}, val = {LOCAL_IDENT_LEN, enc};

		ident_encode(&p[i].id, enc);
		mrc = mdb_put(txn, v->env->verified, &key, &val, 0);
	}
	if (mrc) {
		mdb_txn_abort(txn);
		return local_mdb_err(mrc, "cannot record verified blobs");
	}
	return local_mdb_err(mdb_txn_commit(txn), "cannot record verified blobs");
}

/* Appends to the deferred records unless PENDING_MAX are held already or
 * memory is short: then the record is dropped. */
static void pending_add(struct local_verifier *v, const struct b3_digest *digest,
			const struct local_ident *id)
{
	pthread_mutex_lock(&v->lock);
	if (v->n_pending == v->cap_pending && v->cap_pending < PENDING_MAX) {
		size_t cap = v->cap_pending ? 2 * v->cap_pending : 64;
		struct pending *p = reallocarray(v->pending, cap, sizeof(*p));

		if (p)
			v->pending = p, v->cap_pending = cap;
	}
	if (v->n_pending < v->cap_pending)
		v->pending[v->n_pending++] = (struct pending){.d = *digest, .id = *id};
	pthread_mutex_unlock(&v->lock);
}

void local_verifier_remember(struct local_verifier *v, const struct b3_digest *digest,
			     const struct local_ident *id, bool defer)
{
	struct pending one = {.d = *digest, .id = *id};

	cache_put(v, digest, id);
	if (!v->writable)
		return;
	/* Past PENDING_MAX a deferred record is dropped, not written early:
	 * it may vouch for bytes not durable yet (the caller's flush syncs
	 * them first). A record not written costs a hash later, nothing else. */
	if (defer) {
		pending_add(v, digest, id);
		return;
	}
	if (db_write(v, &one, 1) < 0) /* as above */
		sf_err_clear();
}

int local_verifier_sync(struct local_verifier *v, int (*sync)(void *ctx), void *ctx)
{
	struct pending *p;
	size_t n;
	int rc;

	pthread_mutex_lock(&v->lock);
	p = v->pending, n = v->n_pending;
	v->pending = NULL, v->n_pending = v->cap_pending = 0;
	pthread_mutex_unlock(&v->lock);
	rc = sync(ctx);
	/* A record that cannot be written only costs a hash at a later open. */
	if (rc == 0 && n && db_write(v, p, n) < 0)
		sf_err_clear();
	free(p);
	return rc;
}

int local_hash_fd(int fd, uint64_t size, const char *what, struct b3_digest *out)
{
	uint8_t *buf = malloc(HASH_CHUNK);
	struct b3_hasher h;
	uint64_t off = 0;
	size_t n = HASH_CHUNK;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint only */
	b3_hasher_init(&h);
	while (rc == 0 && n == HASH_CHUNK) {
		rc = pread_full(fd, buf, HASH_CHUNK, off, &n);
		b3_hasher_update(&h, buf, rc == 0 ? n : 0);
		off += rc == 0 ? n : 0;
	}
	free(buf);
	if (rc < 0)
		return sf_err_sys(-rc, "cannot read blob '%s'", what);
	if (off != size)
		return sf_err(-EIO, "blob '%s' changed size while being verified", what);
	b3_hasher_final(&h, out);
	return 0;
}

/* Renames `rel` into quarantine/ under a name not taken yet. */
static int quarantine_move(int rootfd, const char *rel, const char *hex, char *dst, size_t len)
{
	if (mkdirat(rootfd, LOCAL_QUARANTINE_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (int i = 0; i < QUARANTINE_TRIES; i++) {
		if (i == 0)
			snprintf(dst, len, LOCAL_QUARANTINE_DIR "/%s", hex);
		else
			snprintf(dst, len, LOCAL_QUARANTINE_DIR "/%s.%d", hex, i);
		if (renameat2(rootfd, rel, rootfd, dst, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int local_quarantine(int rootfd, const char *root, const struct b3_digest *digest, const char *rel,
		     const struct stat *sb)
{
	char hex[B3_HEX_LEN + 1], text[B3_TEXT_LEN + 1], dst[sizeof(LOCAL_QUARANTINE_DIR) + 80];
	struct stat now;
	int rc;

	b3_digest_to_hex(digest, hex);
	b3_digest_to_text(digest, text);
	/* Only move the file we hashed, not one a writer has just put there. */
	if (fstatat(rootfd, rel, &now, 0) < 0 || now.st_ino != sb->st_ino ||
	    now.st_dev != sb->st_dev)
		return sf_err(-EIO, "blob '%s' (%s/%s) failed verification", text, root, rel);
	rc = quarantine_move(rootfd, rel, hex, dst, sizeof(dst));
	if (rc == -ENOENT) /* another thread moved it first and logged */
		return sf_err(-EIO, "blob '%s' (%s/%s) failed verification", text, root, rel);
	if (rc < 0) {
		log_error("blob '%s' (%s/%s) failed verification; cannot quarantine it: %s", text,
			  root, rel, strerror(-rc));
		return sf_err(-EIO, "blob '%s' (%s/%s) failed verification", text, root, rel);
	}
	log_error("blob '%s' (%s/%s) failed verification: its content does not match the "
		  "digest; moved to %s/%s",
		  text, root, rel, root, dst);
	return sf_err(-EIO, "blob '%s' failed verification and was quarantined to '%s/%s'", text,
		      root, dst);
}
