/* bc_internal.h - the binary cache backend's building blocks, shared by its
 * files and the unit tests: byte sources for file:// and http(s):// URLs
 * and the decompressing reader that turns a cache's NAR file back into a
 * NAR stream. Nothing here is thread-shared: each source and reader belongs
 * to one thread at a time. */
#ifndef STOREFS_BACKENDS_BC_INTERNAL_H
#define STOREFS_BACKENDS_BC_INTERNAL_H

#include "store/nar_decompress.h"
#include "store/nar_ingest.h"
#include "store/path_info_service.h"
#include "store/store.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest .narinfo accepted (real ones are well under 10 KiB). */
#define BC_NARINFO_MAX (1024 * 1024)

/* 0 if `url` is a URL the transport can fetch: "file:///abs/path",
 * "http://host..." or "https://host...". -EINVAL with a message otherwise. */
int bc_url_check(const char *url);

/* Fetches the whole resource at `url` (at most `max` bytes) into a
 * malloc'd, NUL-terminated buffer (caller frees). -ENOENT if it does not
 * exist (a missing file, HTTP 404 or 403); -EIO with a message for any
 * other failure, including a body over `max` bytes and an http(s)
 * transfer not done within `timeout_ms` (common/deadline.h). */
int bc_fetch_all(const char *url, size_t max, uint64_t timeout_ms, char **out, size_t *out_len);

/* A libcurl handle for `url`: no signals, http(s) only, redirects
 * followed, failing on HTTP errors, the whole transfer within
 * `timeout_ms`; `errbuf` (CURL_ERROR_SIZE bytes) receives curl's message.
 * Callers change what differs for them (bc_upload.c). */
int bc_curl_new(const char *url, uint64_t timeout_ms, char *errbuf, CURL **out);

/* A streaming download. For http(s) a helper thread runs the transfer and
 * hands the body over through a socket pair, so memory stays constant. */
struct bc_source;

/* An http(s) transfer must end within `timeout_ms`, else reading fails
 * with -EIO. */
int bc_source_open(const char *url, uint64_t timeout_ms, struct bc_source **out);
/* A nar_read_fn over the source: *n = 0 only at the end of a complete,
 * successful transfer. -ENOENT if the resource does not exist, -EIO with
 * a message for a failed or cut transfer. */
int bc_source_read(void *source, void *buf, size_t len, size_t *n);
/* Bytes delivered so far. */
uint64_t bc_source_bytes(const struct bc_source *s);
/* Stops the transfer if it is still running and frees. NULL is a no-op. */
void bc_source_close(struct bc_source *s);

/* Makes fetches write through write sessions of `st` (the store whose
 * PathInfo service `ps` is), so a failed fetch takes back its blobs. */
void bc_paths_attach(struct path_info_service *ps, struct store *st);

/* Makes the fetches of `ps` report to `fn` (store_set_fetch_progress). */
void bc_paths_set_progress(struct path_info_service *ps, store_fetch_progress_fn fn, void *ctx);

/* As binary_cache_path_info_new() (binary_cache.h), but `local_paths`
 * stays the caller's on failure. */
int bc_paths_create(const char *cache_url, const char *trusted_keys, unsigned flags,
		    struct path_info_service *local_paths, struct blob_service *blobs,
		    struct dir_service *dirs, enum dir_size_formula f,
		    struct path_info_service **out);

/* --- uploads (bc_upload.c; docs/narinfo.md §6) --- */

/* Whether the cache at `origin` (no trailing '/') has a narinfo for `p`'s
 * hash; nothing else is fetched. Errors other than absence are -EIO. */
int bc_path_has(const char *origin, const struct store_path *p, bool *found);
/* Uploads `pi`: its NAR rendered from src's services (unless a HEAD finds
 * the cache has it; `sent` then 0), then its narinfo, with `token` (may be
 * NULL) as a Bearer credential. -ENOTSUP for a file:// origin; -EIO with a
 * message for a refused or failed request or a tree that does not render
 * to pi's NAR hash and size. */
int bc_nar_put(const char *origin, const char *token, struct store *src, const struct path_info *pi,
	       uint64_t *sent);

#endif
