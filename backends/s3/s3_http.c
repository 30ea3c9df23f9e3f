/* s3_http.c - one bucket's signed HTTP requests over libcurl: a small pool
 * of easy handles (their connections are kept alive), SigV4 on every
 * request, retries with backoff inside the request's deadline. */
#include "backends/s3/s3_internal.h"

#include "common/err.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_ATTEMPTS 5
#define BACKOFF_MS   100 /* doubled after each failed attempt */
#define ERRBODY_MAX  4096

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_client_init(struct s3_client *c, const char *url)
{
	int rc;

	*c = (struct s3_client){0};
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return sf_err(-EIO, "cannot initialise libcurl: %s",
			      curl_easy_strerror(curl_init_rc));
	rc = s3_url_parse(url, &c->url);
	c->rule.base_s = c->url.timeout_s;
	if (rc == 0)
		rc = s3_creds_load(&c->creds);
	if (rc < 0) {
		s3_url_release(&c->url);
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void s3_client_release(struct s3_client *c)
{
	for (unsigned i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	s3_creds_release(&c->creds);
	s3_url_release(&c->url);
}

static CURL *handle_get(struct s3_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h); /* keeps the connection cache */
	return h ? h : curl_easy_init();
}

static void handle_put(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_idle < S3_IDLE_HANDLES) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

static void object_key(const struct s3_client *c, const char *kind, const struct b3_digest *d,
		       char *out, size_t len)
{
	char hex[B3_HEX_LEN + 1];

	b3_digest_to_hex(d, hex);
	snprintf(out, len, "%s%s%s/b3/%.4s/%s", c->url.prefix, *c->url.prefix ? "/" : "", kind, hex,
		 hex);
}

void s3_blob_key(const struct s3_client *c, const struct b3_digest *d, char *out, size_t len)
{
	object_key(c, "blobs", d, out, len);
}

void s3_chunk_key(const struct s3_client *c, const struct b3_digest *d, char *out, size_t len)
{
	object_key(c, "chunks", d, out, len);
}

/* --- one attempt --- */

struct attempt {
	const struct s3_request *rq;
	const char *path; /* canonical URI */
	CURL *h;
	uint64_t sent; /* PUT: body bytes handed to curl */
	char errbody[ERRBODY_MAX];
	size_t errlen;
	int sink_rc; /* the sink's failure, if any */
	struct s3_response *res;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct attempt *a = ctx;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
	if (status / 100 == 2 && a->rq->sink) {
		a->sink_rc = a->rq->sink->write(a->rq->sink->ctx, p, n);
		return a->sink_rc < 0 ? 0 : n;
	}
	if (n > sizeof(a->errbody) - 1 - a->errlen)
		n = sizeof(a->errbody) - 1 - a->errlen; /* the start names the error */
	memcpy(a->errbody + a->errlen, p, n);
	a->errlen += n;
	return size * nmemb;
}

static size_t on_upload(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct attempt *a = ctx;
	uint64_t left = a->rq->body_len - a->sent;
	size_t n = size * nmemb < left ? size * nmemb : (size_t)left;
	ssize_t got = (ssize_t)n;

	if (a->rq->body_mem && n)
		memcpy(p, (const uint8_t *)a->rq->body_mem + a->sent, n);
	else if (n)
		got = pread(a->rq->body_fd, p, n, (off_t)(a->rq->body_off + a->sent));
	if (got < 0 || (size_t)got != n)
		return CURL_READFUNC_ABORT;
	a->sent += n;
	return n;
}

#define META_SIZE "x-amz-meta-blob-size:"

/* Picks x-amz-meta-blob-size out of the answer's headers. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct attempt *a = ctx;
	size_t n = size * nmemb, k = sizeof(META_SIZE) - 1;
	char num[24], *end;
	unsigned long long v;

	if (n > k && n - k < sizeof(num) && !strncasecmp(p, META_SIZE, k)) {
		memcpy(num, p + k, n - k);
		num[n - k] = '\0';
		errno = 0;
		v = strtoull(num, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (!errno && !*end && end != num && v <= INT64_MAX)
			a->res->blob_size = (int64_t)v;
	}
	return n;
}

static int on_seek(void *ctx, curl_off_t off, int origin)
{
	struct attempt *a = ctx;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > a->rq->body_len)
		return CURL_SEEKFUNC_FAIL;
	a->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* "/BUCKET[/PREFIX/KEY]" (keys are made of unreserved characters and '/'
 * by construction, s3_url.c, so encoding leaves them as they are). */
static int object_path(const struct s3_client *c, const char *key, char *out, size_t len)
{
	char raw[1024];

	if ((size_t)snprintf(raw, sizeof(raw), "/%s%s%s", c->url.bucket, key ? "/" : "",
			     key ? key : "") >= sizeof(raw))
		return sf_err(-ENAMETOOLONG, "S3 key '%s' is too long", key);
	return s3_uri_encode(raw, 1, out, len);
}

static void amz_now(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *l;

	if ((size_t)snprintf(line, sizeof(line), "%s:%s%s", name, *value ? " " : "", value) >=
	    sizeof(line))
		return sf_err(-EINVAL, "S3 header '%s' is too long", name);
	l = curl_slist_append(*list, line);
	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

/* The signed headers of `rq`, as a curl list. */
static int sign_headers(struct s3_client *c, const struct s3_request *rq, const char *path,
			struct curl_slist **out)
{
	char date[17], *auth = NULL;
	const char *hash = rq->body_sha256 ? rq->body_sha256 : S3_EMPTY_SHA256;
	struct s3_header h[6] = {
	    {"host", c->url.host}, {"x-amz-content-sha256", hash}, {"x-amz-date", date}};
	size_t n = 3;
	struct curl_slist *list = NULL;
	int rc;

	amz_now(date);
	if (rq->if_none_match)
		h[n++] = (struct s3_header){"if-none-match", "*"};
	if (c->creds.token)
		h[n++] = (struct s3_header){"x-amz-security-token", c->creds.token};
	if (rq->blob_size)
		h[n++] = (struct s3_header){"x-amz-meta-blob-size", rq->blob_size};
	rc = s3_sigv4_authorization(c->creds.key_id, c->creds.secret,
				    &(struct s3_sig_request){.method = rq->method,
							     .uri = path,
							     .query = rq->query ? rq->query : "",
							     .headers = h,
							     .n_headers = n,
							     .payload_hash = hash,
							     .amz_date = date,
							     .region = c->url.region},
				    &auth);
	if (rc < 0)
		return rc;
	/* "Expect:" turns off 100-continue: one round trip less per PUT. */
	rc = add_header(&list, "expect", "");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = add_header(&list, h[i].name, h[i].value);
	if (rc == 0)
		rc = add_header(&list, "authorization", auth);
	free(auth);
	if (rc < 0) {
		curl_slist_free_all(list);
		return rc;
	}
	*out = list;
	return 0;
}

static int setup(struct s3_client *c, struct attempt *a, const char *url, uint64_t timeout_ms,
		 struct curl_slist *headers, char *errbuf)
{
	const struct s3_request *rq = a->rq;
	CURL *h = a->h;
	int bad = 0;

	errbuf[0] = '\0';
	bad |= curl_easy_setopt(h, CURLOPT_URL, url);
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				timeout_ms < 30000 ? (long)timeout_ms : 30000L);
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
				timeout_ms > LONG_MAX ? LONG_MAX : (long)timeout_ms);
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "storefs");
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	if (!strcmp(rq->method, "HEAD")) {
		bad |= curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(rq->method, "PUT")) {
		bad |= curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		bad |= curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
		bad |= curl_easy_setopt(h, CURLOPT_READDATA, a);
		bad |= curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		bad |= curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
		bad |= curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
	}
	return bad ? sf_err(-EIO, "cannot set up an S3 request to '%s'", c->url.endpoint) : 0;
}

