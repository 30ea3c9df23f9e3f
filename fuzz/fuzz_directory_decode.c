/* fuzz_directory_decode.c - libFuzzer target: arbitrary bytes through
 * directory_decode(); an accepted Directory must re-encode to bytes that
 * decode to the same Directory, and re-encoding must be stable. */
#include "castore/directory.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool nodes_equal(const struct node *a, const struct node *b)
{
	if (a->kind != b->kind || a->name_len != b->name_len ||
	    memcmp(a->name, b->name, a->name_len))
		return false;
	if (a->kind == NODE_SYMLINK)
		return a->target_len == b->target_len &&
		       !memcmp(a->target, b->target, a->target_len);
	return b3_digest_eq(&a->digest, &b->digest) && a->size == b->size &&
	       (a->kind != NODE_FILE || a->executable == b->executable);
}

static bool dirs_equal(const struct directory *a, const struct directory *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (!nodes_equal(&a->nodes[i], &b->nodes[i]))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct directory *d1 = NULL, *d2 = NULL;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	struct b3_digest g1, g2;

	if (directory_decode(data, size, &d1) != 0)
		return 0;
	if (directory_validate(d1) != 0 || directory_encode(d1, &e1, &l1) != 0 ||
	    directory_decode(e1, l1, &d2) != 0 || !dirs_equal(d1, d2) ||
	    directory_encode(d2, &e2, &l2) != 0 || l1 != l2 || (l1 && memcmp(e1, e2, l1)))
		__builtin_trap();
	/* The digest is that of the canonical encoding. */
	b3_digest_of(e1, l1, &g1);
	if (directory_digest(d1, &g2) != 0 || !b3_digest_eq(&g1, &g2))
		__builtin_trap();
	free(e1);
	free(e2);
	directory_free(d1);
	directory_free(d2);
	return 0;
}
