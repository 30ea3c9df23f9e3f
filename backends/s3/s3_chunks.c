/* s3_chunks.c - large blobs as content-defined chunks: each chunk an
 * object of its own (stored once however many blobs share it), the blob's
 * object a chunk list naming them in order (docs/s3.md "Chunks"). */
#include "backends/s3/s3_internal.h"

#include "common/encoding.h"
#include "common/err.h"
#include "common/io.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_MAGIC "storefs-chunks 1\n"

static int sha256_hex(const void *buf, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned n = 32;

	if (!EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL))
		return sf_err(-EIO, "SHA-256 failed");
	hex_encode(md, 32, out);
	return 0;
}

static int put_error(struct s3_client *c, const char *key, const struct s3_response *r)
{
	return sf_err(r->status == 403 ? -EACCES : -EIO, "S3 PUT of '%s' at '%s': HTTP %ld%s%s",
		      key, c->url.endpoint, r->status, r->code[0] ? " " : "", r->code);
}

/* PUT if absent of `len` bytes; *created tells whether it was. */
static int put_object(struct s3_client *c, const char *key, const void *buf, size_t len,
		      const char *blob_size, bool *created)
{
	struct s3_response r;
	char sha[65];
	int rc = sha256_hex(buf, len, sha);

	if (rc == 0)
		rc = s3_send(c,
			     &(struct s3_request){.method = "PUT",
						  .key = key,
						  .if_none_match = true,
						  .body_mem = buf,
						  .body_len = len,
						  .body_sha256 = sha,
						  .blob_size = blob_size},
			     &r);
	if (rc == 0 && r.status != 200 && r.status != 412)
		rc = put_error(c, key, &r);
	if (rc == 0)
		*created = r.status == 200;
	return rc;
}

/* One chunk, unless the bucket has it: asked first with HEAD (no body
 * sent) while the blob's chunks were recently there (a changed version of
 * a stored blob), PUT blind after 8 absent in a row (a new one). */
static int put_chunk(struct s3_client *c, struct s3_ask *ask, const uint8_t *buf, size_t len,
		     struct b3_digest *d)
{
	struct s3_response r;
	char key[512];
	bool asked = s3_ask_first(ask), created;
	int rc = 0;

	b3_digest_of(buf, len, d);
	s3_chunk_key(c, d, key, sizeof(key));
	if (asked)
		rc = s3_send(c, &(struct s3_request){.method = "HEAD", .key = key}, &r);
	if (asked)
		s3_ask_learn(ask, true, rc < 0 || r.status == 200);
	if (rc < 0 || (asked && r.status == 200))
		return rc;
	rc = put_object(c, key, buf, len, NULL, &created);
	if (rc == 0 && !asked)
		s3_ask_learn(ask, false, !created);
	return rc;
}

/* Appends a chunk to a list (cut or parsed). */
static int list_add(struct s3_chunk **v, size_t *n, size_t *cap, const struct s3_chunk *ch)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct s3_chunk *g = realloc(*v, ncap * sizeof(**v));

		if (!g)
			return -ENOMEM;
		*v = g;
		*cap = ncap;
	}
	(*v)[(*n)++] = *ch;
	return 0;
}

/* The chunks of the `len` bytes of `fd`, cut by FastCDC (digests unset). */
static int cut_all(int fd, uint64_t len, struct s3_chunk **out, size_t *n)
{
	uint8_t *buf = malloc(S3_CDC_MAX);
	struct s3_chunk ch = {.off = 0};
	size_t cap = 0, got;
	int rc = buf ? 0 : -ENOMEM;

	*out = NULL;
	*n = 0;
	while (rc == 0 && ch.off < len) {
		size_t want = len - ch.off < S3_CDC_MAX ? (size_t)(len - ch.off) : S3_CDC_MAX;

		rc = pread_full(fd, buf, want, ch.off, &got);
		if (rc < 0 || got != want) {
			rc = sf_err_sys(rc < 0 ? -rc : EIO, "cannot read a buffered blob");
			break;
		}
		ch.len = (uint32_t)s3_cdc_cut(buf, got);
		rc = list_add(out, n, &cap, &ch);
		ch.off += ch.len;
	}
	free(buf);
	return rc;
}

