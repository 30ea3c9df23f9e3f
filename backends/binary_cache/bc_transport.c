/* bc_transport.c - fetching binary cache files over file://, http:// and
 * https:// (libcurl), whole or as a constant-memory stream. */
#include "backends/binary_cache/bc_internal.h"

#include "common/err.h"
#include "common/io.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_PREFIX "file://"

static bool is_http(const char *url)
{
	return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

int bc_url_check(const char *url)
{
	const char *host;

	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return sf_err(-EINVAL, "URL '%s' contains a space or control character",
				      url);
	if (!strncmp(url, FILE_PREFIX, 7)) {
		if (url[7] != '/' || url[8] == '\0')
			return sf_err(-EINVAL, "file URL '%s' is not of the form file:///ABS/PATH",
				      url);
		return 0;
	}
	if (!is_http(url))
		return sf_err(-EINVAL,
			      "unsupported URL '%s' (use file:///..., http://... or "
			      "https://...)",
			      url);
	host = strstr(url, "://") + 3;
	if (*host == '\0' || *host == '/')
		return sf_err(-EINVAL, "URL '%s' names no host", url);
	return 0;
}

/* --- libcurl --- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A configured easy handle (bc_internal.h): no signals (we are threaded), http(s) only,
 * redirects followed, the whole transfer (connect, redirects, body)
 * within `timeout_ms` (common/deadline.h), and given up earlier if it
 * stalls for a minute. */
int bc_curl_new(const char *url, uint64_t timeout_ms, char *errbuf, CURL **out)
{
	CURL *c;
	int bad = 0;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return sf_err(-EIO, "cannot initialise libcurl: %s",
			      curl_easy_strerror(curl_init_rc));
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	errbuf[0] = '\0';
	bad |= curl_easy_setopt(c, CURLOPT_URL, url);
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
				timeout_ms > LONG_MAX ? LONG_MAX : (long)timeout_ms);
	bad |= curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "storefs");
	if (bad) {
		curl_easy_cleanup(c);
		return sf_err(-EIO, "cannot set up a download of '%s'", url);
	}
	*out = c;
	return 0;
}

/* Maps a finished transfer to 0, -ENOENT (404, 403) or -EIO. */
static int curl_result(CURL *c, CURLcode res, const char *url, const char *errbuf)
{
	long status = 0;

	if (res == CURLE_OK)
		return 0;
	if (res == CURLE_HTTP_RETURNED_ERROR) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 404 || status == 403)
			return -ENOENT;
		return sf_err(-EIO, "cannot download '%s': HTTP status %ld", url, status);
	}
	if (res == CURLE_OPERATION_TIMEDOUT)
		return sf_err(-EIO, "cannot download '%s': deadline missed (%s)", url,
			      errbuf[0] ? errbuf : curl_easy_strerror(res));
	return sf_err(-EIO, "cannot download '%s': %s", url,
		      errbuf[0] ? errbuf : curl_easy_strerror(res));
}

/* --- whole files --- */

struct membuf {
	char *data;
	size_t len, max;
	bool too_big;
};

static size_t membuf_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct membuf *m = ctx;
	size_t n = size * nmemb;
	char *p;

	if (n > m->max - m->len) {
		m->too_big = true;
		return 0;
	}
	p = realloc(m->data, m->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + m->len, ptr, n);
	m->data = p;
	m->len += n;
	return n;
}

static int http_fetch_all(const char *url, uint64_t timeout_ms, struct membuf *m)
{
	char errbuf[CURL_ERROR_SIZE];
	CURLcode res;
	CURL *c;
	int rc = bc_curl_new(url, timeout_ms, errbuf, &c);

	if (rc < 0)
		return rc;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, membuf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
	res = curl_easy_perform(c);
	if (m->too_big)
		rc = sf_err(-EIO, "'%s' is larger than %zu bytes", url, m->max);
	else
		rc = curl_result(c, res, url, errbuf);
	curl_easy_cleanup(c);
	return rc;
}

