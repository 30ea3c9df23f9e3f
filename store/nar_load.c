/* nar_load.c - NAR ingestion and PathInfo registration shared by the
 * NAR-importing commands and the HTTP server. */
#include "store/nar_load.h"

#include "common/err.h"
#include "store/ca_verify.h"
#include "store/nar_ingest.h"
#include "store/nix_hash.h"
#include "store/nixbase32.h"

#include <stdlib.h>
#include <string.h>

int nar_load_fd(struct store *st, struct store_write *w, int fd, const struct nar_summary *expect,
		const struct nar_limits *lim, struct nar_loaded *out)
{
	struct blob_service *bs = store_write_blobs(w);
	int rc = nar_ingest_fd(bs, store_write_dirs(w), st->size_formula, fd, expect, lim,
			       &out->root, out->target, &out->sum);

	if (rc < 0)
		return rc;
	/* Blob commits are not durable one by one; the PathInfo that will
	 * point at them must not outlive them after a crash. */
	return blob_service_flush(bs);
}

int nar_load_read(struct store *st, struct store_write *w, nar_read_fn read, void *ctx,
		  const struct nar_summary *expect, const struct nar_limits *lim,
		  struct nar_loaded *out)
{
	struct blob_service *bs = store_write_blobs(w);
	int rc = nar_ingest_limited(bs, store_write_dirs(w), st->size_formula, read, ctx, expect,
				    lim, &out->root, out->target, &out->sum);

	return rc < 0 ? rc : blob_service_flush(bs);
}

int nar_hash_parse(const char *s, uint8_t out[32])
{
	struct nix_hash h;
	int rc = nix_hash_parse_as(s, strlen(s), NIX_HASH_SHA256, &h);

	if (rc < 0)
		return sf_err(-EINVAL, "'%s' is not a sha256 NAR hash (%s)", s, sf_errmsg(rc));
	memcpy(out, h.digest, 32);
	return 0;
}

void nar_hash_text(const uint8_t sha256[32], char *out)
{
	memcpy(out, "sha256:", 7);
	nixbase32_encode(sha256, 32, out + 7);
}

static int check_ref(struct store *st, const struct path_info *pi, const struct store_path *ref)
{
	char base[STORE_PATH_MAX_BASENAME + 1], self[STORE_PATH_MAX_BASENAME + 1];
	struct path_info *other;
	int rc;

	if (store_path_cmp(ref, &pi->path) == 0)
		return 0;
	rc = path_info_service_get(st->paths, ref->digest, &other);
	if (rc == 0) {
		rc = store_path_cmp(&other->path, ref) == 0 ? 0 : -ENOENT;
		path_info_free(other);
	}
	if (rc != -ENOENT)
		return rc;
	store_path_basename(ref, base);
	store_path_basename(&pi->path, self);
	return sf_err(-ENOENT, "reference '%s' of '%s' is not in the store", base, self);
}

int nar_load_check_refs(struct store *st, const struct path_info *pi)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < pi->n_refs; i++)
		rc = check_ref(st, pi, &pi->refs[i]);
	return rc;
}

int nar_load_register(struct store *st, const struct path_info *pi, enum path_info_put_result *res)
{
	int rc = path_info_validate(pi);

	if (rc == 0)
		rc = nar_load_check_refs(st, pi);
	if (rc == 0)
		rc = ca_verify(st->blobs, st->dirs, pi);
	if (rc == 0)
		rc = path_info_service_register(st->paths, pi, res);
	return rc;
}
