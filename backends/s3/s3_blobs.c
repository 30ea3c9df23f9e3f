/* s3_blobs.c - the blob service over an S3 bucket: one object per blob,
 * named by its BLAKE3 digest, created only if absent, verified whole
 * before a reader is handed out (docs/s3.md). */
#include "backends/s3/s3_internal.h"

#include "common/encoding.h"
#include "common/err.h"
#include "common/io.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds the chunk list (a few MiB) that a reader loads. */
#define S3_BLOB_MAX (64ull << 30)

struct s3_blobs {
	struct blob_service base;
	struct s3_client client;
	struct s3_uploads *uploads;
	bool readonly;
};

/* A whole blob: in `mem` when it was small enough to be fetched into
 * memory (fd -1), else in the temporary file fd. */
struct s3_reader {
	struct blob_reader base;
	uint8_t *mem;
};

/* Objects up to this size are fetched into memory, larger ones into a
 * temporary file. Why: creating and dropping an unnamed file per small
 * object cost ext4 more CPU than the rest of a cold read (perf of a cold
 * tar: 45% of the mount's time in ext4's inode allocation). The bound is
 * the local store's inline blob size times two, and the largest file the
 * FUSE mount pushes (fs/fuse/push.c), so a cached reader of a small file
 * holds about what a local store's would. */
#define S3_FETCH_MEM_MAX (64u << 10)

struct s3_writer {
	struct blob_writer base;
	struct s3_blobs *s;
	int fd;
	uint64_t len;
	struct b3_hasher b3;
	EVP_MD_CTX *sha;
};

/* An unnamed temporary file under $TMPDIR (or /tmp): the writer's body
 * before its key (the digest) is known, the reader's object while it is
 * verified. Gone when closed, whatever happens to the process. */
static int tmpfile_open(int *out)
{
	const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		snprintf(path, sizeof(path), "%s/storefs-s3.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return sf_err_sys(errno, "cannot create a temporary file in '%s'", dir);
	*out = fd;
	return 0;
}

static int status_error(struct s3_blobs *s, const char *op, const char *key,
			const struct s3_response *r)
{
	return s3_status_error(&s->client, op, key, r);
}

static int s3_stat(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	struct s3_blobs *s = (struct s3_blobs *)bs;
	struct s3_response r;
	char key[512];
	int rc;

	s3_blob_key(&s->client, d, key, sizeof(key));
	rc = s3_send(&s->client, &(struct s3_request){.method = "HEAD", .key = key}, &r);
	if (rc < 0)
		return rc;
	if (r.status == 404)
		return -ENOENT;
	if (r.status != 200)
		return status_error(s, "HEAD", key, &r);
	/* a chunk list carries the size of its blob */
	*size = r.blob_size >= 0 ? (uint64_t)r.blob_size : r.content_length;
	return 0;
}

/* --- readers: the object in a temporary file, verified --- */

static int s3_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct s3_reader *s = (struct s3_reader *)r;
	int rc;

	if (r->fd < 0) {
		*n = off >= r->size ? 0 : (size_t)(r->size - off < len ? r->size - off : len);
		if (*n)
			memcpy(buf, s->mem + off, *n);
		return 0;
	}
	rc = pread_full(r->fd, buf, len, off, n);
	return rc < 0 ? sf_err_sys(-rc, "cannot read a fetched S3 object") : 0;
}

static void s3_reader_close(struct blob_reader *r)
{
	struct s3_reader *s = (struct s3_reader *)r;

	if (r->fd >= 0)
		close(r->fd);
	free(s->mem);
	free(s);
}

static const struct blob_reader_ops s3_reader_ops = {
    .pread = s3_reader_pread,
    .close = s3_reader_close,
};

/* A GET's body: in mem (cap bytes allocated) until it passes
 * S3_FETCH_MEM_MAX, then in the temporary file fd (-1 until then). */
struct fetch {
	int fd;
	uint8_t *mem;
	size_t cap;
	uint64_t len;
	struct b3_hasher b3;
};