/* The <Code> element of an S3 error body. */
static void error_code(const char *body, char *out, size_t len)
{
	const char *s = strstr(body, "<Code>"), *e = s ? strstr(s, "</Code>") : NULL;

	out[0] = '\0';
	if (s && e && (size_t)(e - s - 6) < len)
		snprintf(out, len, "%.*s", (int)(e - s - 6), s + 6);
}

/* One try: 0 and the answer in a->res, or the CURLcode in *cres. */
static int attempt_once(struct s3_client *c, struct attempt *a, const char *url,
			uint64_t timeout_ms, CURLcode *cres, char *errbuf)
{
	struct curl_slist *headers = NULL;
	curl_off_t cl = -1;
	int rc;

	a->sent = 0;
	a->errlen = 0;
	a->sink_rc = 0;
	a->res->blob_size = -1;
	if (a->rq->sink && (rc = a->rq->sink->reset(a->rq->sink->ctx)) < 0)
		return rc;
	rc = sign_headers(c, a->rq, a->path, &headers);
	if (rc == 0)
		rc = setup(c, a, url, timeout_ms, headers, errbuf);
	if (rc == 0)
		*cres = curl_easy_perform(a->h);
	curl_slist_free_all(headers);
	if (rc < 0)
		return rc;
	if (a->sink_rc < 0)
		return a->sink_rc;
	a->errbody[a->errlen] = '\0';
	curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &a->res->status);
	curl_easy_getinfo(a->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	a->res->content_length = cl >= 0 ? (uint64_t)cl : 0;
	error_code(a->errbody, a->res->code, sizeof(a->res->code));
	return 0;
}

