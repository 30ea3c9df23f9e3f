/* fuzz_nar_ingest.c - libFuzzer target: arbitrary bytes through nar_ingest()
 * into a fresh in-memory store; an accepted NAR must render back to exactly
 * the input (the parser only accepts canonical NARs). */
#include "backends/memory/memory.h"
#include "store/nar_ingest.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cursor {
	const uint8_t *p;
	size_t len, pos;
};

/* Hands out input in small, uneven pieces to exercise the buffering. */
static int cursor_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct cursor *c = ctx;
	size_t left = c->len - c->pos, step = 1 + (c->pos % 4093);

	*n = len < left ? len : left;
	*n = *n < step ? *n : step;
	if (*n)
		memcpy(buf, c->p + c->pos, *n);
	c->pos += *n;
	return 0;
}

/* Compares rendered bytes with the input as they stream out. */
static int compare_write(void *ctx, const void *buf, size_t len)
{
	struct cursor *c = ctx;

	if (len > c->len - c->pos || memcmp(c->p + c->pos, buf, len))
		__builtin_trap();
	c->pos += len;
	return 0;
}

static void check_roundtrip(struct blob_service *bs, struct dir_service *ds,
			    const struct node *root, const struct nar_summary *sum,
			    const uint8_t *data, size_t size)
{
	struct cursor out = {data, size, 0};
	struct nar_summary again;

	if (nar_render(bs, ds, root, compare_write, &out, &again) != 0 || out.pos != size ||
	    again.size != sum->size || memcmp(again.sha256, sum->sha256, 32))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct cursor in = {data, size, 0};
	enum dir_size_formula f = size % 2 ? DIR_SIZE_NATIVE : DIR_SIZE_SPEC;
	struct blob_service *bs = NULL;
	struct dir_service *ds = NULL;
	struct nar_summary sum;
	struct node root;

	if (memory_blob_service_new(&bs) == 0 && memory_dir_service_new(&ds) == 0 &&
	    nar_ingest(bs, ds, f, cursor_read, &in, &root, target, &sum) == 0)
		check_roundtrip(bs, ds, &root, &sum, data, size);
	dir_service_free(ds);
	blob_service_free(bs);
	return 0;
}