/* The body so far moves from memory to a temporary file. */
static int fetch_spill(struct fetch *f)
{
	int rc = tmpfile_open(&f->fd);

	if (rc == 0 && (rc = write_all(f->fd, f->mem, (size_t)f->len)) < 0)
		rc = sf_err_sys(-rc, "cannot write a fetched S3 object to a temporary file");
	free(f->mem);
	f->mem = NULL;
	f->cap = 0;
	return rc;
}

static int fetch_to_mem(struct fetch *f, const void *buf, size_t len)
{
	size_t want = (size_t)f->len + len, cap = f->cap ? f->cap : 4096;
	uint8_t *m;

	while (cap < want)
		cap *= 2;
	if (cap > f->cap) {
		m = realloc(f->mem, cap);
		if (!m)
			return -ENOMEM;
		f->mem = m;
		f->cap = cap;
	}
	memcpy(f->mem + f->len, buf, len);
	return 0;
}

static int fetch_write(void *ctx, const void *buf, size_t len)
{
	struct fetch *f = ctx;
	int rc = 0;

	if (f->fd < 0 && f->len + len > S3_FETCH_MEM_MAX)
		rc = fetch_spill(f);
	if (rc == 0 && f->fd < 0)
		rc = fetch_to_mem(f, buf, len);
	else if (rc == 0 && (rc = write_all(f->fd, buf, len)) < 0)
		rc = sf_err_sys(-rc, "cannot write a fetched S3 object to a temporary file");
	if (rc < 0)
		return rc;
	b3_hasher_update(&f->b3, buf, len);
	f->len += len;
	return 0;
}

static int fetch_reset(void *ctx)
{
	struct fetch *f = ctx;

	if (f->fd >= 0 && (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0))
		return sf_err_sys(errno, "cannot truncate a temporary file");
	f->len = 0;
	b3_hasher_init(&f->b3);
	return 0;
}

static void fetch_release(struct fetch *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->mem);
}

static int not_its_name(struct s3_blobs *s, const char *key)
{
	return sf_err(-EIO,
		      "S3 object '%s' in bucket '%s' does not hash to its name (damaged or "
		      "replaced in the bucket): not served",
		      key, s->client.url.bucket);
}

/* f holds the chunk list of `d`: a lazy reader over its chunks. */
static int chunked_reader(struct s3_blobs *s, const struct b3_digest *d, const char *key,
			  uint64_t size, struct fetch *f, struct blob_reader **out)
{
	struct s3_chunk *chunks = NULL;
	char *rec = f->mem ? (char *)f->mem : malloc(f->len ? (size_t)f->len : 1);
	size_t got = (size_t)f->len, n = 0;
	int tmp, rc = rec ? 0 : -ENOMEM;

	if (rc == 0 && !f->mem)
		rc = pread_full(f->fd, rec, (size_t)f->len, 0, &got);
	if (rc < 0 && rc != -ENOMEM)
		rc = sf_err_sys(-rc, "cannot read a fetched chunk list");
	else if (rc == 0 && got != f->len)
		rc = sf_err(-EIO, "a fetched chunk list is shorter than fetched");
	if (rc == 0)
		rc = s3_chunk_list_parse(&s->client, key, rec, (size_t)f->len, size, &chunks, &n);
	if (!f->mem)
		free(rec);
	if (rc == 0)
		rc = tmpfile_open(&tmp);
	if (rc == 0)
		return s3_lazy_reader_new(&s->client, d, key, size, chunks, n, tmp, out);
	free(chunks);
	return rc;
}

/* GETs the object into f; 0 only if it is the blob `d`, whole; if it
 * is a chunk list, 0 with a lazy reader of its chunks in *lazy. */
static int fetch_verified(struct s3_blobs *s, const struct b3_digest *d, struct fetch *f,
			  struct blob_reader **lazy)
{
	struct s3_sink sink = {fetch_write, fetch_reset, f};
	struct s3_response r;
	struct b3_digest got;
	char key[512];
	int rc;

