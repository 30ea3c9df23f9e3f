/* stat_index.c - the records of `storefs import --trust-stat`.
 *
 * A file record: key 'f' || device || inode (8 bytes LE each), value
 * size || mtime || ctime (nanoseconds, 8 bytes LE each) || executable
 * (1 byte) || time of the record (ns) || BLAKE3 digest (32 bytes).
 * A root record: key 'r' || root Directory digest, value NAR SHA-256 ||
 * NAR size (8 bytes LE). */
#include "store/stat_index.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FKEY_LEN     17
#define FVAL_LEN     (8 + 8 + 8 + 1 + 8 + B3_LEN)
#define STAT_REC_LEN (FKEY_LEN + FVAL_LEN)
#define RKEY_LEN     (1 + B3_LEN)
#define RVAL_LEN     (32 + 8)

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t stat_index_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_ns(&ts);
}

static void file_key(const struct stat *sb, uint8_t *k)
{
	k[0] = 'f';
	put64(k + 1, (uint64_t)sb->st_dev);
	put64(k + 9, (uint64_t)sb->st_ino);
}

/* The value part that must match the file's lstat exactly. */
static void file_ident(const struct stat *sb, uint8_t *v)
{
	put64(v, (uint64_t)sb->st_size);
	put64(v + 8, (uint64_t)ts_ns(&sb->st_mtim));
	put64(v + 16, (uint64_t)ts_ns(&sb->st_ctim));
	v[24] = (sb->st_mode & S_IXUSR) != 0;
}

int stat_index_lookup(struct store *st, const struct stat *sb, struct b3_digest *d,
		      enum stat_miss *why)
{
	uint8_t k[FKEY_LEN], v[FVAL_LEN], want[25];
	size_t len;
	int64_t t;
	int rc;

	file_key(sb, k);
	rc = store_index_get(st, k, sizeof(k), v, sizeof(v), &len);
	if (rc == 0 && len != FVAL_LEN)
		rc = -ENOENT; /* not one of ours: as if absent */
	if (rc < 0) {
		sf_err_clear(); /* a cache: an unreadable record is a miss */
		*why = STAT_MISS_NO_RECORD;
		return -ENOENT;
	}
	file_ident(sb, want);
	if (memcmp(v, want, sizeof(want))) {
		*why = STAT_MISS_CHANGED;
		return -ENOENT;
	}
	t = (int64_t)get64(v + 25);
	if (ts_ns(&sb->st_mtim) > t - STAT_INDEX_RACY_NS ||
	    ts_ns(&sb->st_ctim) > t - STAT_INDEX_RACY_NS) {
		*why = STAT_MISS_RACY;
		return -ENOENT;
	}
	memcpy(d->bytes, v + 33, B3_LEN);
	*why = STAT_MISS_NONE;
	return 0;
}

int stat_log_add(struct stat_log *log, const struct stat *sb, int64_t t_ns,
		 const struct b3_digest *d)
{
	uint8_t *r;

	if (log->n == log->cap) {
		size_t cap = log->cap ? 2 * log->cap : 1024;
		uint8_t *v = reallocarray(log->v, cap, STAT_REC_LEN);

		if (!v)
			return -ENOMEM;
		log->v = v, log->cap = cap;
	}
	r = log->v + log->n++ * STAT_REC_LEN;
	file_key(sb, r);
	file_ident(sb, r + FKEY_LEN);
	put64(r + FKEY_LEN + 25, (uint64_t)t_ns);
	memcpy(r + FKEY_LEN + 33, d->bytes, B3_LEN);
	return 0;
}

void stat_log_release(struct stat_log *log)
{
	free(log->v);
	*log = (struct stat_log){0};
}

int stat_index_store(struct store *st, const struct stat_log *log, const struct b3_digest *root,
		     const uint8_t sha256[32], uint64_t nar_size)
{
	uint8_t rk[RKEY_LEN], rv[RVAL_LEN];
	struct store_kv *kv = calloc(log->n + 1, sizeof(*kv));
	size_t n = 0;
	int rc;

	if (!kv)
		return -ENOMEM;
	for (size_t i = 0; i < log->n; i++) {
		const uint8_t *r = log->v + i * STAT_REC_LEN;

		kv[n++] = (struct store_kv){r, r + FKEY_LEN, FKEY_LEN, FVAL_LEN};
	}
	if (root) {
		rk[0] = 'r';
		memcpy(rk + 1, root->bytes, B3_LEN);
		memcpy(rv, sha256, 32);
		put64(rv + 32, nar_size);
		kv[n++] = (struct store_kv){rk, rv, RKEY_LEN, RVAL_LEN};
	}
	rc = store_index_put(st, kv, n);
	free(kv);
	return rc;
}

int stat_index_root(struct store *st, const struct b3_digest *root, uint8_t sha256[32],
		    uint64_t *nar_size)
{
	uint8_t k[RKEY_LEN], v[RVAL_LEN];
	size_t len;
	int rc;

	k[0] = 'r';
	memcpy(k + 1, root->bytes, B3_LEN);
	rc = store_index_get(st, k, sizeof(k), v, sizeof(v), &len);
	if (rc == 0 && len != RVAL_LEN)
		rc = -ENOENT;
	if (rc < 0) {
		sf_err_clear();
		return -ENOENT;
	}
	memcpy(sha256, v, 32);
	*nar_size = get64(v + 32);
	return 0;
}
