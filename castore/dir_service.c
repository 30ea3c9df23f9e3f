/* dir_service.c - backend-independent Directory operations: checked put,
 * breadth-first recursive get and the leaves-to-root closure putter. */
#include "castore/dir_service.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <stdlib.h>

/* Every child Directory of `d` must already be stored. */
static int check_children_present(struct dir_service *s, const struct directory *d)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct node *n = &d->nodes[i];
		struct directory *child;
		char text[B3_TEXT_LEN + 1];
		int rc;

		if (n->kind != NODE_DIRECTORY)
			continue;
		rc = dir_service_get(s, &n->digest, &child);
		if (rc == -ENOENT) {
			b3_digest_to_text(&n->digest, text);
			return sf_err(-EINVAL, "child directory '%.*s' (%s) is not stored",
				      (int)n->name_len, n->name, text);
		}
		if (rc < 0)
			return rc;
		directory_free(child);
	}
	return 0;
}

int dir_service_put(struct dir_service *s, const struct directory *d, struct b3_digest *out)
{
	/* put_batch does not modify the Directories it is given. */
	struct directory *batch[1] = {(struct directory *)d};
	struct b3_digest digest;
	int rc;

	rc = directory_validate(d);
	if (rc == 0)
		rc = check_children_present(s, d);
	if (rc == 0)
		rc = directory_digest(d, &digest);
	if (rc == 0)
		rc = s->ops->put_batch(s, batch, &digest, 1);
	if (rc == 0)
		*out = digest;
	return rc;
}

/* --- recursive get --- */

struct visit_item {
	struct b3_digest digest, parent;
};

struct visit_queue {
	struct visit_item *items;
	size_t head, len, cap;
	struct digest_map seen; /* values are a non-NULL marker */
};

static int queue_push(struct visit_queue *q, const struct b3_digest *d,
		      const struct b3_digest *parent)
{
	struct visit_item *items;

	if (digest_map_get(&q->seen, d))
		return 0;
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;

		items = realloc(q->items, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		q->items = items;
		q->cap = cap;
	}
	if (digest_map_put(&q->seen, d, q, NULL) < 0)
		return -ENOMEM;
	q->items[q->len++] = (struct visit_item){*d, *parent};
	return 0;
}

