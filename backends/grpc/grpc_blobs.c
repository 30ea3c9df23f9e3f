/* grpc_blobs.c - BlobService client: Stat and a verified Read.
 *
 * A reader is opened by streaming the whole blob through BLAKE3 and
 * comparing the digest before any byte is handed out (docs/grpc.md §3):
 * up to GRPC_BLOB_MEM_MAX the bytes are kept in memory (while all the
 * service's readers together hold less than GRPC_BLOB_MEM_TOTAL: the mount
 * caches many readers); a larger blob is spooled, message by message, into
 * an unlinked temporary file, so memory stays bounded by one message
 * whatever the blob's size, and the file is then the reader's descriptor
 * (the mount splices from it). A blob whose digest does not match is -EIO
 * and nothing of it is kept. */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"
#include "rpc_blobstore.pb-c.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GRPC_BLOB_MEM_MAX   (4u * 1024 * 1024)
#define GRPC_BLOB_MEM_TOTAL (64u * 1024 * 1024)

struct gblob_service {
	struct blob_service base;
	struct grpc_conn *conn;
	_Atomic size_t mem_held; /* bytes of memory buffers, readers' and fills' */
};

struct gblob_reader {
	struct blob_reader base;
	struct gblob_service *s;
	uint8_t *mem; /* the blob, or NULL when spooled to base.fd */
	size_t cap;   /* counted in s->mem_held */
};

/* Where a blob being read is received. */
struct fill {
	struct gblob_service *s;
	uint8_t *mem;
	size_t cap; /* counted in s->mem_held */
	uint64_t len;
	int fd;
	struct b3_hasher hs;
};

