/* nar.h - NAR (Nix ARchive) rendering from castore nodes and streaming
 * ingestion of NARs into castore (docs/nar.md). */
#ifndef STOREFS_NAR_H
#define STOREFS_NAR_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"

#include <openssl/evp.h>
#include <stdint.h>

/* Nesting limits of modern Nix (docs/nar.md §4, §6): an object at depth
 * NAR_MAX_DEPTH or more (root = depth 0, each directory entry one level
 * deeper) is refused by both the renderer and the ingester, so the deepest
 * allowed path has 63 components. Tags (keywords) longer than NAR_MAX_TAG
 * bytes are refused by the ingester. */
#define NAR_MAX_DEPTH 64
#define NAR_MAX_TAG   32

/* Receives rendered NAR bytes; a negative return aborts rendering. */
typedef int (*nar_write_fn)(void *ctx, const void *buf, size_t len);

struct nar_summary {
	uint8_t sha256[32];
	uint64_t size;
};

/* Renders the canonical NAR of `root` (its name is ignored), byte-identical
 * to `nix-store --dump` of the same tree, streaming with constant memory (one
 * Directory per level, one 128 KiB copy buffer). `write` may be NULL to only
 * hash; only its negative returns count as failure and are passed up
 * unchanged. `out` may be NULL. Errors: a missing blob or Directory, or a blob
 * shorter or longer than the node's size, is -EIO with a message naming the
 * digest; a tree nested NAR_MAX_DEPTH levels or more is -ELOOP. Bytes
 * already written before a failure are not retracted. */
int nar_render(struct blob_service *bs, struct dir_service *ds, const struct node *root,
	       nar_write_fn write, void *ctx, struct nar_summary *out);

#endif
