/* binary_cache.h - a Nix binary cache as a lazily filled PathInfo service
 * (docs/narinfo.md §4): a local store is the cache, the
 * binary cache at a URL is the origin.
 *
 * get(digest) answers from the local PathInfo service if it can. Otherwise
 * it fetches "<url>/<hash>.narinfo", parses it strictly, checks that its
 * StorePath has the asked-for hash, checks signatures against the trusted
 * public keys (a content-addressed path whose CA recomputes to its own
 * path needs none), fetches the NAR from the narinfo's URL (relative to
 * the cache URL, or an absolute http(s) URL), decompresses it as labelled
 * (none, xz, zstd, bzip2) while streaming it into the local blob and
 * Directory services, checks NarHash and NarSize, checks a claimed CA
 * against the content (signed or not: docs/trust.md), and only then registers
 * the PathInfo (references, signatures, deriver, CA from the narinfo) in
 * the local PathInfo service and returns it.
 *
 * Results of get() for a path not yet cached:
 *	-ENOENT	the cache does not have it (no narinfo: missing file, 404, 403)
 *	-EIO	anything else: a transport failure, a corrupt narinfo, a
 *		narinfo for another path, no valid trusted signature, an
 *		unsupported compression, a corrupt, truncated or mismatching NAR,
 *		a CA that does not fit the path or the content;
 *		logged (log_error) with the store path and the reason, and the
 *		message recorded with sf_err(). Nothing is registered then.
 * Failures are not remembered: a later get() tries again.
 *
 * Concurrent get()s of the same path share one fetch; get()s of different
 * paths fetch in parallel. put() goes to the local service; list() and
 * watch() are the local service's (what has been cached so far).
 *
 * URLs: file:///ABS/DIR, http://HOST[:PORT][/PATH], https://... (libcurl;
 * redirects followed, http(s) only). A trailing '/' is ignored.
 * Thread-safety: the service is thread-safe if the local services are. */
#ifndef STOREFS_BACKENDS_BINARY_CACHE_H
#define STOREFS_BACKENDS_BINARY_CACHE_H

#include "common/deadline.h"
#include "store/store.h"

#include <stdint.h>

enum binary_cache_flags {
	/* Accept paths without a valid signature by a trusted key (Nix's
	 * --no-check-sigs / require-sigs = false). */
	BINARY_CACHE_NO_CHECK_SIGS = 1 << 0,
};

struct binary_cache_stats {
	uint64_t narinfo_fetches; /* .narinfo downloads attempted */
	uint64_t nar_fetches;	  /* NAR downloads attempted */
	uint64_t paths_added;	  /* paths registered in the local store */
	uint64_t failures;	  /* get()s that ended in -EIO */
};

/* Makes the service. `cache_url` as above; `trusted_keys` a space-separated
 * list of "name:base64(32 bytes)" public keys (NULL or "" for none, in
 * which case only CA paths pass unless BINARY_CACHE_NO_CHECK_SIGS).
 * Ownership: `local_paths` is taken over in every case (freed with the new
 * service, or at once on failure), because freeing the service must end
 * the watches made through it; `blobs` and `dirs` are borrowed and must
 * outlive the service; `f` is their store's size formula. Errors: -EINVAL
 * with a message for a bad URL or key list, -ENOMEM. */
int binary_cache_path_info_new(const char *cache_url, const char *trusted_keys, unsigned flags,
			       struct path_info_service *local_paths, struct blob_service *blobs,
			       struct dir_service *dirs, enum dir_size_formula f,
			       struct path_info_service **out);

/* Sets the deadlines of the service's remote operations (common/deadline.h;
 * the defaults until then): a narinfo within r->base_s, a NAR within
 * r->base_s plus NarSize at r->min_rate. A missed deadline is -EIO, logged
 * once, and a later get() tries again. Call before the first get(). */
void binary_cache_set_deadline(struct path_info_service *s, const struct deadline_rule *r);

/* Counters of a service made by binary_cache_path_info_new() (and of no
 * other service). Thread-safe. */
void binary_cache_stats(struct path_info_service *s, struct binary_cache_stats *out);

/* Wraps the store `local` into a store whose Blob and Directory services
 * are local's and whose PathInfo service is the binary cache above, so a
 * mount of it fills `local` on demand. `local` must be writable. On
 * success `local` belongs to *out (free only *out, with store_free()); on
 * failure the caller still owns `local` unchanged. Location is
 * "<cache_url> (cached in <local location>)". */
int binary_cache_store_open(const char *cache_url, const char *trusted_keys, unsigned flags,
			    struct store *local, struct store **out);

/* Gives the store `st` (made by binary_cache_store_open) the upload token
 * in `file` (docs/narinfo.md §6): as a copy destination the store uploads
 * NARs and narinfos (`storefs copy --to`), sending the token as a Bearer
 * credential, and never shows it. Without a token uploads go without
 * credentials. -EINVAL with a message naming the file for a missing,
 * empty or malformed file. */
int binary_cache_store_upload_token(struct store *st, const char *file);

/* A store URL "nix+http://HOST[:PORT][/PATH][?PARAMS]" (or nix+https://),
 * with PARAMS '&'-separated and percent-decoded:
 *	trusted-public-keys=KEYS	space- (%20-) separated public keys
 *	no-check-sigs=1			BINARY_CACHE_NO_CHECK_SIGS
 *	cache=DIR			the local store used as the cache
 *					(default: store_default_location())
 *	upload-token-file=FILE		the upload token, for a destination
 *					(binary_cache_store_upload_token)
 * backends/registry.c opens `cache` writable (created if missing) and puts
 * the binary cache at `origin` in front of it. */
struct binary_cache_url {
	char *origin;	  /* "http(s)://HOST[:PORT][/PATH]" */
	char *keys;	  /* NULL: none */
	char *cache;	  /* NULL: the default store */
	char *token_file; /* NULL: none */
	unsigned flags;	  /* enum binary_cache_flags */
};

/* Parses `url` into *out (release with binary_cache_url_release). -EINVAL
 * with a message for another scheme, an unknown parameter or a bad
 * percent escape; -ENOMEM. The origin itself is checked when opened. */
int binary_cache_url_parse(const char *url, struct binary_cache_url *out);
void binary_cache_url_release(struct binary_cache_url *u);

#endif
