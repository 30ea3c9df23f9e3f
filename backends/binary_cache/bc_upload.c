/* bc_upload.c - a Nix binary cache as the destination of `storefs copy`
 * (docs/narinfo.md §6, in the order Nix's client uses): the narinfo is
 * asked for (a cache that has it is done), a HEAD of the NAR file skips a
 * NAR the cache holds already, else the NAR is PUT uncompressed while it
 * is rendered, and last the narinfo is PUT. The upload token goes as a
 * Bearer credential and nowhere else: not in URLs, messages or logs. */
#include "backends/binary_cache/bc_internal.h"

#include "common/deadline.h"
#include "common/err.h"
#include "common/io.h"
#include "store/nar.h"
#include "store/narinfo.h"
#include "store/nixbase32.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAR_NAME_LEN (4 + 52 + 4) /* "nar/" nix32(sha256) ".nar" */
/* Of an error response, the part kept for the message. */
#define REPLY_MAX 512

int bc_path_has(const char *origin, const struct store_path *p, bool *found)
{
	char hash[STORE_PATH_HASH_CHARS + 1], *url, *text = NULL;
	size_t len;
	int rc;

	store_path_hash_part(p->digest, hash);
	if (asprintf(&url, "%s/%s.narinfo", origin, hash) < 0)
		return -ENOMEM;
	rc = bc_fetch_all(url, BC_NARINFO_MAX, deadline_ms(NULL, 0), &text, &len);
	free(url);
	free(text);
	*found = rc == 0;
	return rc == -ENOENT ? 0 : rc;
}

/* --- one request --- */

struct reply {
	char text[REPLY_MAX + 1];
	size_t len;
};

static size_t reply_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct reply *r = ctx;
	size_t n = size * nmemb, take = n < REPLY_MAX - r->len ? n : REPLY_MAX - r->len;

	memcpy(r->text + r->len, ptr, take);
	r->len += take;
	r->text[r->len] = '\0';
	return n;
}

/* What an HTTP status of an upload means to the user (the server's own
 * words, when it sent some, make the rest). */
static int upload_status(const char *url, long status, struct reply *r)
{
	const char *why = status == 401	  ? "the cache wants the upload token "
					    "(add ?upload-token-file=FILE to the URL)"
			  : status == 403 ? "the cache refused the upload (a wrong token, or "
					    "uploads are disabled)"
					  : "the cache refused it";

	r->text[strcspn(r->text, "\r\n")] = '\0';
	return sf_err(-EIO, "cannot upload '%s': HTTP status %ld: %s%s%s", url, status, why,
		      r->len ? ": " : "", r->text);
}

/* A handle for `method` on `url` (no redirects: the credential stays with
 * the host it was given for), carrying `token` if any. */
static int request_new(const char *url, const char *token, uint64_t timeout_ms, char *errbuf,
		       struct reply *r, CURL **out)
{
	int bad = 0, rc = bc_curl_new(url, timeout_ms, errbuf, out);

