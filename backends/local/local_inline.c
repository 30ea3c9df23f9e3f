/* local_inline.c - small blobs as values of the LMDB database "blobs"
 * (docs/store-format.md): a commit keeps the bytes in memory, the next
 * flush writes every kept blob in one transaction, so an import of many
 * small files costs one B-tree put each and one durable commit in all,
 * instead of a file, a rename and a filesystem sync per blob.
 *
 * A value is an 8-byte little-endian write time (nanoseconds since the
 * epoch; what a collection compares, as it does a file's mtime) followed by
 * the blob's bytes. No identity record vouches for a value: every open
 * hashes it (it is at most LOCAL_INLINE_LIMIT bytes, already in the map),
 * so a damaged value is found at the first read after the damage. */
#include "backends/local/local_internal.h"

#include "castore/digest_map.h"
#include "common/err.h"
#include "common/io.h"
#include "common/log.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAMP_LEN 8
/* Kept blobs are written early once they hold this much memory: memory
 * stays bounded on imports of any size (the early commit only makes them
 * durable sooner). */
#define PENDING_BYTES_MAX ((size_t)64 << 20)
#define QUARANTINE_TRIES  100

struct kept {
	struct b3_digest d;
	bool dropped; /* taken back before the flush */
	int64_t stamp;
	size_t len;
	uint8_t data[];
};

struct local_inline {
	struct local_env *env;
	int rootfd;
	const char *root;      /* the blob service's, for messages */
	pthread_mutex_t lock;  /* protects everything below */
	struct digest_map map; /* digest -> struct kept */
	struct digest_map bad; /* read-only opens: damaged values found, (void *)1 */
	struct kept **kept;
	size_t n, cap, bytes;
};

struct inline_reader {
	struct blob_reader base; /* base.fd is -1 */
	struct local_inline *in;
	struct b3_digest d;
	uint8_t *copy; /* the blob's bytes, checked at the open */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void stamp_encode(int64_t v, uint8_t *out)
{
	for (int b = 0; b < STAMP_LEN; b++)
		out[b] = (uint8_t)((uint64_t)v >> (8 * b));
}

static int64_t stamp_decode(const uint8_t *p)
{
	uint64_t v = 0;

	for (int b = STAMP_LEN - 1; b >= 0; b--)
		v = v << 8 | p[b];
	return (int64_t)v;
}

int local_inline_new(struct local_env *env, int rootfd, const char *root, struct local_inline **out)
{
	struct local_inline *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	local_env_ref(env);
	in->env = env;
	in->rootfd = rootfd;
	in->root = root;
	pthread_mutex_init(&in->lock, NULL);
	digest_map_init(&in->map);
	digest_map_init(&in->bad);
	*out = in;
	return 0;
}

static void kept_clear(struct local_inline *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->kept[i]);
	free(in->kept);
	in->kept = NULL;
	in->n = in->cap = in->bytes = 0;
	digest_map_release(&in->map);
	digest_map_init(&in->map);
}

void local_inline_free(struct local_inline *in)
{
	if (!in)
		return;
	/* A writer that never flushed still gets its blobs stored. */
	if (local_inline_flush(in) < 0)
		sf_err_clear(); /* its caller registered nothing that needs them */
	kept_clear(in);
	digest_map_release(&in->bad);
	pthread_mutex_destroy(&in->lock);
	local_env_unref(in->env);
	free(in);
}

/* Writes every kept blob in one transaction; called with the lock held. */
static int flush_locked(struct local_inline *in)
{
	MDB_txn *txn;
	int rc, mrc = 0;

	if (in->n == 0)
		return 0;
	/* Before any inline blob is committed: docs/store-format.md "Format
	 * versions". */
	if (atomic_load(&in->env->format) < 2) {
		rc = local_marker_upgrade(in->rootfd, in->root);
		if (rc < 0)
			return rc;
		local_env_format_seen(in->env, 2);
	}
	rc = local_txn_begin(in->env, true, &txn);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < in->n && mrc == 0; i++) {
		struct kept *k = in->kept[i];
		MDB_val key = {B3_LEN, k->d.bytes}, val = {STAMP_LEN + k->len, NULL};

		if (k->dropped)
			continue;
		/* MDB_RESERVE: the bytes are copied once, into the map. */
		mrc = mdb_put(txn, in->env->inline_blobs, &key, &val, MDB_RESERVE);
		if (mrc == 0) {
			stamp_encode(k->stamp, val.mv_data);
			memcpy((uint8_t *)val.mv_data + STAMP_LEN, k->data, k->len);
		}
	}
	if (mrc == 0)
		mrc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	rc = local_mdb_err(mrc, "cannot store small blobs");
	if (rc == 0)
		kept_clear(in);
	return rc;
}

