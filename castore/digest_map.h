/* digest_map.h - open-addressing hash map from a 32-byte digest to a
 * pointer. Not thread-safe; callers lock. Digests are uniformly random, so
 * their first bytes serve directly as the hash. */
#ifndef STOREFS_DIGEST_MAP_H
#define STOREFS_DIGEST_MAP_H

#include "castore/digest.h"

struct digest_map_slot {
	struct b3_digest key;
	void *value; /* NULL marks an empty slot: values must be non-NULL */
};

struct digest_map {
	struct digest_map_slot *slots;
	size_t cap; /* power of two */
	size_t count;
};

void digest_map_init(struct digest_map *m);
/* Frees the table, not the values. */
void digest_map_release(struct digest_map *m);
/* The value for `key`, or NULL. */
void *digest_map_get(const struct digest_map *m, const struct b3_digest *key);
/* Inserts or replaces; `value` must be non-NULL. -ENOMEM. If `old` is given
 * it receives the replaced value (or NULL). */
int digest_map_put(struct digest_map *m, const struct b3_digest *key, void *value, void **old);

#define digest_map_foreach(m, slot)                                                                \
	for (struct digest_map_slot *slot = (m)->slots; slot && slot < (m)->slots + (m)->cap;      \
	     slot++)                                                                               \
		if (slot->value)

#endif