static int queue_children(struct visit_queue *q, const struct b3_digest *parent,
			  const struct directory *d)
{
	for (size_t i = 0; i < d->count; i++) {
		if (d->nodes[i].kind != NODE_DIRECTORY)
			continue;
		if (queue_push(q, &d->nodes[i].digest, parent) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int missing_child(const struct visit_item *it)
{
	char text[B3_TEXT_LEN + 1], parent[B3_TEXT_LEN + 1];

	b3_digest_to_text(&it->digest, text);
	b3_digest_to_text(&it->parent, parent);
	return sf_err(-EIO, "directory '%s' referenced by '%s' is missing", text, parent);
}

/* Fetches and visits one queued Directory, queueing its children. */
static int visit_one(struct dir_service *s, struct visit_queue *q, size_t idx, dir_visit_fn cb,
		     void *ctx)
{
	struct visit_item it = q->items[idx];
	struct directory *d;
	int rc = dir_service_get(s, &it.digest, &d);

	if (rc == -ENOENT)
		return idx == 0 ? -ENOENT : missing_child(&it);
	if (rc < 0)
		return rc;
	rc = queue_children(q, &it.digest, d);
	if (rc == 0)
		rc = cb(ctx, &it.digest, d);
	directory_free(d);
	return rc;
}

int dir_service_get_recursive(struct dir_service *s, const struct b3_digest *root, dir_visit_fn cb,
			      void *ctx)
{
	struct visit_queue q = {0};
	int rc;

	digest_map_init(&q.seen);
	rc = queue_push(&q, root, root);
	for (size_t i = 0; rc == 0 && i < q.len; i++)
		rc = visit_one(s, &q, i, cb, ctx);
	digest_map_release(&q.seen);
	free(q.items);
	return rc;
}

/* --- put_multiple --- */

struct putter_entry {
	struct directory *dir;
	struct b3_digest digest;
	uint64_t size; /* as a parent must record it, per the putter's formula */
	bool referenced;
};

struct dir_putter {
	struct dir_service *service;
	enum dir_size_formula formula;
	struct digest_map by_digest; /* -> struct putter_entry */
	struct putter_entry **order; /* arrival order, hence leaves first */
	size_t count, cap;
	int failed; /* the first error; the putter refuses everything after it */
};

int dir_putter_new(struct dir_service *s, enum dir_size_formula f, struct dir_putter **out)
{
	struct dir_putter *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->service = s;
	p->formula = f;
	digest_map_init(&p->by_digest);
	*out = p;
	return 0;
}

void dir_putter_free(struct dir_putter *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->count; i++) {
		directory_free(p->order[i]->dir);
		free(p->order[i]);
	}
	free(p->order);
	digest_map_release(&p->by_digest);
	free(p);
}

/* Each child Directory must have been sent before, with the size recorded. */
static int putter_check_edges(struct dir_putter *p, const struct directory *d,
			      const struct b3_digest *digest)
{
	char text[B3_TEXT_LEN + 1], child[B3_TEXT_LEN + 1];

	for (size_t i = 0; i < d->count; i++) {
		const struct node *n = &d->nodes[i];
		struct putter_entry *e;

		if (n->kind != NODE_DIRECTORY)
			continue;
		e = digest_map_get(&p->by_digest, &n->digest);
		b3_digest_to_text(digest, text);
		if (!e) {
			b3_digest_to_text(&n->digest, child);
			return sf_err(-EINVAL,
				      "directory '%s' references '%.*s' (%s), which was not sent "
				      "before it",
				      text, (int)n->name_len, n->name, child);
		}
		if (e->size != n->size)
			return sf_err(-EINVAL,
				      "directory '%s': '%.*s' has wrong size, specified %llu, "
				      "recorded %llu",
				      text, (int)n->name_len, n->name, (unsigned long long)n->size,
				      (unsigned long long)e->size);
	}
	return 0;
}

static void putter_mark_children(struct dir_putter *p, const struct directory *d)
{
	for (size_t i = 0; i < d->count; i++) {
		struct putter_entry *e;

		if (d->nodes[i].kind != NODE_DIRECTORY)
			continue;
		e = digest_map_get(&p->by_digest, &d->nodes[i].digest);
		if (e)
			e->referenced = true;
	}
}

static int putter_append(struct dir_putter *p, struct putter_entry *e)
{
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct putter_entry **order = realloc(p->order, cap * sizeof(*order));

		if (!order)
			return -ENOMEM;
		p->order = order;
		p->cap = cap;
	}
	if (digest_map_put(&p->by_digest, &e->digest, e, NULL) < 0)
		return -ENOMEM;
	p->order[p->count++] = e;
	return 0;
}

/* Validates and records `d`; takes ownership of it in every case. */
static int putter_add(struct dir_putter *p, struct directory *d, struct b3_digest *digest)
{
	struct putter_entry *e;
	int rc;

	rc = directory_validate(d);
	if (rc == 0)
		rc = directory_digest(d, digest);
	if (rc < 0 || digest_map_get(&p->by_digest, digest)) {
		directory_free(d); /* re-sending the same Directory is tolerated */
		return rc;
	}
	e = calloc(1, sizeof(*e));
	rc = e ? 0 : -ENOMEM;
	if (rc == 0)
		rc = putter_check_edges(p, d, digest);
	if (rc == 0)
		rc = directory_size(d, p->formula, &e->size);
	if (rc == 0) {
		e->dir = d;
		e->digest = *digest;
		rc = putter_append(p, e);
	}
	if (rc < 0) {
		free(e);
		directory_free(d);
		return rc;
	}
	putter_mark_children(p, d);
	return 0;
}

int dir_putter_put(struct dir_putter *p, struct directory *d, struct b3_digest *digest_out)
{
	struct b3_digest digest;
	int rc;

	if (p->failed) {
		directory_free(d);
		return p->failed;
	}
	rc = putter_add(p, d, &digest);
	if (rc < 0) {
		p->failed = rc;
		return rc;
	}
	if (digest_out)
		*digest_out = digest;
	return 0;
}

/* Exactly one Directory may be unreferenced: the root. Since children come
 * before their parents, it is the last one sent. */
static int putter_check_root(const struct dir_putter *p)
{
	size_t roots = 0;
	char text[B3_TEXT_LEN + 1] = "";

	if (p->count == 0)
		return sf_err(-EINVAL, "no directories were sent");
	for (size_t i = 0; i < p->count; i++)
		roots += !p->order[i]->referenced;
	if (roots == 1)
		return 0;
	for (size_t i = 0; i < p->count; i++) {
		if (!p->order[i]->referenced) {
			b3_digest_to_text(&p->order[i]->digest, text);
			break;
		}
	}
	return sf_err(-EINVAL, "directory closure has %zu roots, e.g. '%s' is not connected", roots,
		      text);
}

static int putter_store(struct dir_putter *p)
{
	struct directory **dirs = calloc(p->count, sizeof(*dirs));
	struct b3_digest *digests = calloc(p->count, sizeof(*digests));
	int rc = -ENOMEM;

	if (dirs && digests) {
		for (size_t i = 0; i < p->count; i++) {
			dirs[i] = p->order[i]->dir;
			digests[i] = p->order[i]->digest;
		}
		rc = p->service->ops->put_batch(p->service, dirs, digests, p->count);
	}
	free(dirs);
	free(digests);
	return rc;
}

int dir_putter_close(struct dir_putter *p, struct b3_digest *root_out)
{
	int rc = p->failed;

	if (rc == 0)
		rc = putter_check_root(p);
	if (rc == 0)
		rc = putter_store(p);
	if (rc == 0)
		*root_out = p->order[p->count - 1]->digest;
	dir_putter_free(p);
	return rc;
}
