/* digest.c - BLAKE3 digests over Debian's official BLAKE3 C sources. */
#include "castore/digest.h"

#include "common/encoding.h"
#include "common/err.h"

const struct b3_digest b3_empty_digest = {{
    0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9, 0x49,
    0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f, 0x32, 0x62,
}};

static const char text_prefix[] = "blake3-";

void b3_hasher_init(struct b3_hasher *hs)
{
	blake3_hasher_init(&hs->h);
}

void b3_hasher_update(struct b3_hasher *hs, const void *data, size_t len)
{
	blake3_hasher_update(&hs->h, data, len);
}

void b3_hasher_final(const struct b3_hasher *hs, struct b3_digest *out)
{
	blake3_hasher_finalize(&hs->h, out->bytes, B3_LEN);
}

void b3_digest_of(const void *data, size_t len, struct b3_digest *out)
{
	struct b3_hasher hs;

	b3_hasher_init(&hs);
	b3_hasher_update(&hs, data, len);
	b3_hasher_final(&hs, out);
}

int b3_digest_from_bytes(const void *data, size_t len, struct b3_digest *out)
{
	if (len != B3_LEN)
		return sf_err(-EINVAL, "digest has %zu bytes, expected %d", len, B3_LEN);
	memcpy(out->bytes, data, B3_LEN);
	return 0;
}

void b3_digest_to_hex(const struct b3_digest *d, char *out)
{
	hex_encode(d->bytes, B3_LEN, out);
}

int b3_digest_from_hex(const char *s, size_t len, struct b3_digest *out)
{
	struct b3_digest d;

	if (hex_decode(s, len, d.bytes, B3_LEN) < 0)
		return sf_err(-EINVAL, "'%.*s' is not a 64-digit hex BLAKE3 digest", (int)len, s);
	*out = d;
	return 0;
}

void b3_digest_to_text(const struct b3_digest *d, char *out)
{
	memcpy(out, text_prefix, sizeof(text_prefix) - 1);
	base64_encode(d->bytes, B3_LEN, out + sizeof(text_prefix) - 1, BASE64_STD);
}

int b3_digest_from_text(const char *s, size_t len, struct b3_digest *out)
{
	const size_t plen = sizeof(text_prefix) - 1;
	struct b3_digest d;
	size_t n;

	if (len != B3_TEXT_LEN || memcmp(s, text_prefix, plen) != 0 ||
	    base64_decode(s + plen, len - plen, d.bytes, B3_LEN, &n, BASE64_STD) < 0 || n != B3_LEN)
		return sf_err(-EINVAL, "'%.*s' is not a blake3-<base64> digest", (int)len, s);
	*out = d;
	return 0;
}
