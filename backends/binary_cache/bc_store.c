/* bc_store.c - a store bundle whose PathInfo service fills a local store
 * from a Nix binary cache. */
#include "backends/binary_cache/bc_internal.h"
#include "backends/binary_cache/binary_cache.h"

#include "common/secret_file.h"
#include "store/store_gc.h"
#include "store/store_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bc_store {
	struct store base;
	/* The wrapped store, whose services `base` owns now (it keeps them as
	 * borrowed pointers for its own operations); kept for its close()
	 * (locks) and its optional operations, and freed last. */
	struct store *local;
	char *origin; /* the cache's URL, without trailing '/' */
	char *token;  /* the upload token, or NULL; a secret: never printed */
};

static void bc_store_close(struct store *st)
{
	struct bc_store *s = (struct bc_store *)st;

	/* Freed with `base` already. */
	s->local->paths = NULL, s->local->dirs = NULL, s->local->blobs = NULL;
	store_free(s->local);
	secret_free(s->token);
	free(s->origin);
}

/* --- the cache as a copy destination (bc_upload.c) --- */

static int bc_path_has_op(struct store *st, const struct store_path *p, bool *found)
{
	return bc_path_has(((struct bc_store *)st)->origin, p, found);
}

static int bc_nar_put_op(struct store *st, struct store *src, const struct path_info *pi,
			 uint64_t *sent)
{
	struct bc_store *s = (struct bc_store *)st;

	return bc_nar_put(s->origin, s->token, src, pi, sent);
}

int binary_cache_store_upload_token(struct store *st, const char *file)
{
	struct bc_store *s = (struct bc_store *)st;
	char *token;
	size_t len;
	int rc = secret_file_load(file, "upload token", &token, &len);

	if (rc < 0)
		return rc;
	secret_free(s->token);
	s->token = token;
	return 0;
}

/* --- the local store's operations, on its behalf --- */

static struct store *local_of(struct store *st)
{
	return ((struct bc_store *)st)->local;
}

static int bc_writer_enter(struct store *st, int *token)
{
	return store_writer_enter(local_of(st), token);
}

static void bc_writer_leave(struct store *st, int token)
{
	store_writer_leave(local_of(st), token);
}

static int bc_exclusive_enter(struct store *st, unsigned wait_ms, int token[2])
{
	return store_exclusive_enter(local_of(st), wait_ms, token);
}

static void bc_exclusive_leave(struct store *st, const int token[2])
{
	store_exclusive_leave(local_of(st), token);
}

static int bc_blob_delete(struct store *st, const struct b3_digest *d,
			  const struct timespec *before, uint64_t *freed)
{
	return store_blob_delete(local_of(st), d, before, freed);
}

static int bc_dirs_delete(struct store *st, const struct b3_digest *v, size_t n)
{
	return store_dirs_delete(local_of(st), v, n);
}

static void bc_set_fetch_progress(struct store *st, store_fetch_progress_fn fn, void *ctx)
{
	bc_paths_set_progress(st->paths, fn, ctx);
}

/* The cache is the local store: its sizes are this store's. */
static int bc_store_usage(struct store *st, struct store_usage *out)
{
	return store_usage(((struct bc_store *)st)->local, out);
}

int binary_cache_store_open(const char *cache_url, const char *trusted_keys, unsigned flags,
			    struct store *local, struct store **out)
{
	struct bc_store *s = calloc(1, sizeof(*s));
	size_t len = strlen(cache_url);
	int rc;

	if (!s)
		return -ENOMEM;
	while (len > 8 && cache_url[len - 1] == '/')
		len--;
	s->origin = strndup(cache_url, len);
	if (!s->origin || asprintf(&s->base.location, "%s (cached in %s)", cache_url,
				   local->location ? local->location : "?") < 0) {
		free(s->origin);
		free(s);
		return -ENOMEM;
	}
	rc = bc_paths_create(cache_url, trusted_keys, flags, local->paths, local->blobs,
			     local->dirs, local->size_formula, &s->base.paths);
	if (rc < 0) {
		free(s->base.location);
		free(s->origin);
		free(s);
		return rc;
	}
	/* store_free(&s->base) frees the PathInfo service (which owns local's),
	 * then local's Directory and Blob services, then `local` itself. */
	s->base.blobs = local->blobs;
	s->base.dirs = local->dirs;
	s->base.size_formula = local->size_formula;
	s->base.close = bc_store_close;
	s->base.usage = bc_store_usage;
	s->base.writer_enter = bc_writer_enter;
	s->base.writer_leave = bc_writer_leave;
	s->base.exclusive_enter = bc_exclusive_enter;
	s->base.exclusive_leave = bc_exclusive_leave;
	s->base.blob_delete = bc_blob_delete;
	/* Local's check: a fetch then takes back the Directories it created. */
	s->base.dirs_delete = local->dirs_delete ? bc_dirs_delete : NULL;
	s->base.path_has = bc_path_has_op;
	s->base.nar_put = bc_nar_put_op;
	s->base.set_fetch_progress = bc_set_fetch_progress;
	s->local = local;
	/* A fetch writes in sessions of this store (docs/trust.md). */
	bc_paths_attach(s->base.paths, &s->base);
	*out = &s->base;
	return 0;
}
