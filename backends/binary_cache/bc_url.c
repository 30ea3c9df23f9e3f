/* bc_url.c - parses "nix+http(s)://HOST/PATH?trusted-public-keys=...&cache=DIR"
 * store URLs (the registry opens what they name). */
#include "backends/binary_cache/binary_cache.h"

#include "common/err.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10);
}

/* Percent-decodes s[0..len) into a malloc'd string ('+' stays '+': base64
 * keys contain it). */
static int pct_decode(const char *s, size_t len, char **out)
{
	char *d = malloc(len + 1), *p = d;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			*p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else if (s[i] == '%') {
			free(d);
			return sf_err(-EINVAL, "bad percent escape in store URL parameter '%.*s'",
				      (int)len, s);
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	*out = d;
	return 0;
}

static int url_param(struct binary_cache_url *o, const char *kv, size_t len)
{
	const char *eq = memchr(kv, '=', len);
	size_t klen = eq ? (size_t)(eq - kv) : len;
	const char *v = eq ? eq + 1 : kv + len;
	size_t vlen = (size_t)(kv + len - v);
	char **dst = NULL;

	if (klen == 19 && !strncmp(kv, "trusted-public-keys", 19))
		dst = &o->keys;
	else if (klen == 5 && !strncmp(kv, "cache", 5))
		dst = &o->cache;
	else if (klen == 17 && !strncmp(kv, "upload-token-file", 17))
		dst = &o->token_file;
	else if (klen == 13 && !strncmp(kv, "no-check-sigs", 13)) {
		if (vlen == 0 || (vlen == 1 && *v == '1') || (vlen == 4 && !strncmp(v, "true", 4)))
			o->flags |= BINARY_CACHE_NO_CHECK_SIGS;
		else
			o->flags &= ~(unsigned)BINARY_CACHE_NO_CHECK_SIGS;
		return 0;
	} else {
		return sf_err(-EINVAL,
			      "unknown store URL parameter '%.*s' (use "
			      "trusted-public-keys, no-check-sigs, cache or "
			      "upload-token-file)",
			      (int)klen, kv);
	}
	free(*dst);
	*dst = NULL;
	return pct_decode(v, vlen, dst);
}

static int url_params(struct binary_cache_url *o, const char *q)
{
	int rc = 0;

	while (rc == 0 && *q) {
		size_t len = strcspn(q, "&");

		if (len)
			rc = url_param(o, q, len);
		q += len + (q[len] == '&');
	}
	return rc;
}

int binary_cache_url_parse(const char *url, struct binary_cache_url *out)
{
	struct binary_cache_url u = {0};
	const char *q;
	int rc;

	if (strncmp(url, "nix+http://", 11) && strncmp(url, "nix+https://", 12))
		return sf_err(-EINVAL, "store URL '%s' is not nix+http(s)://...", url);
	q = strchr(url, '?');
	u.origin = q ? strndup(url + 4, (size_t)(q - url - 4)) : strdup(url + 4);
	if (!u.origin)
		return -ENOMEM;
	rc = q ? url_params(&u, q + 1) : 0;
	if (rc < 0) {
		binary_cache_url_release(&u);
		return rc;
	}
	*out = u;
	return 0;
}

void binary_cache_url_release(struct binary_cache_url *u)
{
	free(u->origin);
	free(u->keys);
	free(u->cache);
	free(u->token_file);
	*u = (struct binary_cache_url){0};
}