static int file_open(const char *url, int *out)
{
	int fd = open(url + 7, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return -ENOENT;
	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s'", url + 7);
	*out = fd;
	return 0;
}

static int file_fetch_all(const char *url, struct membuf *m)
{
	char buf[16384];
	ssize_t n;
	int fd = -1, rc = file_open(url, &fd);

	while (rc == 0 && (n = read_retry(fd, buf, sizeof(buf))) != 0) {
		if (n < 0)
			rc = sf_err_sys((int)-n, "cannot read '%s'", url + 7);
		else if (membuf_write(buf, 1, (size_t)n, m) != (size_t)n)
			rc = m->too_big
				 ? sf_err(-EIO, "'%s' is larger than %zu bytes", url + 7, m->max)
				 : -ENOMEM;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int bc_fetch_all(const char *url, size_t max, uint64_t timeout_ms, char **out, size_t *out_len)
{
	struct membuf m = {.data = malloc(1), .max = max};
	int rc;

	if (!m.data)
		return -ENOMEM;
	rc = bc_url_check(url);
	if (rc == 0)
		rc = is_http(url) ? http_fetch_all(url, timeout_ms, &m) : file_fetch_all(url, &m);
	if (rc < 0) {
		free(m.data);
		return rc;
	}
	m.data[m.len] = '\0';
	*out = m.data;
	*out_len = m.len;
	return 0;
}

/* --- streams --- */

struct bc_source {
	int fd; /* the file, or our end of the socket pair */
	bool http;
	uint64_t bytes;
	/* http only: */
	CURL *curl;
	int wfd; /* the transfer thread's end, closed by it when done */
	pthread_t thread;
	bool joined;
	atomic_bool cancel; /* set by close(): the transfer should stop */
	CURLcode res;
	char errbuf[CURL_ERROR_SIZE];
	char *url;
};

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct bc_source *s = ctx;
	size_t n = size * nmemb, done = 0;

	/* Not write_all(): send() with MSG_NOSIGNAL, so a reader that gave
	 * up does not SIGPIPE us. */
	while (done < n) {
		ssize_t w = send(s->wfd, ptr + done, n - done, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		done += (size_t)w;
	}
	return n;
}

/* Called about once a second even while no data arrives, so a close()
 * does not wait for a stalled server. */
static int stream_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			   curl_off_t ulnow)
{
	return atomic_load(&((struct bc_source *)ctx)->cancel) ? 1 : 0;
}

static void *stream_thread(void *ctx)
{
	struct bc_source *s = ctx;

	s->res = curl_easy_perform(s->curl);
	close(s->wfd);
	s->wfd = -1;
	return NULL;
}

static int http_source_start(struct bc_source *s, const char *url, uint64_t timeout_ms)
{
	int sv[2], rc;

	rc = bc_curl_new(url, timeout_ms, s->errbuf, &s->curl);
	if (rc < 0)
		return rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return sf_err_sys(errno, "cannot create a socket pair");
	s->fd = sv[0], s->wfd = sv[1];
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	rc = pthread_create(&s->thread, NULL, stream_thread, s);
	if (rc != 0) {
		s->joined = true;
		return sf_err(-rc, "cannot start a download thread");
	}
	return 0;
}

int bc_source_open(const char *url, uint64_t timeout_ms, struct bc_source **out)
{
	struct bc_source *s;
	int rc = bc_url_check(url);

	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->url = strdup(url))) {
		free(s);
		return -ENOMEM;
	}
	s->fd = s->wfd = -1;
	s->http = is_http(url);
	s->joined = !s->http;
	rc = s->http ? http_source_start(s, url, timeout_ms) : file_open(url, &s->fd);
	if (rc < 0) {
		bc_source_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* End of the stream: only a successful transfer is a real EOF. */
static int source_finish(struct bc_source *s)
{
	if (!s->http)
		return 0;
	if (!s->joined) {
		pthread_join(s->thread, NULL);
		s->joined = true;
	}
	return curl_result(s->curl, s->res, s->url, s->errbuf);
}

int bc_source_read(void *source, void *buf, size_t len, size_t *n)
{
	struct bc_source *s = source;
	ssize_t r = read_retry(s->fd, buf, len);

	if (r < 0)
		return sf_err_sys((int)-r, "cannot read '%s'", s->url);
	if (r == 0) {
		int rc = source_finish(s);

		if (rc < 0)
			return rc;
	}
	s->bytes += (uint64_t)r;
	*n = (size_t)r;
	return 0;
}

uint64_t bc_source_bytes(const struct bc_source *s)
{
	return s->bytes;
}

void bc_source_close(struct bc_source *s)
{
	if (!s)
		return;
	/* Closing our end first makes a running transfer fail its next write. */
	atomic_store(&s->cancel, true);
	if (s->fd >= 0)
		close(s->fd);
	if (!s->joined)
		pthread_join(s->thread, NULL);
	if (s->wfd >= 0)
		close(s->wfd);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	free(s->url);
	free(s);
}
