/* closure.c - the closure of store paths over their references: an
 * explicit stack, so a deep chain of references cannot exhaust the C stack. */
#include "store/closure.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

char closure_seen_mark;

static void key_of(const uint8_t digest[STORE_PATH_DIGEST_LEN], struct b3_digest *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->bytes, digest, STORE_PATH_DIGEST_LEN);
}

void path_set_init(struct path_set *s)
{
	digest_map_init(&s->map);
}

void path_set_release(struct path_set *s)
{
	digest_map_release(&s->map);
}

void *path_set_get(const struct path_set *s, const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct b3_digest k;

	key_of(digest, &k);
	return digest_map_get(&s->map, &k);
}

int path_set_put(struct path_set *s, const uint8_t digest[STORE_PATH_DIGEST_LEN], void *value)
{
	struct b3_digest k;

	key_of(digest, &k);
	return digest_map_put(&s->map, &k, value, NULL);
}

struct path_stack {
	struct store_path *v;
	size_t n, cap;
};

static int stack_push(struct path_stack *st, const struct store_path *p)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		struct store_path *v = realloc(st->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		st->v = v, st->cap = cap;
	}
	st->v[st->n++] = *p;
	return 0;
}

/* Fetches `p`; -ENOENT (no message) if absent or if the name differs. */
static int fetch(struct path_info_service *ps, const struct store_path *p, struct path_info **out)
{
	int rc = path_info_service_get(ps, p->digest, out);

	if (rc == 0 && strcmp((*out)->path.name, p->name) != 0) {
		path_info_free(*out);
		rc = -ENOENT;
	}
	return rc;
}

/* Marks `p` and queues its references. 1 if it was added. */
static int visit(struct path_info_service *ps, const struct store_path *p, bool missing_ok,
		 bool keep, struct path_set *seen, struct path_stack *todo)
{
	char full[STORE_PATH_FULL_MAX];
	struct path_info *pi;
	int rc;

	if (path_set_get(seen, p->digest))
		return 0;
	rc = fetch(ps, p, &pi);
	if (rc == -ENOENT && missing_ok)
		return path_set_put(seen, p->digest, &closure_seen_mark);
	if (rc == -ENOENT) {
		store_path_full(p, full);
		return sf_err(-ENOENT, "'%s' is not in the store", full);
	}
	if (rc < 0)
		return rc;
	rc = path_set_put(seen, p->digest, keep ? (void *)pi : &closure_seen_mark);
	for (size_t i = 0; rc == 0 && i < pi->n_refs; i++)
		if (!path_set_get(seen, pi->refs[i].digest))
			rc = stack_push(todo, &pi->refs[i]);
	if (rc < 0) {
		if (keep)
			path_set_put(seen, p->digest, &closure_seen_mark);
		path_info_free(pi);
		return rc;
	}
	if (!keep)
		path_info_free(pi);
	return 1;
}

long closure_walk(struct path_info_service *ps, const struct store_path *start, size_t n,
		  bool missing_ok, bool keep, struct path_set *seen)
{
	struct path_stack todo = {0};
	long added = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = stack_push(&todo, &start[i]);
	while (rc >= 0 && todo.n) {
		struct store_path p = todo.v[--todo.n];

		rc = visit(ps, &p, missing_ok, keep, seen, &todo);
		added += rc > 0;
	}
	free(todo.v);
	return rc < 0 ? rc : added;
}

int closure_size(struct path_info_service *ps, const struct store_path *p, uint64_t *out)
{
	struct path_set seen;
	long rc;

	path_set_init(&seen);
	rc = closure_walk(ps, p, 1, false, true, &seen);
	*out = 0;
	digest_map_foreach(&seen.map, slot)
	{
		if (slot->value != &closure_seen_mark) {
			*out += ((struct path_info *)slot->value)->nar_size;
			path_info_free(slot->value);
		}
	}
	path_set_release(&seen);
	return rc < 0 ? (int)rc : 0;
}
