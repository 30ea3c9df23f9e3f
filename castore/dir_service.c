/* dir_service.c - backend-independent Directory operations: checked put,
 * breadth-first recursive get and the leaves-to-root closure putter. */
#include "castore/dir_service.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <stdint.h>
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

	if (s->ops->get_recursive)
		return s->ops->get_recursive(s, root, cb, ctx);

	digest_map_init(&q.seen);
	rc = queue_push(&q, root, root);
	for (size_t i = 0; rc == 0 && i < q.len; i++)
		rc = visit_one(s, &q, i, cb, ctx);
	digest_map_release(&q.seen);
	free(q.items);
	return rc;
}

/* --- receiving a closure root to leaves --- */

/* Values of dir_recv.state: a digest is expected (referenced by a received
 * Directory, or the root) or received. */
static char expected_mark, received_mark;

struct dir_recv {
	struct digest_map state;
	size_t outstanding; /* expected, not received */
	size_t received;
};

int dir_recv_new(const struct b3_digest *root, struct dir_recv **out)
{
	struct dir_recv *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	digest_map_init(&v->state);
	if (digest_map_put(&v->state, root, &expected_mark, NULL) < 0) {
		dir_recv_free(v);
		return -ENOMEM;
	}
	v->outstanding = 1;
	*out = v;
	return 0;
}

void dir_recv_free(struct dir_recv *v)
{
	if (!v)
		return;
	digest_map_release(&v->state);
	free(v);
}

int dir_recv_accept(struct dir_recv *v, const struct directory *d, struct b3_digest *digest)
{
	char text[B3_TEXT_LEN + 1];
	void *mark;
	int rc = directory_digest(d, digest);

	if (rc < 0)
		return rc;
	mark = digest_map_get(&v->state, digest);
	if (mark != &expected_mark) {
		b3_digest_to_text(digest, text);
		return sf_err(-EIO, "directory '%s' was %s", text,
			      mark ? "sent twice" : "sent before anything referred to it");
	}
	if (digest_map_put(&v->state, digest, &received_mark, NULL) < 0)
		return -ENOMEM;
	v->outstanding--;
	v->received++;
	for (size_t i = 0; i < d->count; i++) {
		if (d->nodes[i].kind != NODE_DIRECTORY ||
		    digest_map_get(&v->state, &d->nodes[i].digest))
			continue;
		if (digest_map_put(&v->state, &d->nodes[i].digest, &expected_mark, NULL) < 0)
			return -ENOMEM;
		v->outstanding++;
	}
	return 0;
}

int dir_recv_finish(struct dir_recv *v)
{
	size_t left = v->outstanding, got = v->received;

	dir_recv_free(v);
	if (got == 0)
		return -ENOENT;
	if (left)
		return sf_err(-EIO, "%zu directories of the closure were never sent", left);
	return 0;
}

/* --- put_multiple --- */

/* Directories are passed on to the service in batches of at most this many
 * Directories or entries, whichever is reached first: large enough that a
 * store's per-batch cost (a transaction) is amortised, small enough that
 * a batch is a few MiB at most. */
#define PUTTER_BATCH_DIRS  1024
#define PUTTER_BATCH_NODES 65536

/* What the closure check needs of a Directory once it has been passed on. */
struct putter_seen {
	uint64_t size; /* as a parent must record it, per the putter's formula */
	bool referenced;
};

struct dir_putter {
	struct dir_service *service;
	enum dir_size_formula formula;
	/* -> 1 + index into seen (the value must be non-NULL) */
	struct digest_map by_digest;
	struct putter_seen *seen;
	size_t count, cap, referenced;
	struct b3_digest last; /* the last new Directory: the root at close */
	/* The Directories not passed on yet: a batch, or for a service that
	 * takes whole closures only, all of them. */
	struct directory **batch;
	struct b3_digest *batch_digests;
	size_t batch_n, batch_cap, batch_nodes;
	int failed; /* the first error; the putter refuses everything after it */
	bool whole; /* dir_putter_new_whole: one put_batch, at close */
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

int dir_putter_new_whole(struct dir_service *s, enum dir_size_formula f, struct dir_putter **out)
{
	int rc = dir_putter_new(s, f, out);

	if (rc == 0)
		(*out)->whole = true;
	return rc;
}

static void batch_release(struct dir_putter *p)
{
	for (size_t i = 0; i < p->batch_n; i++)
		directory_free(p->batch[i]);
	p->batch_n = 0;
	p->batch_nodes = 0;
}

void dir_putter_free(struct dir_putter *p)
{
	if (!p)
		return;
	batch_release(p);
	free(p->batch);
	free(p->batch_digests);
	free(p->seen);
	digest_map_release(&p->by_digest);
	free(p);
}

static struct putter_seen *putter_find(struct dir_putter *p, const struct b3_digest *d)
{
	uintptr_t v = (uintptr_t)digest_map_get(&p->by_digest, d);

