/* grpc_dirahead.c - Directories received ahead of their Get (docs/grpc.md
 * §3 "Directories ahead").
 *
 * A walk of a mount (tar, find, du) gets every Directory below the one it
 * starts at, one at a time, each a round trip. So a Get that misses asks
 * for the Directory recursively instead: the stream brings its subtree,
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
		if (slot->value != &taken)
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

bool grpc_dirahead_take(struct grpc_dirahead *a, const struct b3_digest *dg, struct directory **out)
{
	struct directory *d;

	pthread_mutex_lock(&a->mu);
	d = digest_map_get(&a->map, dg);
	if (d && d != (void *)&taken && digest_map_put(&a->map, dg, &taken, NULL) == 0)
		a->held--;
	else
		d = NULL;
	pthread_mutex_unlock(&a->mu);
	if (d)
		*out = d;
	return d != NULL;
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
		if (old && old != (void *)&taken)
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
