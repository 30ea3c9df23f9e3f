/* registry.c - maps store URLs and directories to backends. */
#include "backends/registry.h"

#include "backends/binary_cache/binary_cache.h"
#include "backends/cache.h"
#include "backends/composite.h"
#include "backends/grpc/grpc_store.h"
#include "backends/local/local.h"
#include "backends/memory/memory.h"
#include "backends/postgres/postgres.h"
#include "backends/s3/s3.h"
#include "common/err.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUPPORTED                                                                                  \
	"a directory, local://DIR, memory://, nix+http(s)://HOST[/PATH], grpc+http://HOST:PORT, "  \
	"grpc+unix:///SOCKET, postgres://USER@HOST:PORT/DB or "                                    \
	"s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION"

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
	if (rc == 0 && u.token_file &&
	    (rc = binary_cache_store_upload_token(*out, u.token_file)) < 0)
		store_free(*out);
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
	if (!strncmp(url, "grpc+http://", 12) || !strncmp(url, "grpc+unix://", 12))
		return grpc_store_open(url, flags, out);
	if (postgres_url_is(url))
		return postgres_store_open(url, flags, out);
	if (!strncmp(url, "s3://", 5))
		return s3_store_open(url, flags, out);
	if (has_scheme(url))
		return sf_err(-EINVAL, "unsupported store URL '%s' (use " SUPPORTED ")", url);
	return local_store_open(url, flags, out);
}

/* --- services from several stores --- */

static const char *const role_flag[STORE_ROLES] = {
    "--blob-service-addr", "--directory-service-addr", "--path-info-service-addr"};
static const char *const role_name[STORE_ROLES] = {"blob service", "Directory service",
						   "PathInfo service"};

static bool same_addr(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool store_has(const struct store *st, enum store_role r)
{
	return r == STORE_ROLE_BLOBS  ? st->blobs != NULL
	       : r == STORE_ROLE_DIRS ? st->dirs != NULL
				      : st->paths != NULL;
}

/* A store opened for `r` that cannot serve it. It is named by its
 * location, never by the URL given: a URL may carry a password
 * (postgres://USER:PASSWORD@...). */
static int missing_service(const struct store *st, enum store_role r)
{
	return sf_err(-EINVAL, "store '%s' (%s) has no %s: name one with %s",
		      st->location ? st->location : "?", role_flag[r], role_name[r], role_flag[r]);
}

/* Opens every distinct address of `addr` once: subs[from[r]] serves role r. */
static int open_subs(const char *const addr[STORE_ROLES], unsigned flags,
		     struct store *subs[STORE_ROLES], size_t *n, size_t from[STORE_ROLES])
{
	const char *opened[STORE_ROLES];
	int rc = 0;

	*n = 0;
	for (int r = 0; r < STORE_ROLES && rc == 0; r++) {
		size_t i = 0;

		while (i < *n && !same_addr(opened[i], addr[r]))
			i++;
		from[r] = i;
		if (i < *n)
			continue;
		rc = store_open(addr[r], flags, &subs[i]);
		if (rc == 0)
			opened[(*n)++] = addr[r];
	}
	for (int r = 0; r < STORE_ROLES && rc == 0; r++)
		if (!store_has(subs[from[r]], (enum store_role)r))
			rc = missing_service(subs[from[r]], (enum store_role)r);
	return rc;
}

/* The store at `arg` (DIR[?cache-size=SIZE]), put in front of `remote`
 * (which it then owns). */
static int open_cached(const char *arg, unsigned flags, struct store *remote, struct store **out)
{
	struct store *cache = NULL;
	uint64_t bound;
	char *dir;
	int rc = store_cache_arg_parse(arg, &dir, &bound);

	if (rc < 0)
		return rc;
	rc = store_open(dir, STORE_OPEN_CREATE | (flags & STORE_OPEN_NATIVE_SIZE), &cache);
	for (int r = 0; rc == 0 && r < STORE_ROLES; r++)
		if (!store_has(cache, (enum store_role)r))
			rc = sf_err(-EINVAL, "store '%s' (--cache) has no %s", dir, role_name[r]);
	if (rc == 0)
		rc = store_cached_new(remote, cache, out);
	if (rc == 0)
		store_cached_set_bound(*out, bound);
	if (rc == 0)
		store_cached_share(*out, dir);
	if (rc == 0 && (flags & STORE_OPEN_IMPORT))
		store_cached_set_writer(*out);
	if (rc < 0)
		store_free(cache);
	free(dir);
	return rc;
}

int store_open_services(const struct store_addrs *a, unsigned flags, struct store **out)
{
	const char *addr[STORE_ROLES] = {a->blobs, a->dirs, a->paths};
	struct store *subs[STORE_ROLES], *st = NULL;
	size_t n, from[STORE_ROLES];
	int rc = open_subs(addr, flags, subs, &n, from);

	if (rc == 0 && n == 1)
		st = subs[0];
	else if (rc == 0)
		rc = store_composite_new(subs, n, from, &st);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			store_free(subs[i]);
		return rc;
	}
	if (!a->cache) {
		*out = st;
		return 0;
	}
	rc = open_cached(a->cache, flags, st, out);
	if (rc < 0)
		store_free(st);
	return rc;
}