/* Worth another try: the server failed, or the transport did. */
static bool transient(CURLcode cres, long status)
{
	if (cres == CURLE_OK)
		return status >= 500 || status == 429;
	return cres != CURLE_OUT_OF_MEMORY && cres != CURLE_ABORTED_BY_CALLBACK &&
	       cres != CURLE_READ_ERROR && cres != CURLE_WRITE_ERROR;
}

static int build_url(struct s3_client *c, const struct s3_request *rq, char *path, size_t plen,
		     char *out, size_t len)
{
	int rc = object_path(c, rq->key, path, plen);

	if (rc == 0 && (size_t)snprintf(out, len, "%s%s%s%s", c->url.endpoint, path,
					rq->query ? "?" : "", rq->query ? rq->query : "") >= len)
		rc = sf_err(-ENAMETOOLONG, "S3 URL for '%s' is too long", path);
	return rc;
}

static int failed(struct s3_client *c, const struct s3_request *rq, CURLcode cres,
		  const char *errbuf, int tries)
{
	return sf_err(-EIO, "S3 %s of '%s' at '%s' failed after %d tries: %s%s", rq->method,
		      rq->key ? rq->key : c->url.bucket, c->url.endpoint, tries,
		      cres == CURLE_OPERATION_TIMEDOUT ? "deadline missed: " : "",
		      errbuf[0] ? errbuf : curl_easy_strerror(cres));
}

int s3_send(struct s3_client *c, const struct s3_request *rq, struct s3_response *res)
{
	uint64_t end = deadline_now_ms() + deadline_ms(&c->rule, rq->expect_bytes + rq->body_len);
	struct attempt a = {.rq = rq, .res = res};
	char path[2048], url[4096], errbuf[CURL_ERROR_SIZE];
	CURLcode cres = CURLE_OK;
	int rc = build_url(c, rq, path, sizeof(path), url, sizeof(url)), tries = 0;

	if (rc < 0)
		return rc;
	a.path = path;
	a.h = handle_get(c);
	if (!a.h)
		return -ENOMEM;
	for (;;) {
		uint64_t now = deadline_now_ms(), backoff = (uint64_t)BACKOFF_MS << tries;

		cres = CURLE_OPERATION_TIMEDOUT;
		errbuf[0] = '\0';
		*res = (struct s3_response){.blob_size = -1};
		if (now >= end)
			break;
		rc = attempt_once(c, &a, url, end - now, &cres, errbuf);
		tries++;
		if (rc < 0 || !transient(cres, res->status) || tries == MAX_ATTEMPTS ||
		    deadline_now_ms() + backoff >= end)
			break;
		usleep((useconds_t)backoff * 1000);
	}
	if (rc == 0 && cres != CURLE_OK)
		rc = failed(c, rq, cres, errbuf, tries);
	if (rc == 0 && res->status >= 500)
		rc = sf_err(-EIO, "S3 %s of '%s' at '%s': HTTP %ld %s after %d tries", rq->method,
			    rq->key ? rq->key : c->url.bucket, c->url.endpoint, res->status,
			    res->code, tries);
	handle_put(c, a.h);
	return rc;
}

/* What a refusal of our credentials means, by S3's error code. */
static const char *refusal(const char *code)
{
	if (!strcmp(code, "SignatureDoesNotMatch"))
		return "the secret access key is wrong (check AWS_SECRET_ACCESS_KEY)";
	if (!strcmp(code, "InvalidAccessKeyId"))
		return "the access key id is unknown (check AWS_ACCESS_KEY_ID)";
	if (!strcmp(code, "RequestTimeTooSkewed"))
		return "this machine's clock is too far off";
	return "access denied";
}

int s3_check_bucket(struct s3_client *c)
{
	struct s3_response r;
	int rc = s3_send(c, &(struct s3_request){.method = "GET", .query = "location="}, &r);

	if (rc < 0)
		return rc;
	if (r.status == 200)
		return 0;
	if (r.status == 404)
		return sf_err(-ENOENT, "S3 bucket '%s' does not exist at '%s'%s%s", c->url.bucket,
			      c->url.endpoint, r.code[0] ? ": " : "", r.code);
	if (r.status == 403)
		return sf_err(-EACCES, "S3 at '%s' refused key id '%s' for bucket '%s': %s (%s)",
			      c->url.endpoint, c->creds.key_id, c->url.bucket, refusal(r.code),
			      r.code[0] ? r.code : "HTTP 403");
	return sf_err(-EIO, "S3 bucket '%s' at '%s': HTTP %ld%s%s", c->url.bucket, c->url.endpoint,
		      r.status, r.code[0] ? " " : "", r.code);
}