	s3_blob_key(&s->client, d, key, sizeof(key));
	rc = s3_send(&s->client, &(struct s3_request){.method = "GET", .key = key, .sink = &sink},
		     &r);
	if (rc < 0)
		return rc;
	if (r.status == 404)
		return -ENOENT;
	if (r.status != 200)
		return status_error(s, "GET", key, &r);
	b3_hasher_final(&f->b3, &got);
	if (b3_digest_eq(&got, d))
		return 0;
	if (r.blob_size >= S3_CHUNKED_MIN && (uint64_t)r.blob_size <= S3_BLOB_MAX &&
	    f->len <= S3_LIST_MAX)
		return chunked_reader(s, d, key, (uint64_t)r.blob_size, f, lazy);
	return not_its_name(s, key);
}

static int s3_open_read(struct blob_service *bs, const struct b3_digest *d,
			struct blob_reader **out)
{
	struct blob_reader *lazy = NULL;
	struct fetch f = {.fd = -1};
	struct s3_reader *r;
	int rc;

	b3_hasher_init(&f.b3);
	rc = fetch_verified((struct s3_blobs *)bs, d, &f, &lazy);
	if (lazy) {
		fetch_release(&f);
		*out = lazy;
		return 0;
	}
	r = rc == 0 ? malloc(sizeof(*r)) : NULL;
	if (rc == 0 && !r)
		rc = -ENOMEM;
	if (rc < 0) {
		fetch_release(&f);
		return rc;
	}
	/* an empty blob has no memory: it needs no bytes, and no file either */
	r->base = (struct blob_reader){.ops = &s3_reader_ops, .size = f.len, .fd = f.fd};
	r->mem = f.mem;
	*out = &r->base;
	return 0;
}

/* --- writers: the bytes in a temporary file until the digest is known --- */

static int s3_writer_write(struct blob_writer *bw, const void *buf, size_t len)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	int rc = write_all(w->fd, buf, len);

	if (rc < 0)
		return sf_err_sys(-rc, "cannot buffer a blob for S3 in a temporary file");
	b3_hasher_update(&w->b3, buf, len);
	if (!EVP_DigestUpdate(w->sha, buf, len))
		return sf_err(-EIO, "SHA-256 failed");
	w->len += len;
	return 0;
}

static void s3_writer_abort(struct blob_writer *bw)
{
	struct s3_writer *w = (struct s3_writer *)bw;

	if (w->fd >= 0)
		close(w->fd);
	EVP_MD_CTX_free(w->sha);
	free(w);
}

/* 0 and *present if the bucket has the object already. */
static int object_present(struct s3_blobs *s, const struct b3_digest *d, bool *present)
{
	uint64_t size;
	int rc = s3_stat(&s->base, d, &size);

	*present = rc == 0;
	return rc == -ENOENT ? 0 : rc;
}

/* A blob below S3_CHUNKED_MIN: one object. A caller that does not ask
 * whether its commit created the blob gets it uploaded in the background,
 * made durable by the service's flush (docs/s3.md "Uploads"); the queue
 * then owns the temporary file. */
static int put_whole(struct s3_writer *w, const struct b3_digest *d, bool *created)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char sha[65];
	int rc;

	if (!EVP_DigestFinal_ex(w->sha, md, &mdlen) || mdlen != 32)
		return sf_err(-EIO, "SHA-256 failed");
	hex_encode(md, 32, sha);
	if (created)
		return s3_uploads_put_now(w->s->uploads, w->fd, w->len, d, sha, created);
	rc = s3_uploads_add(w->s->uploads, w->fd, w->len, d, sha);
	w->fd = -1;
	return rc;
}

static int s3_writer_commit(struct blob_writer *bw, const struct b3_digest *expect,
			    struct b3_digest *out, bool *created)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	struct b3_digest d;
	bool present = false, made = false;
	int rc = 0;

	b3_hasher_final(&w->b3, &d);
	if (expect && !b3_digest_eq(expect, &d))
		rc = sf_err(-EIO, "blob digest mismatch: the data is not the blob expected");
	else if (w->len > S3_BLOB_MAX)
		rc = sf_err(-EFBIG, "blob of %llu bytes is larger than S3 blobs can be (64 GiB)",
			    (unsigned long long)w->len);
	else if (w->len < S3_CHUNKED_MIN)
		rc = put_whole(w, &d, created ? &made : NULL);
	else
		rc = object_present(w->s, &d, &present);
	if (rc == 0 && !present && w->len >= S3_CHUNKED_MIN)
		rc = s3_put_chunked(&w->s->client, w->fd, w->len, &d, &made);
	if (rc == 0) {
		*out = d;
		if (created)
			*created = made;
	}
	s3_writer_abort(bw);
	return rc;
}

