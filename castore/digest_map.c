/* digest_map.c - linear-probing digest -> pointer map. */
#include "castore/digest_map.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const struct b3_digest *key, size_t cap)
{
	uint64_t h;

	memcpy(&h, key->bytes, sizeof(h));
	return (size_t)h & (cap - 1);
}

void digest_map_init(struct digest_map *m)
{
	*m = (struct digest_map){0};
}

void digest_map_release(struct digest_map *m)
{
	free(m->slots);
	digest_map_init(m);
}

void *digest_map_get(const struct digest_map *m, const struct b3_digest *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].value)
			return NULL;
		if (b3_digest_eq(&m->slots[i].key, key))
			return m->slots[i].value;
	}
}

static void insert_slot(struct digest_map_slot *slots, size_t cap, const struct b3_digest *key,
			void *value)
{
	size_t i = slot_of(key, cap);

	while (slots[i].value)
		i = (i + 1) & (cap - 1);
	slots[i].key = *key;
	slots[i].value = value;
}

static int grow(struct digest_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct digest_map_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].value)
			insert_slot(slots, cap, &m->slots[i].key, m->slots[i].value);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int digest_map_put(struct digest_map *m, const struct b3_digest *key, void *value, void **old)
{
	if (m->cap) {
		for (size_t i = slot_of(key, m->cap); m->slots[i].value;
		     i = (i + 1) & (m->cap - 1)) {
			if (b3_digest_eq(&m->slots[i].key, key)) {
				if (old)
					*old = m->slots[i].value;
				m->slots[i].value = value;
				return 0;
			}
		}
	}
	if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -ENOMEM;
	insert_slot(m->slots, m->cap, key, value);
	m->count++;
	if (old)
		*old = NULL;
	return 0;
}
