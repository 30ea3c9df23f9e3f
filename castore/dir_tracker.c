/* dir_tracker.c - a Directory service that lists the Directories its puts
 * created. */
#include "castore/dir_tracker.h"
#include "castore/digest_list.h"

#include <errno.h>
#include <stdlib.h>

struct dir_tracker {
	struct dir_service base;
	struct dir_service *inner;
	struct digest_list created;
};

static int dt_get(struct dir_service *ds, const struct b3_digest *d, struct directory **out)
{
	return dir_service_get(((struct dir_tracker *)ds)->inner, d, out);
}

/* Without the inner service's answer, a Directory absent just before the
 * put counts as created. Another writer storing it in between would make
 * both count it; the reclaim spares what registered paths reach, so that
 * is harmless. */
static int absent_before(struct dir_service *s, const struct b3_digest *digests, size_t n,
			 bool *created)
{
	for (size_t i = 0; i < n; i++) {
		struct directory *d = NULL;
		int rc = dir_service_get(s, &digests[i], &d);

		directory_free(d);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		created[i] = rc == -ENOENT;
	}
	return 0;
}

static int dt_put_batch(struct dir_service *ds, struct directory *const *dirs,
			const struct b3_digest *digests, size_t n)
{
	struct dir_tracker *t = (struct dir_tracker *)ds;
	struct dir_service *in = t->inner;
	bool *created = calloc(n ? n : 1, sizeof(*created));
	int rc = created ? 0 : -ENOMEM;

	if (rc == 0 && in->ops->put_batch_created)
		rc = in->ops->put_batch_created(in, dirs, digests, n, created);
	else if (rc == 0) {
		rc = absent_before(in, digests, n, created);
		if (rc == 0)
			rc = in->ops->put_batch(in, dirs, digests, n);
	}
	/* Not tracking a Directory we created would leave it for the next
	 * gc: the put still stands, the list says so by failing. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (created[i])
			rc = digest_list_add(&t->created, &digests[i]);
	free(created);
	return rc;
}

static void dt_free(struct dir_service *ds)
{
	struct dir_tracker *t = (struct dir_tracker *)ds;

	digest_list_release(&t->created);
	free(t);
}

/* The tracker takes batches as its inner service does. */
static const struct dir_service_ops dt_ops = {
    .get = dt_get,
    .put_batch = dt_put_batch,
    .free = dt_free,
};
static const struct dir_service_ops dt_ops_partial = {
    .get = dt_get,
    .put_batch = dt_put_batch,
    .free = dt_free,
    .partial_batches = true,
};

int dir_tracker_new(struct dir_service *inner, struct dir_tracker **out)
{
	struct dir_tracker *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->base.ops = inner->ops->partial_batches ? &dt_ops_partial : &dt_ops;
	t->inner = inner;
	digest_list_init(&t->created);
	*out = t;
	return 0;
}

struct dir_service *dir_tracker_service(struct dir_tracker *t)
{
	return &t->base;
}

void dir_tracker_take(struct dir_tracker *t, struct b3_digest **v, size_t *n)
{
	digest_list_take(&t->created, v, n);
}

void dir_tracker_free(struct dir_tracker *t)
{
	if (t)
		dt_free(&t->base);
}
