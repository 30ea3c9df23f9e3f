/* s3_sigv4.c - AWS Signature Version 4 for S3 requests (docs/s3.md).
 *
 * Our own signer rather than libcurl's CURLOPT_AWS_SIGV4: Debian 12's
 * libcurl 7.88.1 neither sends x-amz-content-sha256 nor sorts or encodes
 * the query, and gives no way to sign a header it adds itself, so every
 * request would carry workarounds whose mistakes show only as 403s from a
 * server. Here the canonical request is built in one place and checked
 * offline against AWS's published S3 examples (tests/unit/test_s3.c). */
#include "backends/s3/s3.h"

#include "common/encoding.h"
#include "common/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char UNRESERVED[] = "-_.~";

int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool raw = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			   (*p >= '0' && *p <= '9') || (*p && strchr(UNRESERVED, *p)) ||
			   (keep_slash && *p == '/');

		if (o + (raw ? 1 : 3) >= cap)
			return sf_err(-ENAMETOOLONG, "S3 key or query is too long");
		if (raw) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	if (o >= cap)
		return sf_err(-ENAMETOOLONG, "S3 key or query is too long");
	out[o] = '\0';
	return 0;
}

static int header_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct s3_header *const *)a)->name,
		      (*(const struct s3_header *const *)b)->name);
}

/* The headers sorted by name, as pointers into rq->headers. */
static const struct s3_header **sorted_headers(const struct s3_sig_request *rq)
{
	const struct s3_header **v = calloc(rq->n_headers ? rq->n_headers : 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < rq->n_headers; i++)
		v[i] = &rq->headers[i];
	qsort(v, rq->n_headers, sizeof(*v), header_cmp);
	return v;
}

/* A value with its leading and trailing blanks removed, as SigV4 wants
 * (our values have no inner runs of blanks to collapse). */
static void put_trimmed(FILE *f, const char *v)
{
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	fwrite(v, 1, n, f);
}

static void put_signed_names(FILE *f, const struct s3_header **h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? ";" : "", h[i]->name);
}

static int build(const struct s3_sig_request *rq, bool names_only, char **out)
{
	const struct s3_header **h = sorted_headers(rq);
	size_t len = 0;
	char *buf = NULL;
	FILE *f;

	if (!h)
		return -ENOMEM;
	f = open_memstream(&buf, &len);
	if (!f) {
		free(h);
		return -ENOMEM;
	}
	if (names_only) {
		put_signed_names(f, h, rq->n_headers);
	} else {
		fprintf(f, "%s\n%s\n%s\n", rq->method, rq->uri, rq->query);
		for (size_t i = 0; i < rq->n_headers; i++) {
			fprintf(f, "%s:", h[i]->name);
			put_trimmed(f, h[i]->value);
			fputc('\n', f);
		}
		fputc('\n', f);
		put_signed_names(f, h, rq->n_headers);
		fprintf(f, "\n%s", rq->payload_hash);
	}
	free(h);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}

int s3_sigv4_canonical(const struct s3_sig_request *rq, char **out)
{
	return build(rq, false, out);
}

static void hmac(const uint8_t *key, size_t klen, const char *msg, uint8_t out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void s3_sigv4_key(const char *secret, const char *date8, const char *region, uint8_t key[32])
{
	size_t slen = strlen(secret);
	uint8_t *k0 = malloc(slen + 4), k[32];

	if (!k0) { /* a 4-byte allocation; a zero key fails the request cleanly */
		memset(key, 0, 32);
		return;
	}
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen);
	hmac(k0, slen + 4, date8, k);
	OPENSSL_cleanse(k0, slen + 4);
	free(k0);
	hmac(k, 32, region, k);
	hmac(k, 32, "s3", k);
	hmac(k, 32, "aws4_request", key);
	OPENSSL_cleanse(k, sizeof(k));
}

static void sha256_hex(const char *s, char out[65])
{
	uint8_t md[32];
	unsigned int n = 32;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

int s3_sigv4_signature(const char *secret, const struct s3_sig_request *rq, char sig[65])
{
	char *canon, creq_hash[65], date8[9], sts[256];
	uint8_t key[32], mac[32];
	int rc = s3_sigv4_canonical(rq, &canon);

	if (rc < 0)
		return rc;
	sha256_hex(canon, creq_hash);
	free(canon);
	if (strlen(rq->amz_date) != 16)
		return sf_err(-EINVAL, "bad x-amz-date '%s'", rq->amz_date);
	memcpy(date8, rq->amz_date, 8);
	date8[8] = '\0';
	if ((size_t)snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s",
			     rq->amz_date, date8, rq->region, creq_hash) >= sizeof(sts))
		return sf_err(-EINVAL, "S3 region '%s' is too long", rq->region);
	s3_sigv4_key(secret, date8, rq->region, key);
	hmac(key, 32, sts, mac);
	OPENSSL_cleanse(key, sizeof(key));
	hex_encode(mac, 32, sig);
	return 0;
}

int s3_sigv4_authorization(const char *key_id, const char *secret, const struct s3_sig_request *rq,
			   char **out)
{
	char sig[65], *names, *auth;
	int rc = s3_sigv4_signature(secret, rq, sig);

	if (rc == 0)
		rc = build(rq, true, &names);
	if (rc < 0)
		return rc;
	rc = asprintf(&auth,
		      "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request,SignedHeaders=%s,"
		      "Signature=%s",
		      key_id, rq->amz_date, rq->region, names, sig);
	free(names);
	if (rc < 0)
		return -ENOMEM;
	*out = auth;
	return 0;
}