int local_inline_flush(struct local_inline *in)
{
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = flush_locked(in);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* The kept blob `d` (not dropped), or NULL; called with the lock held. */
static struct kept *kept_find(struct local_inline *in, const struct b3_digest *d)
{
	struct kept *k = digest_map_get(&in->map, d);

	return k && !k->dropped ? k : NULL;
}

/* True if this (read-only) process quarantined `d`. */
static bool known_bad(struct local_inline *in, const struct b3_digest *d)
{
	bool bad;

	pthread_mutex_lock(&in->lock);
	bad = digest_map_get(&in->bad, d) != NULL;
	pthread_mutex_unlock(&in->lock);
	return bad;
}

/* The stored value of `d` within `txn`: 0, or -ENOENT (no message). */
static int value_get(struct local_inline *in, MDB_txn *txn, const struct b3_digest *d, MDB_val *val)
{
	MDB_val key = {B3_LEN, (void *)d->bytes};
	int rc;

	if (!in->env->has_inline)
		return -ENOENT;
	rc = mdb_get(txn, in->env->inline_blobs, &key, val);
	if (rc == 0 && val->mv_size < STAMP_LEN)
		return sf_err(-EIO, "small blob record in '%s' is truncated", in->root);
	return local_mdb_err(rc, "cannot read a small blob");
}

static int value_check(struct local_inline *in, const struct b3_digest *d, bool readonly,
		       uint64_t *size, uint8_t **copy);

/* A writer's stat hashes the value: it decides whether a writer stores the
 * blob again ("have it"), so a damaged value must read as missing there,
 * and be replaced. A reader's stat only reads the size. */
int local_inline_stat(struct local_inline *in, const struct b3_digest *d, bool readonly,
		      uint64_t *size)
{
	struct kept *k;
	MDB_txn *txn;
	MDB_val val;
	int rc;

	pthread_mutex_lock(&in->lock);
	k = kept_find(in, d);
	if (k)
		*size = k->len;
	pthread_mutex_unlock(&in->lock);
	if (k)
		return 0;
	if (!readonly) {
		rc = value_check(in, d, false, size, NULL);
		if (rc == -EIO) /* quarantined: now missing, for the writer to store */
			sf_err_clear();
		return rc == -EIO ? -ENOENT : rc;
	}
	if (!in->env->has_inline || known_bad(in, d))
		return -ENOENT;
	rc = local_txn_begin(in->env, false, &txn);
	if (rc < 0)
		return rc;
	rc = value_get(in, txn, d, &val);
	if (rc == 0)
		*size = val.mv_size - STAMP_LEN;
	mdb_txn_abort(txn);
	return rc;
}

/* True if the store holds exactly `buf` as `d` (a damaged value is not
 * "have it": the caller's bytes, hashed as they came, replace it). */
static bool stored_same(struct local_inline *in, const struct b3_digest *d, const void *buf,
			size_t len)
{
	MDB_txn *txn;
	MDB_val val;
	bool same = false;

	if (!in->env->has_inline || local_txn_begin(in->env, false, &txn) < 0) {
		sf_err_clear(); /* then it is stored again, nothing worse */
		return false;
	}
	if (value_get(in, txn, d, &val) == 0)
		same = val.mv_size - STAMP_LEN == len &&
		       memcmp((uint8_t *)val.mv_data + STAMP_LEN, buf, len) == 0;
	sf_err_clear();
	mdb_txn_abort(txn);
	return same;
}

static int kept_append(struct local_inline *in, const struct b3_digest *d, const void *buf,
		       size_t len)
{
	struct kept *k = malloc(sizeof(*k) + len);
	int rc = k ? 0 : -ENOMEM;

	if (rc == 0 && in->n == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 256;
		struct kept **v = reallocarray(in->kept, cap, sizeof(*v));

		if (v)
			in->kept = v, in->cap = cap;
		rc = v ? 0 : -ENOMEM;
	}
	if (rc == 0)
		rc = digest_map_put(&in->map, d, k, NULL);
	if (rc < 0) {
		free(k);
		return rc;
	}
	*k = (struct kept){.d = *d, .stamp = now_ns(), .len = len};
	memcpy(k->data, buf, len);
	in->kept[in->n++] = k;
	in->bytes += len;
	return 0;
}

bool local_inline_holds(struct local_inline *in, const struct b3_digest *d, const void *buf,
			size_t len)
{
	bool kept;

	pthread_mutex_lock(&in->lock);
	kept = kept_find(in, d) != NULL;
	pthread_mutex_unlock(&in->lock);
	return kept || stored_same(in, d, buf, len);
}

static int inline_keep(struct local_inline *in, const struct b3_digest *d, const void *buf,
		       size_t len, bool was_stored, bool *created);

int local_inline_add(struct local_inline *in, const struct b3_digest *d, const void *buf,
		     size_t len, bool *created)
{
	if (!in->env->has_inline)
		return sf_err(-EROFS, "store '%s' cannot hold small blobs (read-only)", in->root);
	return inline_keep(in, d, buf, len, stored_same(in, d, buf, len), created);
}

int local_inline_keep(struct local_inline *in, const struct b3_digest *d, const void *buf,
		      size_t len, bool *created)
{
	if (!in->env->has_inline)
		return sf_err(-EROFS, "store '%s' cannot hold small blobs (read-only)", in->root);
	return inline_keep(in, d, buf, len, false, created);
}

static int inline_keep(struct local_inline *in, const struct b3_digest *d, const void *buf,
		       size_t len, bool was_stored, bool *created)
{
	int rc = 0;

	*created = false;
	pthread_mutex_lock(&in->lock);
	if (!was_stored && !kept_find(in, d)) {
		rc = kept_append(in, d, buf, len);
		*created = rc == 0;
	}
	if (rc == 0 && in->bytes >= PENDING_BYTES_MAX)
		rc = flush_locked(in);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* --- readers --- */

static int inline_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off,
			       size_t *n)
{
	struct inline_reader *ir = (struct inline_reader *)r;

	*n = 0;
	if (off < r->size) {
		*n = r->size - off < len ? (size_t)(r->size - off) : len;
		memcpy(buf, ir->copy + off, *n);
	}
	return 0;
}

static void inline_reader_close(struct blob_reader *r)
{
	struct inline_reader *ir = (struct inline_reader *)r;

	free(ir->copy);
	free(ir);
}

static const struct blob_reader_ops inline_reader_ops = {
    .pread = inline_reader_pread,
    .close = inline_reader_close,
};

static int reader_new(struct local_inline *in, const struct b3_digest *d, uint64_t size,
		      uint8_t *copy, struct blob_reader **out)
{
	struct inline_reader *ir = malloc(sizeof(*ir));

	if (!ir) {
		free(copy);
		return -ENOMEM;
	}
	*ir = (struct inline_reader){.base = {.ops = &inline_reader_ops, .size = size, .fd = -1},
				     .in = in,
				     .d = *d,
				     .copy = copy};
	*out = &ir->base;
	return 0;
}

/* A kept blob (this process wrote it; not flushed yet): a private copy. */
static int open_kept(struct local_inline *in, const struct b3_digest *d, struct blob_reader **out)
{
	struct kept *k;
	uint8_t *copy = NULL;
	uint64_t size = 0;

	pthread_mutex_lock(&in->lock);
	k = kept_find(in, d);
	if (k && (copy = malloc(k->len ? k->len : 1))) {
		memcpy(copy, k->data, k->len);
		size = k->len;
	}
	pthread_mutex_unlock(&in->lock);
	if (!k)
		return -ENOENT;
	return copy ? reader_new(in, d, size, copy, out) : -ENOMEM;
}

/* True if the file `name` below rootfd holds exactly `bytes`. */
static bool file_holds(int rootfd, const char *name, const void *bytes, size_t len)
{
	int fd = openat(rootfd, name, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = fd >= 0 ? malloc(len + 1) : NULL;
	size_t n = 0;
	bool same = buf && pread_full(fd, buf, len + 1, 0, &n) == 0 && n == len &&
		    memcmp(buf, bytes, len) == 0;

	free(buf);
	if (fd >= 0)
		close(fd);
	return same;
}

/* Copies the damaged bytes to quarantine/<hex>[.N] (to be looked at, as a
 * damaged file is), unless a copy there holds them already (`*had`: this
 * damage was found before, by another process). */
static int quarantine_copy(struct local_inline *in, const struct b3_digest *d, const void *bytes,
			   size_t len, char *dst, size_t dstlen, bool *had)
{
	char hex[B3_HEX_LEN + 1];
	int fd = -1, rc;

	b3_digest_to_hex(d, hex);
	*had = false;
	if (mkdirat(in->rootfd, LOCAL_QUARANTINE_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (int i = 0; fd < 0 && i < QUARANTINE_TRIES; i++) {
		snprintf(dst, dstlen,
			 i ? LOCAL_QUARANTINE_DIR "/%s.%d" : LOCAL_QUARANTINE_DIR "/%s", hex, i);
		fd = openat(in->rootfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd < 0 && errno != EEXIST)
			return -errno;
		if (fd < 0 && file_holds(in->rootfd, dst, bytes, len)) {
			*had = true;
			return 0;
		}
	}
	if (fd < 0)
		return -EEXIST;
	rc = write_all(fd, bytes, len);
	close(fd);
	return rc;
}

/* Deletes the value of `d` if it still holds `bytes` (a writer may have
 * repaired it meanwhile). */
static int value_delete_if(struct local_inline *in, const struct b3_digest *d, const void *bytes,
			   size_t len)
{
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	MDB_txn *txn;
	int rc = local_txn_begin(in->env, true, &txn), mrc;

	if (rc < 0)
		return rc;
	mrc = mdb_get(txn, in->env->inline_blobs, &key, &val);
	if (mrc == 0 && val.mv_size == STAMP_LEN + len &&
	    memcmp((uint8_t *)val.mv_data + STAMP_LEN, bytes, len) == 0)
		mrc = mdb_del(txn, in->env->inline_blobs, &key, NULL);
	if (mrc == 0 || mrc == MDB_NOTFOUND)
		return local_mdb_err(mdb_txn_commit(txn), "cannot quarantine a small blob");
	mdb_txn_abort(txn);
	return local_mdb_err(mrc, "cannot quarantine a small blob");
}

/* A value that does not hash to its digest (`bytes`, a copy): copied to
 * quarantine/ and deleted; a read-only open cannot delete, so it remembers
 * the digest as missing for this process instead. -EIO with one logged
 * line when this call found the damage, -ENOENT (no message) when it had
 * been found and quarantined before: then the blob is missing, as a
 * quarantined file is. */
static int value_bad(struct local_inline *in, const struct b3_digest *d, const uint8_t *bytes,
		     size_t len, bool readonly)
{
	char text[B3_TEXT_LEN + 1], dst[sizeof(LOCAL_QUARANTINE_DIR) + 80];
	bool had = false;
	int rc = quarantine_copy(in, d, bytes, len, dst, sizeof(dst), &had);

	if (rc == 0 && !readonly)
		rc = value_delete_if(in, d, bytes, len);
	if (rc == 0 && readonly) {
		pthread_mutex_lock(&in->lock);
		rc = digest_map_put(&in->bad, d, (void *)1, NULL);
		pthread_mutex_unlock(&in->lock);
	}
	b3_digest_to_text(d, text);
	if (rc < 0) {
		sf_err_clear();
		log_error("blob '%s' (inline in '%s/%s') failed verification; cannot quarantine "
			  "it: %s",
			  text, in->root, LOCAL_DB_DIR, strerror(-rc));
		return sf_err(-EIO, "blob '%s' (inline in '%s/%s') failed verification", text,
			      in->root, LOCAL_DB_DIR);
	}
	if (had)
		return -ENOENT;
	log_error("blob '%s' (inline in '%s/%s') failed verification: its content does not "
		  "match the digest; moved to %s/%s",
		  text, in->root, LOCAL_DB_DIR, in->root, dst);
	return sf_err(-EIO, "blob '%s' failed verification and was quarantined to '%s/%s'", text,
		      in->root, dst);
}

/* Copies the stored value of `d` out and hashes it: 0, its size and (if
 * `copy` is not NULL) the bytes, which the caller frees; -ENOENT (no
 * message) if there is none, -EIO (quarantined) if it does not match. */
static int value_check(struct local_inline *in, const struct b3_digest *d, bool readonly,
		       uint64_t *size, uint8_t **copy)
{
	struct b3_digest got;
	uint8_t *bytes = NULL;
	size_t len = 0;
	MDB_txn *txn;
	MDB_val val;
	int rc;

	if (!in->env->has_inline || known_bad(in, d))
		return -ENOENT;
	rc = local_txn_begin(in->env, false, &txn);
	if (rc < 0)
		return rc;
	rc = value_get(in, txn, d, &val);
	if (rc == 0) {
		len = val.mv_size - STAMP_LEN;
		bytes = malloc(len ? len : 1);
		rc = bytes ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		memcpy(bytes, (const uint8_t *)val.mv_data + STAMP_LEN, len);
		local_map_drop(&val);
	}
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	b3_digest_of(bytes, len, &got);
	if (!b3_digest_eq(&got, d))
		rc = value_bad(in, d, bytes, len, readonly || in->env->readonly);
	if (rc == 0 && copy)
		*copy = bytes, bytes = NULL;
	*size = len;
	free(bytes);
	return rc;
}

/* The reader holds a copy of the bytes: a blob deleted while open keeps
 * serving, as an open blob file does (docs/gc.md). */
int local_inline_open(struct local_inline *in, const struct b3_digest *d, bool readonly,
		      struct blob_reader **out)
{
	uint8_t *copy = NULL;
	uint64_t size;
	int rc = open_kept(in, d, out);

	if (rc != -ENOENT)
		return rc;
	rc = value_check(in, d, readonly, &size, &copy);
	return rc < 0 ? rc : reader_new(in, d, size, copy, out);
}

int local_inline_check(struct local_inline *in, const struct b3_digest *d, bool readonly,
		       uint64_t *size)
{
	return value_check(in, d, readonly, size, NULL);
}

/* --- collection and listing --- */

/* Takes back a kept blob; 1 if there was one. */
static int drop_kept(struct local_inline *in, const struct b3_digest *d, int64_t before,
		     uint64_t *freed)
{
	struct kept *k;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	k = kept_find(in, d);
	if (k && k->stamp < before) {
		k->dropped = true;
		*freed = k->len;
		rc = 1;
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int local_inline_delete(struct local_inline *in, const struct b3_digest *d,
			const struct timespec *before, uint64_t *freed)
{
	int64_t limit = before->tv_sec >= INT64_MAX / 1000000000
			    ? INT64_MAX
			    : (int64_t)before->tv_sec * 1000000000 + before->tv_nsec;
	MDB_val key = {B3_LEN, (void *)d->bytes}, val;
	MDB_txn *txn;
	int rc = drop_kept(in, d, limit, freed), mrc;

	if (rc != 0 || !in->env->has_inline)
		return rc;
	rc = local_txn_begin(in->env, true, &txn);
	if (rc < 0)
		return rc;
	mrc = mdb_get(txn, in->env->inline_blobs, &key, &val);
	/* Written after the collection began: a writer's, kept (docs/gc.md). */
	if (mrc == 0 && val.mv_size >= STAMP_LEN && stamp_decode(val.mv_data) >= limit)
		mrc = MDB_NOTFOUND;
	if (mrc == 0) {
		*freed = val.mv_size - STAMP_LEN;
		mrc = mdb_del(txn, in->env->inline_blobs, &key, NULL);
		rc = 1;
	}
	if (mrc == 0) {
		mrc = mdb_txn_commit(txn);
		return mrc ? local_mdb_err(mrc, "cannot delete a small blob") : rc;
	}
	mdb_txn_abort(txn);
	return mrc == MDB_NOTFOUND ? 0 : local_mdb_err(mrc, "cannot delete a small blob");
}

/* The digests of every stored value, read in one transaction (so the
 * callbacks may write). */
static int list_digests(struct local_inline *in, struct b3_digest **out, size_t *n)
{
	struct b3_digest *v = NULL;
	size_t cap = 0;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, val;
	int rc = local_txn_begin(in->env, false, &txn), mrc;

	*n = 0;
	if (rc < 0)
		return rc;
	mrc = mdb_cursor_open(txn, in->env->inline_blobs, &cur);
	while (mrc == 0 && (mrc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) == 0) {
		if (k.mv_size != B3_LEN)
			continue;
		if (*n == cap) {
			struct b3_digest *nv = reallocarray(v, cap ? 2 * cap : 1024, sizeof(*v));

			if (!nv) {
				mrc = ENOMEM;
				break;
			}
			v = nv, cap = cap ? 2 * cap : 1024;
		}
		memcpy(v[(*n)++].bytes, k.mv_data, B3_LEN);
	}
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	rc = mrc == MDB_NOTFOUND ? 0 : local_mdb_err(mrc, "cannot list small blobs");
	if (rc < 0)
		free(v);
	else
		*out = v;
	return rc;
}

int local_inline_each(struct local_inline *in, store_digest_fn cb, void *ctx)
{
	struct b3_digest *v = NULL;
	size_t n = 0;
	int rc = in->env->has_inline ? list_digests(in, &v, &n) : 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = cb(ctx, &v[i]);
	free(v);
	return rc;
}

int local_inline_usage(struct local_env *e, MDB_txn *txn, struct store_usage *out,
		       struct local_map_span *span)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (!e->has_inline)
		return 0;
	rc = mdb_cursor_open(txn, e->inline_blobs, &cur);
	if (rc)
		return local_mdb_err(rc, "cannot read small blobs");
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		local_map_span_add(span, &k);
		if (v.mv_size < STAMP_LEN)
			continue;
		out->blob_bytes += v.mv_size - STAMP_LEN;
		out->objects++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : local_mdb_err(rc, "cannot read small blobs");
}
