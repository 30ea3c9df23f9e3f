/* digest.h - BLAKE3 digests (B3Digest) of blobs and Directories.
 *
 * The textual form is "blake3-" + standard base64 with padding (51 chars),
 * as snix prints it; hex is used for file names. */
#ifndef STOREFS_DIGEST_H
#define STOREFS_DIGEST_H

#include <blake3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define B3_LEN	    32
#define B3_HEX_LEN  64
#define B3_TEXT_LEN 51 /* "blake3-" + 44 */

struct b3_digest {
	uint8_t bytes[B3_LEN];
};

struct b3_hasher {
	blake3_hasher h;
};

void b3_hasher_init(struct b3_hasher *hs);
void b3_hasher_update(struct b3_hasher *hs, const void *data, size_t len);
void b3_hasher_final(const struct b3_hasher *hs, struct b3_digest *out);

/* One-shot digest of a buffer. */
void b3_digest_of(const void *data, size_t len, struct b3_digest *out);

static inline bool b3_digest_eq(const struct b3_digest *a, const struct b3_digest *b)
{
	return memcmp(a->bytes, b->bytes, B3_LEN) == 0;
}

/* From raw bytes (e.g. a protobuf field): -EINVAL unless exactly 32. */
int b3_digest_from_bytes(const void *data, size_t len, struct b3_digest *out);

/* `out` holds B3_HEX_LEN+1 bytes. */
void b3_digest_to_hex(const struct b3_digest *d, char *out);
int b3_digest_from_hex(const char *s, size_t len, struct b3_digest *out);

/* `out` holds B3_TEXT_LEN+1 bytes: "blake3-<base64>". */
void b3_digest_to_text(const struct b3_digest *d, char *out);
/* Accepts exactly the form above. -EINVAL otherwise. */
int b3_digest_from_text(const char *s, size_t len, struct b3_digest *out);

/* The digest of the empty blob (also that of the empty Directory). */
extern const struct b3_digest b3_empty_digest;

#endif
