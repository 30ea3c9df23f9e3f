/* s3_url.c - parses s3://BUCKET[/PREFIX]?endpoint=...&region=... */
#include "backends/s3/s3.h"

#include "common/deadline.h"
#include "common/err.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORM "s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=REGION[&timeout=SECONDS]"

/* What any S3 server may call a bucket: 1-255 of [A-Za-z0-9._-] (AWS's
 * legacy rules; today's AWS buckets are the 3-63 lowercase subset, and
 * Ceph's relaxed names allow the rest), not "." or "..". Such a name is
 * one path segment needing no encoding. */
static bool bucket_ok(const char *b, size_t n)
{
	if (n < 1 || n > 255 || (n == 1 && b[0] == '.') || (n == 2 && !strncmp(b, "..", 2)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && !strchr("._-", b[i]))
			return false;
	return true;
}

/* A prefix is path segments of unreserved characters, so keys need no
 * encoding either and no segment can be "." or "..". */
static bool prefix_ok(const char *p)
{
	if (*p == '/' || (*p && p[strlen(p) - 1] == '/') || strstr(p, "//"))
		return false;
	for (const char *c = p; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-_./", *c))
			return false;
	return !strstr(p, "..") && strcmp(p, ".") && strncmp(p, "./", 2) && !strstr(p, "/./") &&
	       !(strlen(p) >= 2 && !strcmp(p + strlen(p) - 2, "/."));
}

static int hexval(char c)
{
	return isdigit((unsigned char)c)    ? c - '0'
	       : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10
					    : -1;
}

/* A query value, %XX-decoded, malloc'd. */
static int decode(const char *s, size_t n, char **out)
{
	char *d = malloc(n + 1), *o = d;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else if (s[i] == '%' || s[i] == '\0') {
			free(d);
			return sf_err(-EINVAL, "bad %%-escape in an s3:// URL parameter");
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*out = d;
	return 0;
}

/* endpoint = http(s)://HOST[:PORT][/]; sets u->endpoint and u->host. */
static int set_endpoint(struct s3_url *u, const char *e)
{
	const char *host = !strncmp(e, "http://", 7)	? e + 7
			   : !strncmp(e, "https://", 8) ? e + 8
							: NULL;
	size_t n;

	if (!host)
		return sf_err(-EINVAL, "S3 endpoint '%s' is not http://HOST[:PORT] or https://...",
			      e);
	n = strcspn(host, "/");
	if (n == 0 || (host[n] && host[n + 1]))
		return sf_err(-EINVAL, "S3 endpoint '%s' must be http(s)://HOST[:PORT] (no path)",
			      e);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)host[i]) && !strchr(".-:[]", host[i]))
			return sf_err(-EINVAL, "S3 endpoint '%s' has a bad host", e);
	u->endpoint = strndup(e, (size_t)(host - e) + n);
	u->host = strndup(host, n);
	return u->endpoint && u->host ? 0 : -ENOMEM;
}

/* timeout=SECONDS: the base deadline of every request (docs/limits.md). */
static int set_timeout(struct s3_url *u, const char *v, size_t n)
{
	if (u->timeout_s)
		return sf_err(-EINVAL, "parameter 'timeout' given twice in an s3:// URL");
	if (deadline_parse_s(v, n, &u->timeout_s) < 0)
		return sf_err(-EINVAL,
			      "timeout in an s3:// URL must be 1 to %d seconds, not '%.*s'",
			      DEADLINE_BASE_S_MAX, (int)n, v);
	return 0;
}

static int set_param(struct s3_url *u, const char *p, size_t n, char **endpoint)
{
	const char *eq = memchr(p, '=', n);
	char **dst = NULL;

	if (eq && (size_t)(eq - p) == 8 && !strncmp(p, "endpoint", 8))
		dst = endpoint;
	else if (eq && (size_t)(eq - p) == 6 && !strncmp(p, "region", 6))
		dst = &u->region;
	else if (eq && (size_t)(eq - p) == 7 && !strncmp(p, "timeout", 7))
		return set_timeout(u, eq + 1, n - 8);
	if (!dst)
		return sf_err(-EINVAL, "unknown parameter '%.*s' in an s3:// URL (use " FORM ")",
			      (int)(eq ? (size_t)(eq - p) : n), p);
	if (*dst)
		return sf_err(-EINVAL, "parameter '%.*s' given twice in an s3:// URL",
			      (int)(eq - p), p);
	return decode(eq + 1, n - (size_t)(eq + 1 - p), dst);
}

static int parse_query(struct s3_url *u, const char *q, char **endpoint)
{
	int rc = 0;

	while (rc == 0 && *q) {
		size_t n = strcspn(q, "&");

		if (n)
			rc = set_param(u, q, n, endpoint);
		q += n + (q[n] == '&');
	}
	return rc;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int apply_defaults(struct s3_url *u, char *endpoint)
{
	char aws[300];
	const char *e = endpoint ? endpoint : env("AWS_ENDPOINT_URL");

	if (!u->region) {
		const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");

		u->region = strdup(r ? r : "us-east-1");
		if (!u->region)
			return -ENOMEM;
	}
	for (const char *c = u->region; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-')
			return sf_err(-EINVAL, "S3 region '%s' is not a region name", u->region);
	if (!*u->region || strlen(u->region) > 64)
		return sf_err(-EINVAL, "S3 region '%s' is not a region name", u->region);
	if (!e) {
		snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com", u->region);
		e = aws;
	}
	return set_endpoint(u, e);
}

static int parse(const char *url, struct s3_url *u)
{
	const char *b = url + 5, *q = strchr(b, '?');
	size_t blen = strcspn(b, "/?");
	char *endpoint = NULL;
	int rc;

	if (!bucket_ok(b, blen))
		return sf_err(-EINVAL, "'%s' names no valid S3 bucket (use " FORM ")", url);
	u->bucket = strndup(b, blen);
	u->prefix = b[blen] == '/' ? strndup(b + blen + 1,
					     q ? (size_t)(q - b) - blen - 1 : strlen(b + blen + 1))
				   : strdup("");
	if (!u->bucket || !u->prefix)
		return -ENOMEM;
	if (!prefix_ok(u->prefix) || (b[blen] == '/' && !*u->prefix))
		return sf_err(-EINVAL,
			      "S3 prefix '%s' in '%s' is not of the form a/b (letters, "
			      "digits, '-', '_', '.')",
			      u->prefix, url);
	rc = q ? parse_query(u, q + 1, &endpoint) : 0;
	if (rc == 0)
		rc = apply_defaults(u, endpoint);
	free(endpoint);
	return rc;
}

int s3_url_parse(const char *url, struct s3_url *out)
{
	struct s3_url u = {0};
	int rc;

	if (strncmp(url, "s3://", 5))
		return sf_err(-EINVAL, "'%s' is not an s3:// URL", url);
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return sf_err(-EINVAL, "s3:// URL contains a space or control character");
	rc = parse(url, &u);
	if (rc < 0) {
		s3_url_release(&u);
		return rc;
	}
	*out = u;
	return 0;
}

void s3_url_release(struct s3_url *u)
{
	free(u->bucket);
	free(u->prefix);
	free(u->endpoint);
	free(u->host);
	free(u->region);
	*u = (struct s3_url){0};
}
