/* node.h - castore nodes: a directory, file or symlink entry with its name.
 *
 * A node is what a Directory lists and what a PathInfo's root is. Name and
 * target bytes are borrowed from whoever owns the node (a struct directory's
 * arena, a struct path_info, ...). */
#ifndef STOREFS_NODE_H
#define STOREFS_NODE_H

#include "castore/digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CASTORE_MAX_NAME_LEN   255
#define CASTORE_MAX_TARGET_LEN 4095

enum node_kind { NODE_DIRECTORY = 1, NODE_FILE = 2, NODE_SYMLINK = 3 };

struct node {
	enum node_kind kind;
	const uint8_t *name;
	size_t name_len;
	struct b3_digest digest; /* directory and file */
	uint64_t size;		 /* directory: DirectoryEntry.size; file: length */
	bool executable;	 /* file */
	const uint8_t *target;	 /* symlink */
	size_t target_len;
};

/* Name rules of a path component: non-empty, not "." or "..", at most 255
 * bytes, no NUL, no '/'. -EINVAL with a message naming the rule. */
int castore_name_check(const uint8_t *name, size_t len);

/* Symlink target rules: 1..4095 bytes, no NUL. */
int castore_target_check(const uint8_t *target, size_t len);

/* Bytewise (memcmp, then length) order of names, as Nix and snix sort. */
int castore_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Checks a node's own fields (name if `named`, target). */
int node_validate(const struct node *n, bool named);

/* Encodes `n` as a castore Entry message (the oneof wrapper), including its
 * name (empty for an anonymous node). `*out` is malloc'd; caller frees. */
int node_encode_entry(const struct node *n, uint8_t **out, size_t *out_len);

/* Decodes and validates an Entry. The returned node's name and target point
 * into *arena (malloc'd, caller frees). `named` requires a valid name;
 * otherwise the name must be empty (an anonymous Entry). */
int node_decode_entry(const uint8_t *buf, size_t len, bool named, struct node *out,
		      uint8_t **arena);

#endif