static int spool_open(struct fill *f)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || dir[0] != '/')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EOPNOTSUPP) {
		/* A filesystem without O_TMPFILE: the same, in two steps. */
		snprintf(path, sizeof(path), "%s/storefs-grpc-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return sf_err_sys(errno, "cannot make a temporary file in '%s' for a blob", dir);
	if (f->len && write(fd, f->mem, f->len) != (ssize_t)f->len) {
		close(fd);
		return sf_err_sys(errno ? errno : ENOSPC, "cannot spool a blob into '%s'", dir);
	}
	free(f->mem);
	atomic_fetch_sub(&f->s->mem_held, f->cap);
	f->mem = NULL;
	f->cap = 0;
	f->fd = fd;
	return 0;
}

/* May the buffer grow to hold `want` bytes, or must the blob be spooled? */
static bool grow_ok(const struct fill *f, uint64_t want)
{
	return want <= GRPC_BLOB_MEM_MAX &&
	       atomic_load(&f->s->mem_held) + 2 * want <= GRPC_BLOB_MEM_TOTAL;
}

static int fill_add(struct fill *f, const uint8_t *p, size_t n)
{
	size_t cap;
	uint8_t *m;
	int rc;

	b3_hasher_update(&f->hs, p, n);
	if (f->fd < 0 && f->len + n > f->cap && !grow_ok(f, f->len + n) && (rc = spool_open(f)) < 0)
		return rc;
	if (f->fd >= 0) {
		if (n && write(f->fd, p, n) != (ssize_t)n)
			return sf_err_sys(errno ? errno : ENOSPC, "cannot spool a blob");
		f->len += n;
		return 0;
	}
	if (f->len + n > f->cap) {
		/* The first message exactly (a small blob is one message);
		 * then doubling. The mount keeps many readers, so what they
		 * hold is what decides when blobs go to a file (fill_trim). */
		cap = f->cap ? f->cap : n;
		while (cap < f->len + n)
			cap *= 2;
		m = realloc(f->mem, cap);
		if (!m)
			return -ENOMEM;
		atomic_fetch_add(&f->s->mem_held, cap - f->cap);
		f->mem = m;
		f->cap = cap;
	}
	memcpy(f->mem + f->len, p, n);
	f->len += n;
	return 0;
}

/* A whole blob in memory gives back what the doubling left unused, so
 * the readers the mount keeps count their bytes, not their growth. */
static void fill_trim(struct fill *f)
{
	uint8_t *m;

	if (f->fd >= 0 || f->cap == f->len || f->len == 0)
		return;
	m = realloc(f->mem, f->len);
	if (!m)
		return; /* the larger buffer stays, and counted */
	atomic_fetch_sub(&f->s->mem_held, f->cap - f->len);
	f->mem = m;
	f->cap = f->len;
}

static int chunk_add(struct fill *f, const uint8_t *msg, size_t len)
{
	Snix__Castore__V1__BlobChunk *c = snix__castore__v1__blob_chunk__unpack(NULL, len, msg);
	int rc;

	if (!c)
		return sf_err(-EIO, "a BlobChunk message does not decode");
	rc = fill_add(f, c->data.data, c->data.len);
	snix__castore__v1__blob_chunk__free_unpacked(c, NULL);
	return rc;
}

/* Reads the whole blob `d` into `f` and checks its digest. */
static int fetch(struct gblob_service *s, const struct b3_digest *d, struct fill *f)
{
	Snix__Castore__V1__ReadBlobRequest req = SNIX__CASTORE__V1__READ_BLOB_REQUEST__INIT;
	uint8_t buf[64], *msg = NULL;
	char want[B3_TEXT_LEN + 1], got[B3_TEXT_LEN + 1];
	struct b3_digest have;
	struct grpc_rpc r;
	size_t len;
	int rc;

	req.digest.data = (uint8_t *)d->bytes;
	req.digest.len = B3_LEN;
	len = snix__castore__v1__read_blob_request__pack(&req, buf);
	rc = grpc_rpc_start(s->conn, s->conn->pkg_castore, "BlobService", "Read", buf, len, &r);
	while (rc == 0 && (rc = grpc_rpc_next(&r, &msg, &len)) == 0 && msg) {
		rc = chunk_add(f, msg, len);
		free(msg);
	}
	grpc_rpc_finish(&r);
	if (rc < 0)
		return rc;
	b3_hasher_final(&f->hs, &have);
	if (b3_digest_eq(&have, d)) {
		fill_trim(f);
		return 0;
	}
	b3_digest_to_text(d, want);
	b3_digest_to_text(&have, got);
	/* An empty stream with OK is how a server might say "absent" too, but
	 * only a lie or a broken server gets here: either way, nothing kept. */
	return sf_err(-EIO, "%s: blob %s: received %llu bytes hashing to %s", s->conn->location,
		      want, (unsigned long long)f->len, got);
}

static int reader_pread(struct blob_reader *br, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct gblob_reader *r = (struct gblob_reader *)br;
	size_t want = off >= br->size ? 0 : (size_t)(br->size - off < len ? br->size - off : len);
	ssize_t got;

	if (r->mem || !want) {
		if (want)
			memcpy(buf, r->mem + off, want);
		*n = want;
		return 0;
	}
	got = pread(br->fd, buf, want, (off_t)off);
	if (got < 0)
		return sf_err_sys(errno, "cannot read a spooled blob");
	*n = (size_t)got;
	return 0;
}

static void reader_close(struct blob_reader *br)
{
	struct gblob_reader *r = (struct gblob_reader *)br;

	if (br->fd >= 0)
		close(br->fd);
	free(r->mem);
	atomic_fetch_sub(&r->s->mem_held, r->cap);
	free(r);
}

static const struct blob_reader_ops reader_ops = {.pread = reader_pread, .close = reader_close};

static int gblob_open_read(struct blob_service *bs, const struct b3_digest *d,
			   struct blob_reader **out)
{
	struct gblob_service *s = (struct gblob_service *)bs;
	struct fill f = {.s = s, .fd = -1};
	struct gblob_reader *r = calloc(1, sizeof(*r));
	int rc = r ? 0 : -ENOMEM;

	b3_hasher_init(&f.hs);
	if (rc == 0)
		rc = fetch(s, d, &f);
	if (rc < 0) {
		if (f.fd >= 0)
			close(f.fd);
		free(f.mem);
		atomic_fetch_sub(&s->mem_held, f.cap);
		free(r);
		return rc;
	}
	r->base.ops = &reader_ops;
	r->base.size = f.len;
	r->base.fd = f.fd;
	r->s = s;
	r->mem = f.mem;
	r->cap = f.cap;
	*out = &r->base;
	return 0;
}

/* Sums the chunk list of a Stat answer; 1 if the list was empty. */
static int stat_size(const uint8_t *msg, size_t len, uint64_t *size)
{
	Snix__Castore__V1__StatBlobResponse *resp =
	    snix__castore__v1__stat_blob_response__unpack(NULL, len, msg);
	uint64_t sum = 0;
	int rc = 0;

	if (!resp)
		return sf_err(-EIO, "a StatBlobResponse message does not decode");
	for (size_t i = 0; rc == 0 && i < resp->n_chunks; i++) {
		if (resp->chunks[i]->digest.len != B3_LEN ||
		    __builtin_add_overflow(sum, resp->chunks[i]->size, &sum))
			rc = sf_err(-EIO, "a StatBlobResponse has a bad chunk");
	}
	if (rc == 0 && resp->n_chunks == 0)
		rc = 1;
	snix__castore__v1__stat_blob_response__free_unpacked(resp, NULL);
	if (rc == 0)
		*size = sum;
	return rc;
}

/* Stat says whether the blob exists and, if the server lists its chunks,
 * its size; otherwise the size is learnt by reading it (verified). */
static int gblob_stat(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	struct gblob_service *s = (struct gblob_service *)bs;
	Snix__Castore__V1__StatBlobRequest req = SNIX__CASTORE__V1__STAT_BLOB_REQUEST__INIT;
	struct blob_reader *r;
	uint8_t buf[64], *resp;
	size_t len;
	int rc;

	req.digest.data = (uint8_t *)d->bytes;
	req.digest.len = B3_LEN;
	req.send_chunks = 1;
	len = snix__castore__v1__stat_blob_request__pack(&req, buf);
	rc =
	    grpc_unary(s->conn, s->conn->pkg_castore, "BlobService", "Stat", buf, len, &resp, &len);
	if (rc < 0)
		return rc;
	rc = stat_size(resp, len, size);
	free(resp);
	if (rc != 1)
		return rc;
	rc = gblob_open_read(bs, d, &r);
	if (rc == 0) {
		*size = r->size;
		blob_reader_close(r);
	}
	return rc;
}

/* --- uploads (BlobService.Put) --- */

/* The size of the BlobChunk messages a writer sends. */
#define GRPC_PUT_CHUNK (256u * 1024)

struct gblob_writer {
	struct blob_writer base;
	struct gblob_service *s;
	struct grpc_rpc r;
	struct b3_hasher hs;
	uint64_t len;
	int failed; /* the first error: the writer refuses everything after it */
};

static int send_chunk(struct gblob_writer *w, const uint8_t *p, size_t n)
{
	Snix__Castore__V1__BlobChunk c = SNIX__CASTORE__V1__BLOB_CHUNK__INIT;
	uint8_t *msg;
	size_t len;
	int rc;

	c.data.data = (uint8_t *)p;
	c.data.len = n;
	msg = malloc(snix__castore__v1__blob_chunk__get_packed_size(&c));
	if (!msg)
		return -ENOMEM;
	len = snix__castore__v1__blob_chunk__pack(&c, msg);
	rc = grpc_rpc_send(&w->r, msg, len);
	free(msg);
	return rc;
}

static int gwriter_write(struct blob_writer *bw, const void *buf, size_t len)
{
	struct gblob_writer *w = (struct gblob_writer *)bw;
	const uint8_t *p = buf;

	b3_hasher_update(&w->hs, buf, len);
	while (w->failed == 0 && len) {
		size_t n = len < GRPC_PUT_CHUNK ? len : GRPC_PUT_CHUNK;

		w->failed = send_chunk(w, p, n);
		w->len += n;
		p += n;
		len -= n;
	}
	return w->failed;
}

static void gwriter_abort(struct blob_writer *bw)
{
	struct gblob_writer *w = (struct gblob_writer *)bw;

	grpc_rpc_finish(&w->r); /* cancels the upload: nothing is stored */
	free(w);
}

/* The server's PutBlobResponse must name the digest of what was sent. */
static int check_put_response(struct gblob_writer *w, const struct b3_digest *have)
{
	Snix__Castore__V1__PutBlobResponse *resp;
	uint8_t *msg = NULL, *extra = NULL;
	size_t len, n;
	int rc = grpc_rpc_close_send(&w->r);

	if (rc == 0)
		rc = grpc_rpc_next(&w->r, &msg, &len);
	if (rc == 0 && !msg)
		rc = sf_err(-EIO, "%s: %s: no response", w->s->conn->location, w->r.method);
	if (rc == 0 && (rc = grpc_rpc_next(&w->r, &extra, &n)) == 0 && extra)
		rc = sf_err(-EIO, "%s: %s: two responses", w->s->conn->location, w->r.method);
	free(extra);
	resp = rc == 0 ? snix__castore__v1__put_blob_response__unpack(NULL, len, msg) : NULL;
	if (rc == 0 && (!resp || resp->digest.len != B3_LEN ||
			memcmp(resp->digest.data, have->bytes, B3_LEN) != 0))
		rc = sf_err(-EIO, "%s: %s: the server names another digest for the blob sent",
			    w->s->conn->location, w->r.method);
	if (resp)
		snix__castore__v1__put_blob_response__free_unpacked(resp, NULL);
	free(msg);
	return rc;
}

/* Whether the blob was new on the server is not told by the protocol:
 * *created is false, so a failed write session never asks to remove it. */
static int gwriter_commit(struct blob_writer *bw, const struct b3_digest *expect,
			  struct b3_digest *out, bool *created)
{
	struct gblob_writer *w = (struct gblob_writer *)bw;
	char want[B3_TEXT_LEN + 1], got[B3_TEXT_LEN + 1];
	struct b3_digest have;
	int rc = w->failed;

	b3_hasher_final(&w->hs, &have);
	if (rc == 0 && expect && !b3_digest_eq(expect, &have)) {
		b3_digest_to_text(expect, want);
		b3_digest_to_text(&have, got);
		rc = sf_err(-EIO, "blob data hashes to %s, expected %s", got, want);
	}
	if (rc == 0)
		rc = check_put_response(w, &have);
	gwriter_abort(bw);
	if (rc == 0) {
		if (out)
			*out = have;
		if (created)
			*created = false;
	}
	return rc;
}

static const struct blob_writer_ops writer_ops = {
    .write = gwriter_write,
    .commit = gwriter_commit,
    .abort = gwriter_abort,
};

static int gblob_open_write(struct blob_service *bs, struct blob_writer **out)
{
	struct gblob_service *s = (struct gblob_service *)bs;
	struct gblob_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->base.ops = &writer_ops;
	w->s = s;
	b3_hasher_init(&w->hs);
	rc = grpc_rpc_open_upload(s->conn, s->conn->pkg_castore, "BlobService", "Put", &w->r);
	if (rc < 0) {
		gwriter_abort(&w->base);
		return rc;
	}
	*out = &w->base;
	return 0;
}

static void gblob_free(struct blob_service *bs)
{
	free(bs);
}

static const struct blob_service_ops gblob_ops = {
    .stat = gblob_stat,
    .open_read = gblob_open_read,
    .open_write = gblob_open_write,
    .free = gblob_free,
};

int grpc_blob_service_new(struct grpc_conn *c, struct blob_service **out)
{
	struct gblob_service *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &gblob_ops;
	s->conn = c;
	*out = &s->base;
	return 0;
}
