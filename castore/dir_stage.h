/* dir_stage.h - Directories encoded for storing, each checked against its
 * digest, and a stage that holds a closure's Directories back until a
 * backend stores them with their PathInfo in one transaction (the
 * stage_dirs / commit_path operations of struct store, store/store.h). */
#ifndef STOREFS_DIR_STAGE_H
#define STOREFS_DIR_STAGE_H

#include "castore/dir_service.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One Directory's canonical encoding (malloc'd). */
struct dir_encoded {
	uint8_t *bytes;
	size_t len;
};

/* Encodes dirs[0..n) and checks each encoding against digests[i]: -EINVAL
 * with a message for a mismatch, -ENOMEM. *out (n entries) is the
 * caller's, to free with dir_encoded_free(). */
int dir_encode_checked(struct directory *const *dirs, const struct b3_digest *digests, size_t n,
		       struct dir_encoded **out);
/* Frees the n encodings and the array; NULL is a no-op. */
void dir_encoded_free(struct dir_encoded *e, size_t n);

/* What a stage holds: n Directories, encoded and checked, in put order. */
struct dir_stage {
	struct dir_service base;
	struct dir_service *real; /* gets go here; borrowed */
	struct b3_digest *digests;
	struct dir_encoded *e;
	size_t n, cap;
};

/* A stage over `real` (borrowed: it must outlive the stage); free it with
 * dir_service_free(). `partial_batches` as in struct dir_service_ops: set
 * it if the backend commits whatever was staged, whole closure or not.
 * -ENOMEM. */
int dir_stage_new(struct dir_service *real, bool partial_batches, struct dir_service **out);
/* The stage `ds` is, or NULL if it is none. */
struct dir_stage *dir_stage_of(struct dir_service *ds);

#endif
