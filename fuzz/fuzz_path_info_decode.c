/* fuzz_path_info_decode.c - libFuzzer target: arbitrary bytes through
 * path_info_decode(); an accepted PathInfo must validate, re-encode to bytes
 * that decode again, and re-encoding must be stable. */
#include "store/path_info.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool infos_equal(const struct path_info *a, const struct path_info *b)
{
	if (memcmp(&a->path, &b->path, sizeof(a->path)) || a->nar_size != b->nar_size ||
	    memcmp(a->nar_sha256, b->nar_sha256, 32) || a->n_refs != b->n_refs ||
	    a->n_sigs != b->n_sigs || a->has_deriver != b->has_deriver || a->has_ca != b->has_ca ||
	    a->root.kind != b->root.kind)
		return false;
	for (size_t i = 0; i < a->n_refs; i++)
		if (store_path_cmp(&a->refs[i], &b->refs[i]))
			return false;
	for (size_t i = 0; i < a->n_sigs; i++)
		if (strcmp(a->sigs[i].name, b->sigs[i].name) ||
		    memcmp(a->sigs[i].data, b->sigs[i].data, 64))
			return false;
	if (a->has_ca && (a->ca_type != b->ca_type || a->ca_digest_len != b->ca_digest_len ||
			  memcmp(a->ca_digest, b->ca_digest, a->ca_digest_len)))
		return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct path_info *p1 = NULL, *p2 = NULL, *p3 = NULL;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (path_info_decode(data, size, &p1) != 0)
		return 0;
	if (path_info_validate(p1) != 0 || path_info_encode(p1, &e1, &l1) != 0 ||
	    path_info_decode(e1, l1, &p2) != 0 || !infos_equal(p1, p2) ||
	    path_info_encode(p2, &e2, &l2) != 0 || l1 != l2 || memcmp(e1, e2, l1) ||
	    path_info_decode(e2, l2, &p3) != 0 || !infos_equal(p2, p3))
		__builtin_trap();
	free(e1);
	free(e2);
	path_info_free(p1);
	path_info_free(p2);
	path_info_free(p3);
	return 0;
}