	return v ? &p->seen[v - 1] : NULL;
}

/* Each child Directory must have been sent before, with the size recorded. */
static int putter_check_edges(struct dir_putter *p, const struct directory *d,
			      const struct b3_digest *digest)
{
	char text[B3_TEXT_LEN + 1], child[B3_TEXT_LEN + 1];

	for (size_t i = 0; i < d->count; i++) {
		const struct node *n = &d->nodes[i];
		struct putter_seen *e;

		if (n->kind != NODE_DIRECTORY)
			continue;
		e = putter_find(p, &n->digest);
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
		struct putter_seen *e;

		if (d->nodes[i].kind != NODE_DIRECTORY)
			continue;
		e = putter_find(p, &d->nodes[i].digest);
		if (e && !e->referenced) {
			e->referenced = true;
			p->referenced++;
		}
	}
}

static int putter_record(struct dir_putter *p, const struct b3_digest *digest, uint64_t size)
{
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct putter_seen *seen = reallocarray(p->seen, cap, sizeof(*seen));

		if (!seen)
			return -ENOMEM;
		p->seen = seen;
		p->cap = cap;
	}
	if (digest_map_put(&p->by_digest, digest, (void *)(uintptr_t)(p->count + 1), NULL) < 0)
		return -ENOMEM;
	p->seen[p->count++] = (struct putter_seen){.size = size};
	p->last = *digest;
	return 0;
}

/* Passes the batch on: its children are in this or an earlier batch, so
 * the service never holds a Directory whose children it lacks. */
static int putter_flush(struct dir_putter *p)
{
	int rc = p->batch_n ? p->service->ops->put_batch(p->service, p->batch, p->batch_digests,
							 p->batch_n)
			    : 0;

	batch_release(p);
	return rc;
}

static int batch_grow(struct dir_putter *p)
{
	size_t cap = p->batch_cap ? p->batch_cap * 2 : 64;
	struct directory **b = reallocarray(p->batch, cap, sizeof(*b));
	struct b3_digest *d;

	if (!b)
		return -ENOMEM;
	p->batch = b;
	d = reallocarray(p->batch_digests, cap, sizeof(*d));
	if (!d)
		return -ENOMEM;
	p->batch_digests = d;
	p->batch_cap = cap;
	return 0;
}

/* Takes ownership of `d` in every case. */
static int putter_queue(struct dir_putter *p, struct directory *d, const struct b3_digest *digest)
{
	if (p->batch_n == p->batch_cap && batch_grow(p) < 0) {
		directory_free(d);
		return -ENOMEM;
	}
	p->batch[p->batch_n] = d;
	p->batch_digests[p->batch_n++] = *digest;
	p->batch_nodes += d->count;
	if (p->whole || !p->service->ops->partial_batches)
		return 0;
	if (p->batch_n >= PUTTER_BATCH_DIRS || p->batch_nodes >= PUTTER_BATCH_NODES)
		return putter_flush(p);
	return 0;
}

/* Validates and records `d`; takes ownership of it in every case. */
static int putter_add(struct dir_putter *p, struct directory *d, struct b3_digest *digest)
{
	uint64_t size = 0;
	int rc;

	rc = directory_validate(d);
	if (rc == 0)
		rc = directory_digest(d, digest);
	if (rc < 0 || putter_find(p, digest)) {
		directory_free(d); /* re-sending the same Directory is tolerated */
		return rc;
	}
	rc = putter_check_edges(p, d, digest);
	if (rc == 0)
		rc = directory_size(d, p->formula, &size);
	if (rc == 0)
		rc = putter_record(p, digest, size);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	putter_mark_children(p, d);
	return putter_queue(p, d, digest);
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
 * before their parents, it is the last new one sent. */
static int putter_check_root(const struct dir_putter *p)
{
	size_t roots = p->count - p->referenced;
	char text[B3_TEXT_LEN + 1] = "";

	if (p->count == 0)
		return sf_err(-EINVAL, "no directories were sent");
	if (roots == 1)
		return 0;
	/* The first unreferenced one, for the message. */
	digest_map_foreach(&p->by_digest, slot)
	{
		if (!p->seen[(uintptr_t)slot->value - 1].referenced) {
			b3_digest_to_text(&slot->key, text);
			break;
		}
	}
	return sf_err(-EINVAL, "directory closure has %zu roots, e.g. '%s' is not connected", roots,
		      text);
}

int dir_putter_close(struct dir_putter *p, struct b3_digest *root_out)
{
	int rc = p->failed;

	if (rc == 0)
		rc = putter_check_root(p);
	if (rc == 0)
		rc = putter_flush(p);
	if (rc == 0)
		*root_out = p->last;
	dir_putter_free(p);
	return rc;
}