	if (rc < 0)
		return rc;
	bad |= curl_easy_setopt(*out, CURLOPT_FAILONERROR, 0L);
	bad |= curl_easy_setopt(*out, CURLOPT_FOLLOWLOCATION, 0L);
	bad |= curl_easy_setopt(*out, CURLOPT_WRITEFUNCTION, reply_write);
	bad |= curl_easy_setopt(*out, CURLOPT_WRITEDATA, r);
	if (token) {
		bad |= curl_easy_setopt(*out, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		bad |= curl_easy_setopt(*out, CURLOPT_XOAUTH2_BEARER, token);
	}
	if (bad) {
		curl_easy_cleanup(*out);
		return sf_err(-EIO, "cannot set up a request to '%s'", url);
	}
	return 0;
}

/* Runs the request: 0 for a 2xx answer, -ENOENT for 404 if `absent_ok`,
 * -EIO with a message otherwise. */
static int request_run(CURL *c, const char *url, const char *errbuf, struct reply *r,
		       bool absent_ok)
{
	CURLcode res = curl_easy_perform(c);
	long status = 0;

	if (res != CURLE_OK)
		return sf_err(-EIO, "cannot upload '%s': %s", url,
			      errbuf[0] ? errbuf : curl_easy_strerror(res));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	if (status == 404 && absent_ok)
		return -ENOENT;
	return upload_status(url, status, r);
}

/* 0 if the cache has the file at `url`, -ENOENT if not. */
static int head(const char *url, uint64_t timeout_ms)
{
	char errbuf[CURL_ERROR_SIZE];
	struct reply r = {0};
	CURL *c;
	int rc = request_new(url, NULL, timeout_ms, errbuf, &r, &c);

	if (rc < 0)
		return rc;
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	rc = request_run(c, url, errbuf, &r, true);
	curl_easy_cleanup(c);
	return rc;
}

static int put_text(const char *url, const char *token, const char *type, const char *text,
		    size_t len)
{
	char errbuf[CURL_ERROR_SIZE], ctype[64];
	struct curl_slist *hdr;
	struct reply r = {0};
	CURL *c;
	int rc = request_new(url, token, deadline_ms(NULL, len), errbuf, &r, &c);

	if (rc < 0)
		return rc;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", type);
	hdr = curl_slist_append(NULL, ctype);
	if (!hdr) {
		curl_easy_cleanup(c);
		return -ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = request_run(c, url, errbuf, &r, false);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	return rc;
}

/* --- the NAR, rendered by a thread while curl sends it --- */

struct nar_body {
	struct store *src;
	const struct path_info *pi;
	int rfd, wfd;	   /* curl reads rfd; the renderer writes wfd */
	uint64_t left;	   /* bytes curl still expects */
	int render_rc;	   /* the renderer's result */
	bool upload_ended; /* the renderer stopped because the transfer had */
	struct nar_summary sum;
	char msg[256]; /* its message (errors are per thread) */
};

static int body_send(void *ctx, const void *buf, size_t len)
{
	struct nar_body *b = ctx;
	const char *p = buf;

	/* send(), not write_all(): MSG_NOSIGNAL, as curl may have given up. */
	while (len > 0) {
		ssize_t w = send(b->wfd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			b->upload_ended = true;
		if (w < 0)
			return sf_err_sys(errno, "cannot pass the NAR on to the upload");
		p += w, len -= (size_t)w;
	}
	return 0;
}

static void *render_thread(void *ctx)
{
	struct nar_body *b = ctx;

	b->render_rc = nar_render(b->src->blobs, b->src->dirs, &b->pi->root, body_send, b, &b->sum);
	if (b->render_rc < 0)
		snprintf(b->msg, sizeof(b->msg), "%s", sf_errmsg(b->render_rc));
	close(b->wfd);
	b->wfd = -1;
	return NULL;
}

/* An end before NarSize bytes aborts the transfer (the renderer failed),
 * so the cache never gets a short NAR as if it were whole. */
static size_t body_read(char *buf, size_t size, size_t nmemb, void *ctx)
{
	struct nar_body *b = ctx;
	size_t want = size * nmemb;
	ssize_t n;

	if (want > b->left)
		want = (size_t)b->left;
	if (want == 0)
		return 0;
	n = read_retry(b->rfd, buf, want);
	if (n <= 0)
		return CURL_READFUNC_ABORT;
	b->left -= (uint64_t)n;
	return (size_t)n;
}

static int put_nar_run(CURL *c, const char *url, const char *errbuf, struct reply *r,
		       struct nar_body *b)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, render_thread, b);

	if (rc != 0) {
		close(b->wfd);
		return sf_err(-rc, "cannot start the NAR renderer");
	}
	rc = request_run(c, url, errbuf, r, false);
	/* The renderer blocked on a transfer that ended gets EPIPE now. */
	close(b->rfd);
	b->rfd = -1;
	pthread_join(t, NULL);
	/* The first failure is the one to tell. */
	if (b->render_rc < 0 && (!b->upload_ended || rc == 0))
		return sf_err(b->render_rc, "cannot render the NAR for '%s': %s", url, b->msg);
	if (rc < 0)
		return rc;
	if ((b->sum.size != b->pi->nar_size || memcmp(b->sum.sha256, b->pi->nar_sha256, 32)))
		return sf_err(-EIO, "the tree of '%s' does not render to its NarHash/NarSize", url);
	return 0;
}

static int put_nar(const char *url, const char *token, struct store *src,
		   const struct path_info *pi)
{
	char errbuf[CURL_ERROR_SIZE];
	struct nar_body b = {.src = src, .pi = pi, .left = pi->nar_size};
	struct curl_slist *hdr;
	struct reply r = {0};
	int sv[2], rc;
	CURL *c;

	rc = request_new(url, token, deadline_ms(NULL, pi->nar_size), errbuf, &r, &c);
	if (rc < 0)
		return rc;
	hdr = curl_slist_append(NULL, "Content-Type: application/x-nix-nar");
	if (!hdr || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = hdr ? sf_err_sys(errno, "cannot create a socket pair") : -ENOMEM;
	} else {
		b.rfd = sv[0], b.wfd = sv[1];
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, body_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &b);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)pi->nar_size);
		rc = put_nar_run(c, url, errbuf, &r, &b);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

static int put_narinfo(const char *origin, const char *token, const struct path_info *pi,
		       const char *nar_name)
{
	struct nix_hash fh = {.algo = NIX_HASH_SHA256};
	char hash[STORE_PATH_HASH_CHARS + 1], *url = NULL, *text = NULL;
	struct narinfo *ni;
	size_t len;
	int rc;

	memcpy(fh.digest, pi->nar_sha256, 32);
	rc = narinfo_from_path_info(pi, nar_name, "none", &fh, true, pi->nar_size, &ni);
	if (rc < 0)
		return rc;
	rc = narinfo_write(ni, &text, &len);
	narinfo_free(ni);
	store_path_hash_part(pi->path.digest, hash);
	if (rc == 0 && asprintf(&url, "%s/%s.narinfo", origin, hash) < 0)
		rc = -ENOMEM, url = NULL;
	if (rc == 0)
		rc = put_text(url, token, "text/x-nix-narinfo", text, len);
	free(url);
	free(text);
	return rc;
}

int bc_nar_put(const char *origin, const char *token, struct store *src, const struct path_info *pi,
	       uint64_t *sent)
{
	char nar_name[NAR_NAME_LEN + 1], *url;
	int rc;

	if (strncmp(origin, "http://", 7) && strncmp(origin, "https://", 8))
		return sf_err(-ENOTSUP, "cannot upload to '%s': uploads go to http(s) caches",
			      origin);
	memcpy(nar_name, "nar/", 4);
	nixbase32_encode(pi->nar_sha256, 32, nar_name + 4);
	memcpy(nar_name + 4 + 52, ".nar", 5);
	if (asprintf(&url, "%s/%s", origin, nar_name) < 0)
		return -ENOMEM;
	*sent = 0;
	rc = head(url, deadline_ms(NULL, 0));
	if (rc == -ENOENT) {
		rc = put_nar(url, token, src, pi);
		if (rc == 0)
			*sent = pi->nar_size;
	}
	free(url);
	return rc < 0 ? rc : put_narinfo(origin, token, pi, nar_name);
}
