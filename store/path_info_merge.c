/* path_info_merge.c - the immutability rule of registered paths
 * (docs/trust.md "Immutability"): the one decision every backend's put
 * makes, under its own lock or transaction, when the path exists. */
#include "store/path_info.h"

#include "common/err.h"
#include "store/nix_hash.h"

#include <string.h>

static bool root_eq(const struct node *a, const struct node *b)
{
	if (a->kind != b->kind || a->size != b->size || a->executable != b->executable)
		return false;
	if (a->kind == NODE_SYMLINK)
		return a->target_len == b->target_len &&
		       !memcmp(a->target, b->target, a->target_len);
	return b3_digest_eq(&a->digest, &b->digest);
}

static bool has_sig(const struct path_info *pi, const struct path_signature *s)
{
	for (size_t i = 0; i < pi->n_sigs; i++)
		if (!strcmp(pi->sigs[i].name, s->name) && !memcmp(pi->sigs[i].data, s->data, 64))
			return true;
	return false;
}

static int refuse(const struct path_info *have, const struct path_info *want)
{
	struct nix_hash a = {.algo = NIX_HASH_SHA256}, b = {.algo = NIX_HASH_SHA256};
	char full[STORE_PATH_FULL_MAX], ha[NIX_HASH_TEXT_MAX], hb[NIX_HASH_TEXT_MAX];

	memcpy(a.digest, have->nar_sha256, 32);
	memcpy(b.digest, want->nar_sha256, 32);
	nix_hash_print(&a, NIX_HASH_NIX32, ha);
	nix_hash_print(&b, NIX_HASH_NIX32, hb);
	store_path_full(&have->path, full);
	if (strcmp(ha, hb))
		return sf_err(-EEXIST,
			      "'%s' is already registered with NAR hash %s; refusing other "
			      "content with NAR hash %s (a registered path never changes)",
			      full, ha, hb);
	return sf_err(-EEXIST,
		      "'%s' is already registered with NAR hash %s but another root or size; "
		      "refusing to change it (a registered path never changes)",
		      full, ha);
}

int path_info_merge(struct path_info *have, const struct path_info *want,
		    enum path_info_put_result *res)
{
	size_t before = have->n_sigs;

	if (memcmp(have->nar_sha256, want->nar_sha256, 32) || have->nar_size != want->nar_size ||
	    !root_eq(&have->root, &want->root))
		return refuse(have, want);
	for (size_t i = 0; i < want->n_sigs; i++) {
		int rc = has_sig(have, &want->sigs[i])
			     ? 0
			     : path_info_add_sig(have, want->sigs[i].name, want->sigs[i].data);

		if (rc < 0)
			return rc;
	}
	*res = have->n_sigs > before ? PATH_INFO_SIGS_ADDED : PATH_INFO_UNCHANGED;
	return 0;
}
