/* nixbase32.h - Nix's base-32 ("nix32"): alphabet 0-9a-z minus e,o,u,t,
 * least significant 5-bit group printed last (docs/store-paths.md §1). */
#ifndef STOREFS_NIXBASE32_H
#define STOREFS_NIXBASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for `len` bytes: ceil(8*len/5). */
size_t nixbase32_encoded_len(size_t len);

/* Writes nixbase32_encoded_len(len) chars and a NUL to `out`. */
void nixbase32_encode(const uint8_t *in, size_t len, char *out);

/* Strict: exactly nixbase32_encoded_len(outlen) chars from the alphabet and
 * no bits set past the last byte. -EINVAL otherwise. */
int nixbase32_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);

#endif
