/* s3_store.c - the s3:// store: a bundle holding the blob service only
 * (Directories and PathInfos come from another URL, issue 16). */
#include "backends/s3/s3_internal.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s3st_blobs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return s3_blobs_each(st->blobs, cb, ctx);
}

static int s3st_blob_check(struct store *st, const struct b3_digest *d, uint64_t *size)
{
	return s3_blob_check(st->blobs, d, size);
}

int s3_store_open(const char *url, unsigned flags, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	const char *q = strchr(url, '?');
	int rc;

	if (!st)
		return -ENOMEM;
	rc = s3_blobs_new(url, flags & STORE_OPEN_READONLY, &st->blobs);
	if (rc < 0) {
		free(st);
		return rc;
	}
	st->size_formula = DIR_SIZE_SPEC;
	st->blobs_each = s3st_blobs_each; /* storefs verify (docs/s3.md "Verify") */
	st->blob_check = s3st_blob_check;
	/* the URL without its parameters: enough to name it in messages */
	st->location = strndup(url, q ? (size_t)(q - url) : strlen(url));
	if (!st->location) {
		store_free(st);
		return -ENOMEM;
	}
	*out = st;
	return 0;
}

void s3_store_set_deadline(struct store *st, const struct deadline_rule *r)
{
	s3_blobs_set_deadline(st->blobs, r);
}
