/* s3.h - a blob service in an S3 bucket (AWS, Ceph radosgw, MinIO ...).
 *
 *	s3://BUCKET[/PREFIX]?endpoint=http(s)://HOST[:PORT]&region=REGION
 *
 * `endpoint` defaults to $AWS_ENDPOINT_URL, then to AWS's
 * https://s3.REGION.amazonaws.com; `region` to $AWS_REGION, then
 * $AWS_DEFAULT_REGION, then us-east-1. Requests are path-style
 * (ENDPOINT/BUCKET/KEY). Credentials come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or else from the profile
 * $AWS_PROFILE (default "default") of the file $AWS_SHARED_CREDENTIALS_FILE
 * (default ~/.aws/credentials). Secrets are never part of a URL, an
 * argument or a message.
 *
 * The store holds blobs only (dirs and paths are NULL); the layout and the
 * rules are in docs/s3.md. Every object read is verified against its
 * BLAKE3 digest before a byte of it is handed out; a mismatch is -EIO.
 * The service and its readers are thread-safe. */
#ifndef STOREFS_BACKENDS_S3_H
#define STOREFS_BACKENDS_S3_H

#include "common/deadline.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* A parsed s3:// URL, defaults applied. Strings are owned. */
struct s3_url {
	char *bucket;
	char *prefix;	/* "" or "a/b" (no leading or trailing '/') */
	char *endpoint; /* "http(s)://host[:port]", no trailing '/' */
	char *host;	/* "host[:port]", as sent in the Host header */
	char *region;
	unsigned timeout_s; /* `timeout=`: the base deadline; 0: the default */
};

/* -EINVAL with a message for anything but the form above (unknown
 * parameters included). */
int s3_url_parse(const char *url, struct s3_url *out);
void s3_url_release(struct s3_url *u);

/* Opens the blob service named by `url`: checks that the credentials are
 * accepted and the bucket exists (one request), so a wrong secret or a
 * missing bucket is one clear error here. STORE_OPEN_READONLY makes
 * writers fail -EROFS; the other flags mean nothing to S3. -EINVAL (URL,
 * no credentials), -EACCES (credentials refused), -ENOENT (no bucket),
 * -EIO (endpoint unreachable). */
int s3_store_open(const char *url, unsigned flags, struct store **out);

/* Deadlines of the store's requests (common/deadline.h); before use. */
void s3_store_set_deadline(struct store *st, const struct deadline_rule *r);

/* --- AWS Signature Version 4 (s3_sigv4.c), exposed for its tests --- */

struct s3_header {
	const char *name; /* lowercase */
	const char *value;
};

struct s3_sig_request {
	const char *method;
	const char *uri;		 /* path, already URI-encoded (s3_uri_encode) */
	const char *query;		 /* canonical query: encoded, sorted; "" if none */
	const struct s3_header *headers; /* every signed header, host included, any order */
	size_t n_headers;
	const char *payload_hash; /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
	const char *amz_date;	  /* YYYYMMDDTHHMMSSZ */
	const char *region;
};

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* S3's URI encoding: A-Z a-z 0-9 - _ . ~ raw, '/' raw if keep_slash,
 * everything else %XX (upper case). -ENAMETOOLONG if `cap` is short. */
int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap);

/* The canonical request, malloc'd into *out. */
int s3_sigv4_canonical(const struct s3_sig_request *rq, char **out);

/* kSigning for `date8` (YYYYMMDD), `region`, service "s3". */
void s3_sigv4_key(const char *secret, const char *date8, const char *region, uint8_t key[32]);

/* The signature (64 hex digits + NUL) of `rq`. */
int s3_sigv4_signature(const char *secret, const struct s3_sig_request *rq, char sig[65]);

/* The Authorization header's value, malloc'd into *out. */
int s3_sigv4_authorization(const char *key_id, const char *secret, const struct s3_sig_request *rq,
			   char **out);

#endif
