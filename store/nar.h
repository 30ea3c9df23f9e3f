/* nar.h - NAR (Nix ARchive) rendering from castore nodes and streaming
 * ingestion of NARs into castore (nix.md §1). */
#ifndef STOREFS_NAR_H
#define STOREFS_NAR_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"

#include <openssl/evp.h>
#include <stdint.h>

/* NAR directories deeper than this are refused (root = depth 0), as modern
 * Nix does. */
#define NAR_MAX_DEPTH 64
#define NAR_MAX_TAG 32

/* Receives rendered NAR bytes; a negative return aborts rendering. */
typedef int (*nar_write_fn)(void *ctx, const void *buf, size_t len);

struct nar_summary {
	uint8_t sha256[32];
	uint64_t size;
};

/* Renders the canonical NAR of `root` (its name is ignored), streaming with
 * constant memory (one Directory per level). `write` may be NULL to only
 * hash. A missing blob or Directory, or a blob whose length differs from
 * the node's size, is -EIO with a message naming it. */
int nar_render(struct blob_service *bs, struct dir_service *ds, const struct node *root,
	       nar_write_fn write, void *ctx, struct nar_summary *out);

#endif
