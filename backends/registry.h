/* registry.h - opens a store bundle from a URL or directory.
 *
 * Supported forms:
 *	DIR, local://DIR, local:///abs/dir	the embedded local store (backends/local)
 *	memory://				an empty in-process store (tests)
 *	nix+http(s)://HOST[/PATH][?trusted-public-keys=...&cache=DIR]
 *		a Nix binary cache filling a local store on demand, taking
 *		uploads (storefs copy --to) with &upload-token-file=FILE
 *		(backends/binary_cache/binary_cache.h)
 *	grpc+http://HOST:PORT, grpc+unix:///SOCKET [?timeout=S&package=tvix]
 *		a remote daemon's three services over gRPC, read-only
 *		(backends/grpc/grpc_store.h, docs/grpc.md)
 *	postgres(ql)://[USER@]HOST[:PORT]/DB[?PARAMS]
 *		Directories and PathInfos in PostgreSQL (libpq's URL rules);
 *		no blob service: blobs is NULL (backends/postgres/postgres.h)
 *	s3://BUCKET[/PREFIX]?endpoint=http(s)://HOST[:PORT]&region=REGION
 *		blobs only, in an S3 bucket (backends/s3/s3.h); dirs and
 *		paths are NULL
 * A NULL url means the default location (store_default_location()).
 * store_open_services() puts services of several stores together. */
#ifndef STOREFS_BACKENDS_REGISTRY_H
#define STOREFS_BACKENDS_REGISTRY_H

#include "common/deadline.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

/* Opens the store named by `url` (see above) with `flags`. -EINVAL with a
 * message listing the supported forms for an unknown scheme; otherwise the
 * backend's errors (-ENOENT, -EBUSY, -EIO, ...). Free with store_free(). */
int store_open(const char *url, unsigned flags, struct store **out);

/* Where each service comes from (snix-store's --blob-service-addr,
 * --directory-service-addr, --path-info-service-addr): a URL or directory
 * as store_open() takes it; NULL means the default location. */
struct store_addrs {
	const char *blobs, *dirs, *paths;
	/* --cache DIR: a local store in front of them (NULL: none) */
	const char *cache;
};

/* Opens the store whose blob, Directory and PathInfo services are those of
 * the stores at `a`: each distinct address is opened once with
 * store_open(url, flags) (addresses are compared as strings), and when
 * they are not all the same the services are put together by
 * store_composite_new() (backends/composite.h; its optional operations in
 * docs/services.md). A store that lacks the service an address names
 * (s3:// has no Directories) is -EINVAL with a message naming the flag.
 * With a->cache, the store at a->cache (opened writable, created if
 * missing) is put in front of them by store_cached_new()
 * (backends/cache.h). Free with store_free(). */
int store_open_services(const struct store_addrs *a, unsigned flags, struct store **out);

/* Puts the Nix binary cache at `cache_url` (file:///DIR, http(s)://...) in
 * front of the writable store `local`, trusting the space-separated
 * `trusted_keys` (may be NULL); with `check_sigs` false, paths without a
 * valid trusted signature pass too (backends/binary_cache/binary_cache.h
 * says what a lookup then does). On success `local` belongs to *out (free
 * only *out); on failure the caller still owns it. -EINVAL with a message
 * for a bad URL or key, -ENOMEM. */
int store_open_substituted(struct store *local, const char *cache_url, const char *trusted_keys,
			   bool check_sigs, struct store **out);

/* Sets the deadlines of the remote operations of a store made by
 * store_open_substituted() (common/deadline.h, docs/limits.md); before
 * its first use. */
void store_substituted_set_deadline(struct store *st, const struct deadline_rule *r);

/* The default store directory: $STOREFS_STORE if set and non-empty, else
 * /var/lib/storefs when running as root (euid 0), else
 * $XDG_DATA_HOME/storefs, else $HOME/.local/share/storefs. Written into
 * `buf`; returns buf, or NULL if it does not fit or no home is known. */
const char *store_default_location(char *buf, size_t len);

#endif
