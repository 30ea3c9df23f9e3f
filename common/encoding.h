/* encoding.h - hex and base64 text forms of binary digests and keys. */
#ifndef STOREFS_ENCODING_H
#define STOREFS_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Lowercase hex; `out` must hold 2*len+1 bytes (NUL-terminated). */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly `outlen` bytes from 2*outlen hex digits (either case).
 * -EINVAL on a wrong length or a non-hex character. */
int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);

enum base64_alphabet { BASE64_STD, BASE64_URL };

/* Length of the encoding of `len` bytes: padded for BASE64_STD, unpadded for
 * BASE64_URL (the nar-bridge URL form). Excludes the NUL. */
size_t base64_encoded_len(size_t len, enum base64_alphabet alpha);

/* Encodes into `out`, which must hold base64_encoded_len()+1 bytes. */
void base64_encode(const uint8_t *in, size_t len, char *out, enum base64_alphabet alpha);

/* Strict decoder: canonical padding (BASE64_STD) or none (BASE64_URL), no
 * whitespace, zero trailing bits. Writes at most `outcap` bytes and the
 * decoded length to *outlen. -EINVAL on malformed input, -ENOSPC if it does
 * not fit. */
int base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen,
		  enum base64_alphabet alpha);

#endif
