/* stats.c - counting a store for `storefs info`. Each reached Directory's
 * total file bytes is computed once and remembered, so a tree shared by
 * many paths is read once. */
#include "store/stats.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <stdlib.h>

struct stats_walk {
	struct store *st;
	struct store_stats *s;
	struct digest_map dirs;	 /* reached Directory -> uint64_t * total file bytes */
	struct digest_map blobs; /* reached blob -> &mark */
};

static char mark;
static uint64_t missing_total;

static int dir_total(struct stats_walk *w, const struct b3_digest *d, unsigned depth,
		     uint64_t *out);

static int node_total(struct stats_walk *w, const struct node *n, unsigned depth, uint64_t *out)
{
	*out = 0;
	if (n->kind == NODE_FILE) {
		*out = n->size;
		return digest_map_put(&w->blobs, &n->digest, &mark, NULL);
	}
	return n->kind == NODE_DIRECTORY ? dir_total(w, &n->digest, depth + 1, out) : 0;
}

/* Recursion is bounded: Directories nest at most CASTORE_MAX_DEPTH-ish
 * levels deep (the importers refuse 64), and `depth` stops a longer chain. */
static int dir_total(struct stats_walk *w, const struct b3_digest *d, unsigned depth, uint64_t *out)
{
	uint64_t *memo = digest_map_get(&w->dirs, d), sum = 0, one;
	struct directory *dir;
	int rc;

	if (memo) {
		*out = *memo;
		return 0;
	}
	if (depth > 256)
		return sf_err(-ELOOP, "Directories nest more than 256 levels deep");
	rc = dir_service_get(w->st->dirs, d, &dir);
	if (rc == -ENOENT) {
		*out = 0;
		return digest_map_put(&w->dirs, d, &missing_total, NULL);
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < dir->count; i++) {
		rc = node_total(w, &dir->nodes[i], depth, &one);
		sum += one;
	}
	directory_free(dir);
	if (rc == 0 && !(memo = malloc(sizeof(*memo))))
		rc = -ENOMEM;
	if (rc == 0) {
		*memo = sum;
		rc = digest_map_put(&w->dirs, d, memo, NULL);
		if (rc < 0)
			free(memo);
	}
	*out = sum;
	return rc;
}

static int on_path(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct stats_walk *w = ctx;
	uint64_t total;
	int rc = node_total(w, &pi->root, 0, &total);

	(void)cursor;
	w->s->paths++;
	w->s->nar_bytes += pi->nar_size;
	w->s->file_bytes += total;
	return rc;
}

static int on_dir(void *ctx, const struct b3_digest *d)
{
	struct stats_walk *w = ctx;
	struct directory *dir;
	uint8_t *buf;
	size_t len;
	int rc;

	w->s->dirs++;
	if (!digest_map_get(&w->dirs, d))
		w->s->orphan_dirs++;
	rc = dir_service_get(w->st->dirs, d, &dir);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	rc = directory_encode(dir, &buf, &len);
	directory_free(dir);
	if (rc < 0)
		return rc;
	free(buf);
	w->s->dir_bytes += len;
	return 0;
}

static int on_blob(void *ctx, const struct b3_digest *d)
{
	struct stats_walk *w = ctx;
	uint64_t size;
	int rc = blob_service_stat(w->st->blobs, d, &size);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	w->s->blobs++;
	w->s->blob_bytes += size;
	if (!digest_map_get(&w->blobs, d)) {
		w->s->orphan_blobs++;
		w->s->orphan_blob_bytes += size;
	}
	return 0;
}

int store_stats_collect(struct store *st, struct store_stats *out)
{
	struct stats_walk w = {.st = st, .s = out};
	int rc;

	*out = (struct store_stats){0};
	digest_map_init(&w.dirs);
	digest_map_init(&w.blobs);
	rc = path_info_service_list(st->paths, 0, on_path, &w);
	if (rc == 0)
		rc = store_dirs_each(st, on_dir, &w);
	if (rc == 0)
		rc = store_blobs_each(st, on_blob, &w);
	digest_map_foreach(&w.dirs, slot)
	{
		if (slot->value != &missing_total)
			free(slot->value);
	}
	digest_map_release(&w.dirs);
	digest_map_release(&w.blobs);
	return rc;
}
