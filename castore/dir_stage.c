/* dir_stage.c - see dir_stage.h. */
#include "castore/dir_stage.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void dir_encoded_free(struct dir_encoded *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		free(e[i].bytes);
	free(e);
}

int dir_encode_checked(struct directory *const *dirs, const struct b3_digest *digests, size_t n,
		       struct dir_encoded **out)
{
	struct dir_encoded *e = calloc(n ? n : 1, sizeof(*e));
	struct b3_digest got;
	int rc = e ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = directory_encode(dirs[i], &e[i].bytes, &e[i].len);
		if (rc < 0)
			break;
		b3_digest_of(e[i].bytes, e[i].len, &got);
		if (!b3_digest_eq(&got, &digests[i]))
			rc = sf_err(-EINVAL, "directory does not match its digest");
	}
	if (rc < 0) {
		dir_encoded_free(e, n);
		return rc;
	}
	*out = e;
	return 0;
}

static int stage_get(struct dir_service *ds, const struct b3_digest *digest, struct directory **out)
{
	return dir_service_get(((struct dir_stage *)ds)->real, digest, out);
}

static int stage_grow(struct dir_stage *st, size_t more)
{
	size_t cap = st->cap ? st->cap : 16;
	struct b3_digest *digests;
	struct dir_encoded *e;

	while (cap < st->n + more)
		cap *= 2;
	if (cap == st->cap)
		return 0;
	digests = reallocarray(st->digests, cap, sizeof(*digests));
	if (digests)
		st->digests = digests;
	e = digests ? reallocarray(st->e, cap, sizeof(*e)) : NULL;
	if (!e)
		return -ENOMEM;
	st->e = e, st->cap = cap;
	return 0;
}

static int stage_put_batch(struct dir_service *ds, struct directory *const *dirs,
			   const struct b3_digest *digests, size_t n)
{
	struct dir_stage *st = (struct dir_stage *)ds;
	struct dir_encoded *e = NULL;
	int rc = dir_encode_checked(dirs, digests, n, &e);

	if (rc < 0)
		return rc;
	rc = n ? stage_grow(st, n) : 0;
	if (rc < 0 || n == 0) {
		dir_encoded_free(e, n);
		return rc;
	}
	memcpy(st->e + st->n, e, n * sizeof(*e));
	memcpy(st->digests + st->n, digests, n * sizeof(*digests));
	st->n += n;
	free(e); /* the array only: its buffers moved to the stage */
	return 0;
}

static void stage_free(struct dir_service *ds)
{
	struct dir_stage *st = (struct dir_stage *)ds;

	dir_encoded_free(st->e, st->n);
	free(st->digests);
	free(st);
}

static const struct dir_service_ops stage_ops = {
    .get = stage_get,
    .put_batch = stage_put_batch,
    .free = stage_free,
};

static const struct dir_service_ops stage_partial_ops = {
    .get = stage_get,
    .put_batch = stage_put_batch,
    .free = stage_free,
    .partial_batches = true,
};

int dir_stage_new(struct dir_service *real, bool partial_batches, struct dir_service **out)
{
	struct dir_stage *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->base.ops = partial_batches ? &stage_partial_ops : &stage_ops;
	st->real = real;
	*out = &st->base;
	return 0;
}

struct dir_stage *dir_stage_of(struct dir_service *ds)
{
	if (!ds || (ds->ops != &stage_ops && ds->ops != &stage_partial_ops))
		return NULL;
	return (struct dir_stage *)ds;
}
