/* blob_tracker.c - a blob service that lists the blobs its writers created. */
#include "castore/blob_tracker.h"
#include "castore/digest_list.h"

#include <stdlib.h>

struct blob_tracker {
	struct blob_service base;
	struct blob_service *inner;
	struct digest_list created;
};

struct tracked_writer {
	struct blob_writer base;
	struct blob_writer *inner;
	struct blob_tracker *t;
};

static int tw_write(struct blob_writer *bw, const void *buf, size_t len)
{
	return blob_writer_write(((struct tracked_writer *)bw)->inner, buf, len);
}

static int tw_commit(struct blob_writer *bw, const struct b3_digest *expect, struct b3_digest *out,
		     bool *created)
{
	struct tracked_writer *w = (struct tracked_writer *)bw;
	struct b3_digest d;
	bool isnew = false;
	int rc = blob_writer_commit_new(w->inner, expect, &d, &isnew);

	/* Not tracking a blob we created would leave it for the next gc: the
	 * commit still stands, the list says so by failing. */
	if (rc == 0 && isnew)
		rc = digest_list_add(&w->t->created, &d);
	if (rc == 0 && out)
		*out = d;
	if (rc == 0 && created)
		*created = isnew;
	free(w);
	return rc;
}

static void tw_abort(struct blob_writer *bw)
{
	struct tracked_writer *w = (struct tracked_writer *)bw;

	blob_writer_abort(w->inner);
	free(w);
}

static const struct blob_writer_ops tw_ops = {
    .write = tw_write,
    .commit = tw_commit,
    .abort = tw_abort,
};

static int bt_open_write(struct blob_service *bs, struct blob_writer **out)
{
	struct blob_tracker *t = (struct blob_tracker *)bs;
	struct tracked_writer *w = malloc(sizeof(*w));
	int rc = w ? blob_service_open_write(t->inner, &w->inner) : -ENOMEM;

	if (rc < 0) {
		free(w);
		return rc;
	}
	w->base.ops = &tw_ops;
	w->t = t;
	*out = &w->base;
	return 0;
}

static int bt_put_hashed(struct blob_service *bs, const void *buf, size_t len,
			 const struct b3_digest *d, bool *created)
{
	struct blob_tracker *t = (struct blob_tracker *)bs;
	int rc = blob_service_put_hashed(t->inner, buf, len, d, created);

	/* As in tw_commit: a blob created and not listed fails the put. */
	return rc == 0 && *created ? digest_list_add(&t->created, d) : rc;
}

static int bt_stat(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	return blob_service_stat(((struct blob_tracker *)bs)->inner, d, size);
}

static int bt_open_read(struct blob_service *bs, const struct b3_digest *d,
			struct blob_reader **out)
{
	return blob_service_open_read(((struct blob_tracker *)bs)->inner, d, out);
}

static int bt_flush(struct blob_service *bs)
{
	return blob_service_flush(((struct blob_tracker *)bs)->inner);
}

static bool bt_creates_if_absent(struct blob_service *bs, uint64_t size)
{
	return blob_service_creates_if_absent(((struct blob_tracker *)bs)->inner, size);
}

static void bt_free(struct blob_service *bs)
{
	struct blob_tracker *t = (struct blob_tracker *)bs;

	digest_list_release(&t->created);
	free(t);
}

static const struct blob_service_ops bt_ops = {
    .stat = bt_stat,
    .open_read = bt_open_read,
    .open_write = bt_open_write,
    .flush = bt_flush,
    .put_hashed = bt_put_hashed,
    .free = bt_free,
    .creates_if_absent = bt_creates_if_absent,
};

int blob_tracker_new(struct blob_service *inner, struct blob_tracker **out)
{
	struct blob_tracker *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->base.ops = &bt_ops;
	t->inner = inner;
	digest_list_init(&t->created);
	*out = t;
	return 0;
}

struct blob_service *blob_tracker_service(struct blob_tracker *t)
{
	return &t->base;
}

size_t blob_tracker_created(struct blob_tracker *t, const struct b3_digest **v)
{
	return digest_list_peek(&t->created, v);
}

void blob_tracker_take(struct blob_tracker *t, struct b3_digest **v, size_t *n)
{
	digest_list_take(&t->created, v, n);
}

void blob_tracker_free(struct blob_tracker *t)
{
	if (t)
		bt_free(&t->base);
}