struct put_job {
	struct s3_client *c;
	int fd;
	struct s3_chunk *chunks;
	struct s3_ask ask; /* per blob: its chunks are new or known together */
};

/* Job i of s3_parallel(): chunk i hashed and stored unless present. */
static int put_one(void *ctx, size_t i)
{
	struct put_job *j = ctx;
	struct s3_chunk *ch = &j->chunks[i];
	uint8_t *buf = malloc(ch->len);
	size_t got;
	int rc = buf ? pread_full(j->fd, buf, ch->len, ch->off, &got) : -ENOMEM;

	if (rc < 0 && rc != -ENOMEM)
		rc = sf_err_sys(-rc, "cannot read a buffered blob");
	else if (rc == 0 && got != ch->len)
		rc = sf_err(-EIO, "a buffered blob is shorter than written");
	if (rc == 0)
		rc = put_chunk(j->c, &j->ask, buf, ch->len, &ch->d);
	free(buf);
	return rc;
}

/* Cuts the file into chunks, stores those the bucket lacks (S3_PARALLEL
 * at a time), and writes the chunk list into `rec`. */
static int put_chunks(struct s3_client *c, int fd, uint64_t len, FILE *rec)
{
	struct put_job j = {.c = c, .fd = fd};
	char hex[B3_HEX_LEN + 1];
	size_t n;
	int rc = cut_all(fd, len, &j.chunks, &n);

	s3_ask_init(&j.ask);
	if (rc == 0)
		rc = s3_parallel(n, put_one, &j);
	s3_ask_release(&j.ask);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		b3_digest_to_hex(&j.chunks[i].d, hex);
		fprintf(rec, "%s %" PRIu32 "\n", hex, j.chunks[i].len);
	}
	free(j.chunks);
	return rc;
}

int s3_put_chunked(struct s3_client *c, int fd, uint64_t len, const struct b3_digest *d,
		   bool *created)
{
	char *rec = NULL, key[512], size[24];
	size_t rlen = 0;
	FILE *f = open_memstream(&rec, &rlen);
	int rc;

	if (!f)
		return -ENOMEM;
	fputs(RECORD_MAGIC, f);
	rc = put_chunks(c, fd, len, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	snprintf(size, sizeof(size), "%" PRIu64, len);
	s3_blob_key(c, d, key, sizeof(key));
	/* the list last: a blob is visible only once all its chunks are */
	if (rc == 0)
		rc = put_object(c, key, rec, rlen, size, created);
	free(rec);
	return rc;
}

/* --- reading --- */

/* Where a fetched chunk goes: `fd` at `base`, or `mem` (cap bytes). */
struct chunk_sink {
	int fd;
	uint8_t *mem;
	uint64_t base, len; /* where this chunk starts in fd, bytes so far */
	size_t cap;	    /* the chunk's listed length: no more is kept */
	bool too_long;	    /* the object is longer: not the chunk named */
	struct b3_hasher chunk;
};

static int chunk_write_fd(struct chunk_sink *s, const void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(s->fd, (const char *)buf + done, len - done,
				   (off_t)(s->base + s->len + done));

		if (n < 0 && errno != EINTR)
			return sf_err_sys(errno,
					  "cannot write a fetched chunk to a temporary file");
		done += n > 0 ? (size_t)n : 0;
	}
	return 0;
}

static int chunk_write(void *ctx, const void *buf, size_t len)
{
	struct chunk_sink *s = ctx;
	int rc = 0;

	/* A longer object is not the chunk named (fetch_chunk() says so);
	 * taken in up to a chunk's bound, so the connection stays usable. */
	if (s->len + len > S3_CDC_MAX)
		return sf_err(-EIO, "S3 chunk is longer than a chunk can be");
	s->too_long |= s->len + len > s->cap;
	if (!s->too_long && s->mem)
		memcpy(s->mem + s->len, buf, len);
	else if (!s->too_long)
		rc = chunk_write_fd(s, buf, len);
	if (rc < 0)
		return rc;
	b3_hasher_update(&s->chunk, buf, len);
	s->len += len;
	return 0;
}

