/* copy.c - one store path from one store to another: blobs by digest (each
 * verified as it is written), Directories children first, then the
 * PathInfo. */
#include "store/copy.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

#define COPY_BUF       (256 * 1024)
#define COPY_MAX_DEPTH 256

struct copy {
	struct store *src, *dst;
	struct copy_stats *stats;
	struct dir_putter *putter;
	struct digest_map done; /* Directories and blobs handled */
	uint8_t *buf;
};

static char mark;

static int copy_blob(struct copy *c, const struct node *n)
{
	struct blob_reader *r;
	struct blob_writer *w;
	uint64_t off = 0;
	size_t got = 0;
	bool found;
	int rc = blob_service_has(c->dst->blobs, &n->digest, &found);

	if (rc == 0 && found)
		c->stats->blobs_present++;
	if (rc < 0 || found)
		return rc;
	rc = blob_service_open_read(c->src->blobs, &n->digest, &r);
	if (rc < 0)
		return rc;
	rc = blob_service_open_write(c->dst->blobs, &w);
	while (rc == 0) {
		rc = blob_reader_pread(r, c->buf, COPY_BUF, off, &got);
		if (rc < 0 || got == 0)
			break;
		rc = blob_writer_write(w, c->buf, got);
		off += got;
	}
	blob_reader_close(r);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	rc = blob_writer_commit(w, &n->digest, NULL);
	if (rc == 0)
		c->stats->blobs++, c->stats->blob_bytes += off;
	return rc;
}

static int copy_dir(struct copy *c, const struct b3_digest *d, unsigned depth);

static int copy_node(struct copy *c, const struct node *n, unsigned depth)
{
	int rc;

	if (n->kind == NODE_SYMLINK || digest_map_get(&c->done, &n->digest))
		return 0;
	rc = n->kind == NODE_FILE ? copy_blob(c, n) : copy_dir(c, &n->digest, depth + 1);
	return rc < 0 ? rc : digest_map_put(&c->done, &n->digest, &mark, NULL);
}

/* Children first, as the destination's putter requires. */
static int copy_dir(struct copy *c, const struct b3_digest *d, unsigned depth)
{
	struct directory *dir;
	int rc;

	if (depth > COPY_MAX_DEPTH)
		return sf_err(-ELOOP, "Directories nest more than %d levels deep", COPY_MAX_DEPTH);
	rc = dir_service_get(c->src->dirs, d, &dir);
	if (rc == -ENOENT) {
		char text[B3_TEXT_LEN + 1];

		b3_digest_to_text(d, text);
		return sf_err(-EIO, "directory %s is missing from the source store", text);
	}
	for (size_t i = 0; rc == 0 && i < dir->count; i++)
		rc = copy_node(c, &dir->nodes[i], depth);
	if (rc < 0) {
		directory_free(dir);
		return rc;
	}
	return dir_putter_put(c->putter, dir, NULL);
}

static int check_refs(struct store *dst, const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX];

	for (size_t i = 0; i < pi->n_refs; i++) {
		bool found;
		int rc;

		if (!memcmp(pi->refs[i].digest, pi->path.digest, STORE_PATH_DIGEST_LEN))
			continue;
		rc = store_path_has(dst, &pi->refs[i], &found);
		if (rc < 0)
			return rc;
		if (!found) {
			store_path_full(&pi->refs[i], full);
			return sf_err(-ENOENT,
				      "reference '%s' is not in the destination (copy with -r)",
				      full);
		}
	}
	return 0;
}

/* Stores the tree and the PathInfo: through a staging Directory service and
 * one atomic commit where the destination offers it. */
static int copy_tree(struct copy *c, const struct path_info *pi)
{
	struct dir_service *stage = NULL;
	int rc = store_stage_dirs(c->dst, &stage);

	if (rc == -ENOTSUP)
		rc = 0, stage = NULL;
	if (rc == 0)
		rc = dir_putter_new(stage ? stage : c->dst->dirs, c->dst->size_formula, &c->putter);
	if (rc == 0)
		rc = copy_node(c, &pi->root, 0);
	if (c->putter) {
		struct b3_digest root;

		if (rc == 0 && pi->root.kind == NODE_DIRECTORY) {
			rc = dir_putter_close(c->putter, &root);
			if (rc == 0 && !b3_digest_eq(&root, &pi->root.digest))
				rc = sf_err(-EIO, "the copied tree does not hash to the root");
		} else
			dir_putter_free(c->putter);
		c->putter = NULL;
	}
	if (rc == 0)
		rc = blob_service_flush(c->dst->blobs);
	if (rc == 0)
		rc = stage ? store_commit_path(c->dst, stage, pi, NULL)
			   : path_info_service_put(c->dst->paths, pi);
	dir_service_free(stage);
	return rc;
}

/* A store keeping NARs gets the NAR; the size formula does not matter
 * then (NARs carry no Directory sizes). */
static int copy_nar(struct store *src, struct store *dst, const struct path_info *pi,
		    struct copy_stats *stats)
{
	uint64_t sent = 0;
	int rc = store_nar_put(dst, src, pi, &sent);

	if (rc == 0 && sent)
		stats->nars++, stats->nar_bytes += sent;
	return rc;
}

int store_copy_path(struct store *src, struct store *dst, const struct path_info *pi,
		    struct copy_stats *stats)
{
	struct copy c = {.src = src, .dst = dst, .stats = stats};
	bool found;
	int rc = store_path_has(dst, &pi->path, &found);

	if (rc == 0 && found)
		stats->paths_present++;
	if (rc < 0 || found)
		return rc;
	if (!dst->nar_put && src->size_formula != dst->size_formula)
		return sf_err(-EINVAL, "the stores count Directory sizes differently (%s, %s)",
			      src->location, dst->location);
	rc = check_refs(dst, pi);
	if (rc == 0 && dst->nar_put)
		rc = copy_nar(src, dst, pi, stats);
	else if (rc == 0) {
		c.buf = malloc(COPY_BUF);
		if (!c.buf)
			return -ENOMEM;
		digest_map_init(&c.done);
		rc = copy_tree(&c, pi);
		digest_map_release(&c.done);
		free(c.buf);
	}
	if (rc == 0)
		stats->paths++;
	return rc;
}
