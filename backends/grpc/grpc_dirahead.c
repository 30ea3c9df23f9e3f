/* grpc_dirahead.c - Directories received ahead of their Get (docs/grpc.md
 * §3 "Directories ahead").
 *
 * A walk of a mount (tar, find, du) gets every Directory below the one it
 * starts at, one at a time, each a round trip. A Directory asked for out
 * of the blue (a store path's root, at its lookup) is got alone, and its
 * children are marked; when one of them is asked for, the walk is going
 * down, and that Get asks recursively: the stream brings its subtree,
 * each Directory validated and checked root to leaves (castore's
 * dir_recv) like any recursive Get, and the ones below the root are kept
 * here until they are asked for, when they are handed over once. What is
 * kept is bounded (AHEAD_MAX Directories, AHEAD_BYTES of messages): one
 * stream keeps at most half of it and stops (cancels) there, and a stream
 * that would not fit next to what is kept drops what is kept first. */
#include "backends/grpc/grpc_internal.h"

#include "common/err.h"

#include <stdlib.h>

#define AHEAD_MAX   8192
#define AHEAD_BYTES (32u << 20)

/* The value of a Directory handed over already (digest_map has no
 * delete): it is not kept twice, and is asked for again if need be. */
static char taken;
/* The value of a child of a Directory that was got alone: a walk that
 * comes to it is going down, so its Get is the recursive one. */
static char wanted;

static bool is_mark(const void *v)
{
	return v == &taken || v == &wanted;
}

void grpc_dirahead_init(struct grpc_dirahead *a)
{
	pthread_mutex_init(&a->mu, NULL);
	digest_map_init(&a->map);
}

/* Frees what is kept; a->mu held or unused. */
static void ahead_drop(struct grpc_dirahead *a)
{
	digest_map_foreach(&a->map, slot)
	{
		if (!is_mark(slot->value))
			directory_free(slot->value);
	}
	digest_map_release(&a->map);
	digest_map_init(&a->map);
	a->held = 0;
	a->bytes = 0;
}

void grpc_dirahead_release(struct grpc_dirahead *a)
{
	ahead_drop(a);
	digest_map_release(&a->map);
	pthread_mutex_destroy(&a->mu);
}

enum grpc_ahead grpc_dirahead_take(struct grpc_dirahead *a, const struct b3_digest *dg,
				   struct directory **out)
{
	enum grpc_ahead got = GRPC_AHEAD_MISS;
	void *v;

	pthread_mutex_lock(&a->mu);
	v = digest_map_get(&a->map, dg);
	if (v == &wanted)
		got = GRPC_AHEAD_DOWN;
	else if (v && v != &taken && digest_map_put(&a->map, dg, &taken, NULL) == 0) {
		a->held--;
		*out = v;
		got = GRPC_AHEAD_TAKEN;
	}
	pthread_mutex_unlock(&a->mu);
	return got;
}

void grpc_dirahead_want_children(struct grpc_dirahead *a, const struct directory *d)
{
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < d->count && a->map.count < 4 * AHEAD_MAX; i++) {
		if (d->nodes[i].kind == NODE_DIRECTORY &&
		    !digest_map_get(&a->map, &d->nodes[i].digest))
			(void)digest_map_put(&a->map, &d->nodes[i].digest, &wanted, NULL);
	}
	pthread_mutex_unlock(&a->mu);
}

/* Room for one more stream's worth, dropping what is kept if need be. */
void grpc_dirahead_make_room(struct grpc_dirahead *a)
{
	pthread_mutex_lock(&a->mu);
	if (a->held + AHEAD_MAX / 2 > AHEAD_MAX || a->bytes + AHEAD_BYTES / 2 > AHEAD_BYTES ||
	    a->map.count > 4 * AHEAD_MAX)
		ahead_drop(a);
	pthread_mutex_unlock(&a->mu);
}

/* Keeps `d` (received as `len` message bytes) for its Get, taking it
 * over; false (d freed) once the stream has kept its share, which
 * `*kept` counts. */
bool grpc_dirahead_keep(struct grpc_dirahead *a, const struct b3_digest *dg, struct directory *d,
			size_t len, size_t *kept)
{
	void *old = NULL;
	bool ok;

	pthread_mutex_lock(&a->mu);
	ok = *kept < AHEAD_MAX / 2 && a->bytes + len <= AHEAD_BYTES &&
	     digest_map_put(&a->map, dg, d, &old) == 0;
	if (ok) {
		if (old && !is_mark(old))
			directory_free(old);
		else
			a->held++;
		a->bytes += len;
		++*kept;
	}
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		directory_free(d);
	return ok;
}
