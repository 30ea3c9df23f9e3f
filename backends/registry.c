/* registry.c - maps store URLs and directories to backends. */
#include "backends/registry.h"

#include "backends/binary_cache/binary_cache.h"
#include "backends/local/local.h"
#include "backends/memory/memory.h"
#include "common/err.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUPPORTED "a directory, local://DIR, memory:// or nix+http(s)://HOST[/PATH]"

const char *store_default_location(char *buf, size_t len)
{
	const char *env = getenv("STOREFS_STORE");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/var/lib/storefs");
	else if (xdg && xdg[0] == '/') /* relative values are invalid per XDG */
		n = snprintf(buf, len, "%s/storefs", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.local/share/storefs", home);
	else
		return NULL;
	return n > 0 && (size_t)n < len ? buf : NULL;
}

/* "scheme://...", with a scheme of RFC 3986 characters. */
static bool has_scheme(const char *url)
{
	const char *sep = strstr(url, "://");

	if (!sep || sep == url || !isalpha((unsigned char)url[0]))
		return false;
	for (const char *p = url; p < sep; p++)
		if (!isalnum((unsigned char)*p) && !strchr("+-.", *p))
			return false;
	return true;
}

static int open_default(unsigned flags, struct store **out)
{
	char buf[PATH_MAX];

	if (!store_default_location(buf, sizeof(buf)))
		return sf_err(-EINVAL, "cannot find the default store: set STOREFS_STORE or HOME");
	return local_store_open(buf, flags, out);
}

/* The cache is opened writable and created if missing whatever `flags`
 * say (fetching into it is how this store is read); only
 * STORE_OPEN_NATIVE_SIZE is passed on. */
static int open_binary_cache(const char *url, unsigned flags, struct store **out)
{
	struct binary_cache_url u;
	struct store *local = NULL;
	int rc = binary_cache_url_parse(url, &u);

	if (rc < 0)
		return rc;
	rc = store_open(u.cache, (flags & STORE_OPEN_NATIVE_SIZE) | STORE_OPEN_CREATE, &local);
	if (rc == 0)
		rc = binary_cache_store_open(u.origin, u.keys, u.flags, local, out);
	if (rc < 0)
		store_free(local);
	binary_cache_url_release(&u);
	return rc;
}

int store_open_substituted(struct store *local, const char *cache_url, const char *trusted_keys,
			   bool check_sigs, struct store **out)
{
	return binary_cache_store_open(cache_url, trusted_keys,
				       check_sigs ? 0 : BINARY_CACHE_NO_CHECK_SIGS, local, out);
}

void store_substituted_set_deadline(struct store *st, const struct deadline_rule *r)
{
	binary_cache_set_deadline(st->paths, r);
}

int store_open(const char *url, unsigned flags, struct store **out)
{
	if (!url)
		return open_default(flags, out);
	if (!*url)
		return sf_err(-EINVAL, "store URL is empty (use " SUPPORTED ")");
	if (!strncmp(url, "local://", 8)) {
		if (!url[8])
			return sf_err(-EINVAL, "store URL '%s' names no directory", url);
		return local_store_open(url + 8, flags, out);
	}
	if (!strcmp(url, "memory://"))
		return memory_store_new(
		    flags & STORE_OPEN_NATIVE_SIZE ? DIR_SIZE_NATIVE : DIR_SIZE_SPEC, out);
	if (!strncmp(url, "nix+http://", 11) || !strncmp(url, "nix+https://", 12))
		return open_binary_cache(url, flags, out);
	if (has_scheme(url))
		return sf_err(-EINVAL, "unsupported store URL '%s' (use " SUPPORTED ")", url);
	return local_store_open(url, flags, out);
}
