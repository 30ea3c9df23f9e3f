/* directory.h - the castore Directory: decode with full validation,
 * canonical encode, digest, and the two DirectoryEntry.size formulas.
 *
 * In memory a Directory is one array of nodes sorted bytewise by name (all
 * three kinds merged, names unique), owning their name and target bytes.
 * On the wire it is the proto3 message of castore.proto, with the three lists
 * kept apart; the digest is BLAKE3 over the canonical encoding. */
#ifndef STOREFS_DIRECTORY_H
#define STOREFS_DIRECTORY_H

#include "castore/node.h"

/* How DirectoryEntry.size counts descendants (docs/castore.md §4). */
enum dir_size_formula {
	DIR_SIZE_SPEC = 0,   /* entries + sum of child dir sizes (the spec) */
	DIR_SIZE_NATIVE = 1, /* 2*entries + sum of child dir sizes (snix) */
};

struct directory {
	struct node *nodes; /* sorted by name, unique */
	size_t count;
};

/* Decodes and validates a Directory message: per-list bytewise sort, names
 * unique across the lists, name and target rules, 32-byte digests, no size
 * overflow. -EINVAL with a message on any violation. `*out` is owned by the
 * caller (directory_free). */
int directory_decode(const uint8_t *buf, size_t len, struct directory **out);

/* Canonical encoding (field order, defaults omitted, minimal varints).
 * `*out` is malloc'd (NULL with *out_len 0 for the empty Directory). */
int directory_encode(const struct directory *d, uint8_t **out, size_t *out_len);

/* BLAKE3 of the canonical encoding. */
int directory_digest(const struct directory *d, struct b3_digest *out);

/* The `size` a parent records for this Directory. -EOVERFLOW past u64. */
int directory_size(const struct directory *d, enum dir_size_formula f, uint64_t *out);

/* Validates the in-memory form (sorted, unique, node rules, overflow). */
int directory_validate(const struct directory *d);

/* Finds a child by name; NULL if absent. O(log n). */
const struct node *directory_find(const struct directory *d, const uint8_t *name, size_t len);

void directory_free(struct directory *d);

/* Builds a Directory node by node, copying names and targets. Nodes may be
 * added in any order; _finish sorts and validates. */
struct directory_builder;
int directory_builder_new(struct directory_builder **out);
int directory_builder_add(struct directory_builder *b, const struct node *n);
/* Consumes the builder, success or not. */
int directory_builder_finish(struct directory_builder *b, struct directory **out);
void directory_builder_free(struct directory_builder *b);

#endif