static const struct blob_writer_ops s3_writer_ops = {
    .write = s3_writer_write,
    .commit = s3_writer_commit,
    .abort = s3_writer_abort,
};

static int s3_open_write(struct blob_service *bs, struct blob_writer **out)
{
	struct s3_blobs *s = (struct s3_blobs *)bs;
	struct s3_writer *w;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "S3 bucket '%s' is opened read-only", s->client.url.bucket);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->sha = EVP_MD_CTX_new();
	if (!w->sha || !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(w->sha);
		free(w);
		return -ENOMEM;
	}
	rc = tmpfile_open(&w->fd);
	if (rc < 0) {
		EVP_MD_CTX_free(w->sha);
		free(w);
		return rc;
	}
	w->base.ops = &s3_writer_ops;
	w->s = s;
	b3_hasher_init(&w->b3);
	*out = &w->base;
	return 0;
}

static int s3_flush(struct blob_service *bs)
{
	return s3_uploads_wait(((struct s3_blobs *)bs)->uploads);
}

static void s3_free(struct blob_service *bs)
{
	struct s3_blobs *s = (struct s3_blobs *)bs;

	s3_uploads_free(s->uploads);
	s3_client_release(&s->client);
	free(s);
}

/* A blob below S3_CHUNKED_MIN is one PUT with If-None-Match: *, whose
 * commit asks the bucket first only when recent blobs were there already
 * (s3_uploads.c): a stat by the caller would be a request more per blob.
 * A chunked blob is not: its commit uploads chunks before it could learn
 * the list exists (hence its own HEAD first). */
static bool s3_creates_if_absent(struct blob_service *bs, uint64_t size)
{
	(void)bs;
	return size < S3_CHUNKED_MIN;
}

static const struct blob_service_ops s3_blob_ops = {
    .stat = s3_stat,
    .open_read = s3_open_read,
    .open_write = s3_open_write,
    .flush = s3_flush,
    .free = s3_free,
    .creates_if_absent = s3_creates_if_absent,
};

int s3_blobs_new(const char *url, bool readonly, struct blob_service **out)
{
	struct s3_blobs *s = malloc(sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = s3_client_init(&s->client, url);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->uploads = NULL;
	rc = s3_check_bucket(&s->client);
	if (rc == 0)
		rc = s3_uploads_new(&s->client, &s->uploads);
	if (rc < 0) {
		s3_free(&s->base);
		return rc;
	}
	s->base.ops = &s3_blob_ops;
	s->readonly = readonly;
	*out = &s->base;
	return 0;
}

int s3_blobs_each(struct blob_service *bs, store_digest_fn cb, void *ctx)
{
	return s3_blobs_list(&((struct s3_blobs *)bs)->client, cb, ctx);
}

/* Reads all of `r`; a chunked blob is verified by the read that fetches
 * its last chunk. */
static int read_whole(struct blob_reader *r)
{
	uint8_t *buf = malloc(S3_CDC_MAX);
	uint64_t off = 0;
	size_t n = 1;
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0 && off < r->size && n) {
		rc = blob_reader_pread(r, buf, S3_CDC_MAX, off, &n);
		off += n;
	}
	free(buf);
	if (rc == 0 && off != r->size)
		rc = sf_err(-EIO, "S3 blob ends after %llu of %llu bytes", (unsigned long long)off,
			    (unsigned long long)r->size);
	return rc;
}

int s3_blob_check(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	struct blob_reader *r;
	int rc = blob_service_open_read(bs, d, &r);

	if (rc < 0)
		return rc;
	rc = read_whole(r);
	if (rc == 0)
		*size = r->size;
	blob_reader_close(r);
	return rc;
}

void s3_blobs_set_deadline(struct blob_service *bs, const struct deadline_rule *r)
{
	((struct s3_blobs *)bs)->client.rule = *r;
}
