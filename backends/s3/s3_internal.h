/* s3_internal.h - what the files of backends/s3/ share: credentials and
 * the signed, retried HTTP requests of one bucket. */
#ifndef STOREFS_BACKENDS_S3_INTERNAL_H
#define STOREFS_BACKENDS_S3_INTERNAL_H

#include "backends/s3/s3.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct s3_creds {
	char *key_id;
	char *secret; /* never logged, scrubbed when freed */
	char *token;  /* or NULL */
};

/* From the environment, else the shared credentials file (s3.h). -EINVAL
 * with a message naming what to set when there are none. */
int s3_creds_load(struct s3_creds *out);
void s3_creds_release(struct s3_creds *c);

#define S3_IDLE_HANDLES 16

struct s3_client {
	struct s3_url url;
	struct s3_creds creds;
	struct deadline_rule rule;
	pthread_mutex_t lock;
	void *idle[S3_IDLE_HANDLES]; /* CURL easy handles kept for their connections; lock */
	unsigned n_idle;	     /* lock */
};

int s3_client_init(struct s3_client *c, const char *url);
void s3_client_release(struct s3_client *c);

/* Where a GET's body goes; `reset` starts it over (a retried request). */
struct s3_sink {
	int (*write)(void *ctx, const void *buf, size_t len);
	int (*reset)(void *ctx);
	void *ctx;
};

struct s3_request {
	const char *method; /* GET, HEAD or PUT */
	const char *key;    /* under the prefix; NULL: the bucket itself */
	const char *query;  /* canonical query string, or NULL */
	bool if_none_match; /* PUT only if absent: 412 when present */
	int body_fd;	    /* PUT: the body is body_len bytes of this file from body_off */
	uint64_t body_off, body_len;
	const void *body_mem;	 /* or these body_len bytes, if not NULL */
	const char *blob_size;	 /* PUT: sent as x-amz-meta-blob-size (a chunk list) */
	const char *body_sha256; /* PUT: its hex SHA-256 */
	struct s3_sink *sink;	 /* GET: the body's destination */
	uint64_t expect_bytes;	 /* a body size known in advance, for the deadline */
};

struct s3_response {
	long status;		 /* HTTP status of the last attempt */
	uint64_t content_length; /* HEAD/GET, if the server sent it */
	char code[64];		 /* <Code> of an error body, or "" */
	int64_t blob_size;	 /* x-amz-meta-blob-size of the object, or -1 */
};

/* Sends the request, signed, retrying 5xx answers and transport failures
 * with backoff inside the request's deadline (docs/s3.md). 0 with any HTTP
 * status in *res (the caller judges it); -EIO with a message when no
 * answer came in time; -ENOMEM. */
int s3_send(struct s3_client *c, const struct s3_request *rq, struct s3_response *res);

/* The object key of a blob: "[PREFIX/]blobs/b3/<4 hex>/<64 hex>". */
void s3_blob_key(const struct s3_client *c, const struct b3_digest *d, char *out, size_t len);

/* Checks that the bucket exists and takes our credentials (one request):
 * -ENOENT (no bucket), -EACCES (refused), -EIO, each with a message. */
int s3_check_bucket(struct s3_client *c);

/* Chunks (docs/s3.md "Chunks"): blobs from S3_CHUNKED_MIN bytes on are
 * cut by FastCDC into chunks of S3_CDC_MIN..S3_CDC_MAX bytes. */
#define S3_CDC_MIN     (64u << 10)
#define S3_CDC_AVG     (256u << 10)
#define S3_CDC_MAX     (1u << 20)
#define S3_CHUNKED_MIN (1u << 20)
/* The longest chunk list: a 64 GiB blob in 64 KiB chunks is 1 Mi lines of
 * at most 72 bytes ("<64 hex> <length>\n"). */
#define S3_LIST_MAX (80u << 20)

/* The length of the first chunk of `buf` (all of it if `len` is at most
 * S3_CDC_MIN; never more than S3_CDC_MAX). */
size_t s3_cdc_cut(const uint8_t *buf, size_t len);

/* Requests of one operation in flight at once (s3_parallel.c). */
#define S3_PARALLEL 8

/* Runs job(ctx, i) for every i < n, S3_PARALLEL at a time (the caller's
 * thread among them); after a failure no new job starts. The failure of
 * the lowest index is returned, its message recorded on this thread. */
int s3_parallel(size_t n, int (*job)(void *ctx, size_t i), void *ctx);

/* One error for an unexpected answer `r` to `op` on `key`: -EACCES for
 * 403, else -EIO, with a message naming the key and the S3 error code. */
int s3_status_error(struct s3_client *c, const char *op, const char *key,
		    const struct s3_response *r);

