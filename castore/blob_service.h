/* blob_service.h - the blob service interface: content addressed by BLAKE3.
 *
 * A backend embeds `struct blob_service` as the first member of its own
 * state and fills `ops`. Callers use the inline wrappers only.
 *
 * Readers are positional (pread-style), so one reader serves concurrent
 * readers without a seek position; they are not required to be thread-safe
 * unless the backend says so (local and memory readers are).
 *
 * A reader whose bytes are exactly one local file exposes it as `fd` (>= 0),
 * so the FUSE layer can splice or pass it through to the kernel. A `lazy`
 * reader fetches its bytes piece by piece as they are read, each piece
 * verified on its own, the whole blob once all of it was fetched (so only
 * a read that covered the whole blob proves it: docs/s3.md "Reads").
 *
 * A lazy reader of a blob stored as chunks may lend its chunk list and
 * fetch chunks by index (both optional), so that a cache can keep chunks
 * one by one under their own digests, each a blob of its own
 * (docs/services.md "Chunks in the cache"). */
#ifndef STOREFS_BLOB_SERVICE_H
#define STOREFS_BLOB_SERVICE_H

#include "castore/digest.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blob_reader;
struct blob_writer;
struct blob_service;

/* One chunk of a blob stored as chunks: its own digest, where it starts in
 * the blob, its length. */
struct blob_chunk {
	struct b3_digest digest;
	uint64_t off;
	uint32_t len;
};

struct blob_reader_ops {
	/* Reads up to `len` bytes at `off` into `buf`; *n < len only at EOF. */
	int (*pread)(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n);
	void (*close)(struct blob_reader *r);
	/* Optional (NULL otherwise; use the wrappers). `chunks` lends the
	 * blob's chunks in order (valid until close): their offsets and
	 * lengths add up to the blob, but that they make the blob is known
	 * only once all of them were hashed in order. `chunks_fetch` fetches
	 * chunks idx[0..k) (at most BLOB_CHUNKS_FETCH_MAX) into bufs[0..k),
	 * each its chunk's len bytes and verified by its own digest, at once
	 * where the service can; rc[x] is chunk idx[x]'s result, the return
	 * value 0 or one of the failures (its message recorded). The reader
	 * keeps nothing of them. Thread-safe. */
	int (*chunks)(struct blob_reader *r, const struct blob_chunk **v, size_t *n);
	int (*chunks_fetch)(struct blob_reader *r, const size_t *idx, size_t k,
			    uint8_t *const *bufs, int *rc);
};

#define BLOB_CHUNKS_FETCH_MAX 8

struct blob_reader {
	const struct blob_reader_ops *ops;
	uint64_t size; /* total length of the blob */
	int fd;	       /* the whole blob as a local file, or -1 */
	bool lazy;     /* fetches on demand (above) */
};

struct blob_writer_ops {
	int (*write)(struct blob_writer *w, const void *buf, size_t len);
	/* Finishes the blob, stores it under its digest and frees the writer.
	 * If `expect` is non-NULL and differs from the digest of the data,
	 * nothing is stored and -EIO is returned. `*created` (if non-NULL) is
	 * set on success: true if this commit made the blob exist, false if
	 * it was stored already (so a failed writer removes only what it
	 * created: docs/trust.md "Orphans"). */
	int (*commit)(struct blob_writer *w, const struct b3_digest *expect, struct b3_digest *out,
		      bool *created);
	/* Discards everything written and frees the writer. */
	void (*abort)(struct blob_writer *w);
};

struct blob_writer {
	const struct blob_writer_ops *ops;
};

struct blob_service_ops {
	/* 0 and the size if present, -ENOENT if absent. */
	int (*stat)(struct blob_service *s, const struct b3_digest *d, uint64_t *size);
	/* -ENOENT if absent; -EMFILE/-ENFILE when out of descriptors (the
	 * caller may close some and retry). */
	int (*open_read)(struct blob_service *s, const struct b3_digest *d,
			 struct blob_reader **out);
	int (*open_write)(struct blob_service *s, struct blob_writer **out);
	/* Optional: makes every committed blob durable (NULL: always durable).
	 * A commit that was not asked `created` may finish in the background
	 * (S3 uploads: docs/s3.md "Uploads"): such a blob is durable once a
	 * flush on the thread that committed it returned 0, and a failure of
	 * its upload is that flush's error. */
	int (*flush)(struct blob_service *s);
	/* Optional: stores `len` bytes that the caller hashed to `d` itself, in
	 * this process, from this very buffer (an import), without hashing
	 * them again. A blob of `d` already stored is "have it" where the
	 * backend's stat would say so to a writer's caller, or on a stricter
	 * check (the local store compares a small one byte for byte). */
	int (*put_hashed)(struct blob_service *s, const void *buf, size_t len,
			  const struct b3_digest *d, bool *created);
	void (*free)(struct blob_service *s);
	/* Optional: true if a caller need not stat a blob of `size` bytes
	 * before committing it to avoid a write: the backend creates it only
	 * if absent (S3's PUT with If-None-Match: *) and itself asks first
	 * when that saves bytes (docs/s3.md "Uploads"), so the caller's stat
	 * would be one request more per blob. NULL: false. */
	bool (*creates_if_absent)(struct blob_service *s, uint64_t size);
};

