/* bc_store.c - a store bundle whose PathInfo service fills a local store
 * from a Nix binary cache. */
#include "backends/binary_cache/bc_internal.h"
#include "backends/binary_cache/binary_cache.h"

#include <stdio.h>
#include <stdlib.h>

struct bc_store {
	struct store base;
	/* The wrapped store, emptied of its services (they moved to `base`);
	 * kept for its own close() (locks) and freed last. */
	struct store *local;
};

static void bc_store_close(struct store *st)
{
	store_free(((struct bc_store *)st)->local);
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
	int rc;

	if (!s)
		return -ENOMEM;
	if (asprintf(&s->base.location, "%s (cached in %s)", cache_url,
		     local->location ? local->location : "?") < 0) {
		free(s);
		return -ENOMEM;
	}
	rc = bc_paths_create(cache_url, trusted_keys, flags, local->paths, local->blobs,
			     local->dirs, local->size_formula, &s->base.paths);
	if (rc < 0) {
		free(s->base.location);
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
	local->paths = NULL, local->dirs = NULL, local->blobs = NULL;
	s->local = local;
	*out = &s->base;
	return 0;
}