/* Whether a PUT is preceded by a HEAD (s3_uploads.c, docs/s3.md
 * "Uploads"): yes while the bucket recently had what we upload, no after
 * 8 absent in a row. Thread-safe. */
struct s3_ask {
	pthread_mutex_t lock;
	unsigned absent_run; /* objects found absent in a row; lock */
	unsigned asking;     /* HEADs asked, not answered yet; lock */
};
void s3_ask_init(struct s3_ask *a);
void s3_ask_release(struct s3_ask *a);
bool s3_ask_first(struct s3_ask *a);
/* The answer about an object: `asked` as s3_ask_first() said; `present`
 * if the bucket had it (a HEAD's 200, or a 412 to a blind PUT). */
void s3_ask_learn(struct s3_ask *a, bool asked, bool present);

/* Whole-blob PUTs (s3_uploads.c, docs/s3.md "Uploads"): a queue of
 * uploads in the background, S3_PARALLEL at a time, holding at most
 * S3_UPLOADS_HELD temporary files (each below S3_CHUNKED_MIN). */
#define S3_UPLOADS_HELD 24
struct s3_uploads;
int s3_uploads_new(struct s3_client *c, struct s3_uploads **out);
/* Stops the workers; uploads still queued are dropped (never flushed, so
 * never relied on). NULL is a no-op. */
void s3_uploads_free(struct s3_uploads *u);
/* Stores blob `d` (`len` bytes of `fd`, `sha` their hex SHA-256) if the
 * bucket lacks it, now; *created tells whether this PUT made it. */
int s3_uploads_put_now(struct s3_uploads *u, int fd, uint64_t len, const struct b3_digest *d,
		       const char *sha, bool *created);
/* Queues the same (taking `fd`), waiting while the queue is full. */
int s3_uploads_add(struct s3_uploads *u, int fd, uint64_t len, const struct b3_digest *d,
		   const char *sha);
/* Waits until every upload this thread queued is done: 0, or the error of
 * the first that failed (its message recorded here). */
int s3_uploads_wait(struct s3_uploads *u);

/* The object key of a chunk: "[PREFIX/]chunks/b3/<4 hex>/<64 hex>". */
void s3_chunk_key(const struct s3_client *c, const struct b3_digest *d, char *out, size_t len);

/* Stores blob `d` (the `len` bytes of `fd`) as chunks and a chunk list;
 * *created tells whether the list is new. */
int s3_put_chunked(struct s3_client *c, int fd, uint64_t len, const struct b3_digest *d,
		   bool *created);

/* One chunk of a chunk list: its digest, where it starts in the blob. */
struct s3_chunk {
	struct b3_digest d;
	uint64_t off;
	uint32_t len;
};

/* Parses the chunk list object `key` (its `rlen` bytes in `rec`) of a
 * blob of `size` bytes into a malloc'd array. -EIO with a message if the
 * list is damaged (a bad line, lengths not adding up to `size`). */
int s3_chunk_list_parse(struct s3_client *c, const char *key, const char *rec, size_t rlen,
			uint64_t size, struct s3_chunk **out, size_t *n);

/* GETs chunk `d` of `len` bytes to offset `base` of `fd`; -EIO with a
 * message unless it hashes to `d` and has `len` bytes. */
int s3_fetch_chunk(struct s3_client *c, const struct b3_digest *d, size_t len, int fd,
		   uint64_t base);
/* The same into the `len` bytes of `buf`. */
int s3_fetch_chunk_mem(struct s3_client *c, const struct b3_digest *d, size_t len, uint8_t *buf);

/* A reader of the chunked blob `d` of `size` bytes (docs/s3.md "Reads"):
 * takes `chunks` (n of them); fetches a chunk when a read first needs it;
 * `tmp_fd` (taken) holds the fetched ones. */
int s3_lazy_reader_new(struct s3_client *c, const struct b3_digest *d, const char *key,
		       uint64_t size, struct s3_chunk *chunks, size_t n, int tmp_fd,
		       struct blob_reader **out);

/* Calls `cb` with the digest of every blob object in the bucket (under
 * the prefix), listed page by page with ListObjectsV2 (s3_list.c). */
int s3_blobs_list(struct s3_client *c, store_digest_fn cb, void *ctx);

/* The scrub's operations of an S3 blob service (docs/s3.md "Verify"):
 * its listing, and a blob read whole (so verified); -ENOENT if absent,
 * -EIO with a message naming the object if it does not verify. */
int s3_blobs_each(struct blob_service *bs, store_digest_fn cb, void *ctx);
int s3_blob_check(struct blob_service *bs, const struct b3_digest *d, uint64_t *size);

/* The blob service of the s3:// `url`, its bucket checked. */
int s3_blobs_new(const char *url, bool readonly, struct blob_service **out);
void s3_blobs_set_deadline(struct blob_service *bs, const struct deadline_rule *r);

#endif