struct blob_service {
	const struct blob_service_ops *ops;
};

static inline int blob_service_stat(struct blob_service *s, const struct b3_digest *d,
				    uint64_t *size)
{
	return s->ops->stat(s, d, size);
}

/* *found tells whether the blob is present. */
static inline int blob_service_has(struct blob_service *s, const struct b3_digest *d, bool *found)
{
	uint64_t size;
	int rc = s->ops->stat(s, d, &size);

	if (rc == -ENOENT) {
		*found = false;
		return 0;
	}
	if (rc == 0)
		*found = true;
	return rc;
}

static inline bool blob_service_creates_if_absent(struct blob_service *s, uint64_t size)
{
	return s->ops->creates_if_absent && s->ops->creates_if_absent(s, size);
}

static inline int blob_service_open_read(struct blob_service *s, const struct b3_digest *d,
					 struct blob_reader **out)
{
	return s->ops->open_read(s, d, out);
}

static inline int blob_service_open_write(struct blob_service *s, struct blob_writer **out)
{
	return s->ops->open_write(s, out);
}

static inline int blob_service_flush(struct blob_service *s)
{
	return s->ops->flush ? s->ops->flush(s) : 0;
}

/* -EOPNOTSUPP (no message) where the backend has no put_hashed: the caller
 * stores through a writer, which hashes. `created` may be NULL. */
static inline int blob_service_put_hashed(struct blob_service *s, const void *buf, size_t len,
					  const struct b3_digest *d, bool *created)
{
	bool isnew;

	if (!s->ops->put_hashed)
		return -EOPNOTSUPP;
	return s->ops->put_hashed(s, buf, len, d, created ? created : &isnew);
}

static inline void blob_service_free(struct blob_service *s)
{
	if (s)
		s->ops->free(s);
}

static inline int blob_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off,
				    size_t *n)
{
	return r->ops->pread(r, buf, len, off, n);
}

static inline void blob_reader_close(struct blob_reader *r)
{
	if (r)
		r->ops->close(r);
}

/* -ENOTSUP if `r` does not read its blob as chunks. */
static inline int blob_reader_chunks(struct blob_reader *r, const struct blob_chunk **v, size_t *n)
{
	return r->ops->chunks ? r->ops->chunks(r, v, n) : -ENOTSUP;
}

static inline int blob_reader_chunks_fetch(struct blob_reader *r, const size_t *idx, size_t k,
					   uint8_t *const *bufs, int *rc)
{
	return r->ops->chunks_fetch ? r->ops->chunks_fetch(r, idx, k, bufs, rc) : -ENOTSUP;
}

static inline int blob_writer_write(struct blob_writer *w, const void *buf, size_t len)
{
	return w->ops->write(w, buf, len);
}

static inline int blob_writer_commit(struct blob_writer *w, const struct b3_digest *expect,
				     struct b3_digest *out)
{
	return w->ops->commit(w, expect, out, NULL);
}

/* As blob_writer_commit(), also telling whether the blob is new. */
static inline int blob_writer_commit_new(struct blob_writer *w, const struct b3_digest *expect,
					 struct b3_digest *out, bool *created)
{
	return w->ops->commit(w, expect, out, created);
}

static inline void blob_writer_abort(struct blob_writer *w)
{
	if (w)
		w->ops->abort(w);
}

/* Stores a whole buffer; convenience over open_write/write/commit. */
int blob_service_put(struct blob_service *s, const void *buf, size_t len, struct b3_digest *out);

/* Reads exactly `len` bytes at `off`; -EIO if the blob ends early. */
int blob_reader_pread_full(struct blob_reader *r, void *buf, size_t len, uint64_t off);

#endif