static int chunk_reset(void *ctx)
{
	struct chunk_sink *s = ctx;

	s->len = 0;
	s->too_long = false;
	b3_hasher_init(&s->chunk);
	return 0;
}

static int damaged(struct s3_client *c, const char *key, const char *why)
{
	return sf_err(-EIO, "S3 chunk list '%s' in bucket '%s' is damaged (%s): not served", key,
		      c->url.bucket, why);
}

/* GETs chunk `d` into the sink, verified by its digest and length. */
static int fetch_chunk(struct s3_client *c, const struct b3_digest *d, struct chunk_sink *cs)
{
	struct s3_sink sink = {chunk_write, chunk_reset, cs};
	struct s3_response r;
	struct b3_digest got;
	char key[512];
	int rc;

	s3_chunk_key(c, d, key, sizeof(key));
	b3_hasher_init(&cs->chunk);
	rc = s3_send(c,
		     &(struct s3_request){
			 .method = "GET", .key = key, .sink = &sink, .expect_bytes = cs->cap},
		     &r);
	if (rc < 0)
		return rc;
	if (r.status != 200)
		return sf_err(r.status == 403 ? -EACCES : -EIO,
			      "S3 GET of chunk '%s' at '%s': HTTP %ld%s%s", key, c->url.endpoint,
			      r.status, r.code[0] ? " " : "", r.code);
	b3_hasher_final(&cs->chunk, &got);
	if (cs->too_long || !b3_digest_eq(&got, d) || cs->len != cs->cap)
		return sf_err(-EIO,
			      "S3 chunk '%s' in bucket '%s' does not hash to its name (damaged or "
			      "replaced in the bucket): not served",
			      key, c->url.bucket);
	return 0;
}

int s3_fetch_chunk(struct s3_client *c, const struct b3_digest *d, size_t len, int fd,
		   uint64_t base)
{
	struct chunk_sink cs = {.fd = fd, .base = base, .cap = len};

	return fetch_chunk(c, d, &cs);
}

int s3_fetch_chunk_mem(struct s3_client *c, const struct b3_digest *d, size_t len, uint8_t *buf)
{
	struct chunk_sink cs = {.fd = -1, .mem = buf, .cap = len};

	return fetch_chunk(c, d, &cs);
}

/* One "<64 hex> <len>" line of the list. */
static int parse_line(const char *line, size_t n, struct b3_digest *d, size_t *len)
{
	char num[16];

	if (n < B3_HEX_LEN + 2 || n - B3_HEX_LEN - 1 >= sizeof(num) || line[B3_HEX_LEN] != ' ' ||
	    b3_digest_from_hex(line, B3_HEX_LEN, d) < 0)
		return -EINVAL;
	memcpy(num, line + B3_HEX_LEN + 1, n - B3_HEX_LEN - 1);
	num[n - B3_HEX_LEN - 1] = '\0';
	for (const char *p = num; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	*len = (size_t)strtoul(num, NULL, 10);
	return *len && *len <= S3_CDC_MAX ? 0 : -EINVAL;
}

int s3_chunk_list_parse(struct s3_client *c, const char *key, const char *rec, size_t rlen,
			uint64_t size, struct s3_chunk **out, size_t *n_out)
{
	const char *p = rec + sizeof(RECORD_MAGIC) - 1, *end = rec + rlen;
	struct s3_chunk *v = NULL, ch = {.off = 0};
	size_t n = 0, cap = 0, len;
	int rc = 0;

	if (rlen > S3_LIST_MAX)
		return damaged(c, key, "too long");
	if (rlen < sizeof(RECORD_MAGIC) - 1 || memcmp(rec, RECORD_MAGIC, sizeof(RECORD_MAGIC) - 1))
		return damaged(c, key, "no chunk list header");
	while (rc == 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl || parse_line(p, (size_t)(nl - p), &ch.d, &len) < 0)
			rc = damaged(c, key, "a bad line");
		else if (len > size - ch.off)
			rc = damaged(c, key, "chunks longer than the blob");
		else {
			ch.len = (uint32_t)len;
			rc = list_add(&v, &n, &cap, &ch);
			ch.off += len;
			p = nl + 1;
		}
	}
	if (rc == 0 && ch.off != size)
		rc = damaged(c, key, "chunks shorter than the blob");
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}
