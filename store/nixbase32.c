/* nixbase32.c - Nix's base-32 text form of hashes (docs/store-paths.md §1). */
#include "store/nixbase32.h"

#include "common/err.h"

#include <string.h>

static const char nix32_alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";

size_t nixbase32_encoded_len(size_t len)
{
	return len == 0 ? 0 : (len * 8 - 1) / 5 + 1;
}

void nixbase32_encode(const uint8_t *in, size_t len, char *out)
{
	size_t n = nixbase32_encoded_len(len);

	for (size_t k = 0; k < n; k++) {
		size_t b = (n - 1 - k) * 5, i = b / 8, j = b % 8;
		unsigned c = (unsigned)in[i] >> j;

		if (i + 1 < len)
			c |= (unsigned)in[i + 1] << (8 - j);
		out[k] = nix32_alphabet[c & 31];
	}
	out[n] = '\0';
}

static int nix32_digit(char ch)
{
	const char *p = ch ? strchr(nix32_alphabet, ch) : NULL;

	return p ? (int)(p - nix32_alphabet) : -1;
}

int nixbase32_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	uint8_t buf[256];

	if (outlen > sizeof(buf))
		return sf_err(-EINVAL, "nixbase32 output of %zu bytes is too long", outlen);
	if (inlen != nixbase32_encoded_len(outlen))
		return sf_err(-EINVAL, "nixbase32 string '%.*s' has %zu chars, expected %zu",
			      (int)(inlen > 120 ? 120 : inlen), in, inlen,
			      nixbase32_encoded_len(outlen));
	memset(buf, 0, outlen);
	for (size_t k = 0; k < inlen; k++) {
		int d = nix32_digit(in[inlen - 1 - k]);
		size_t b = k * 5, i = b / 8, j = b % 8;

		if (d < 0)
			return sf_err(-EINVAL, "invalid nixbase32 character '%c' in '%.*s'",
				      in[inlen - 1 - k], (int)inlen, in);
		buf[i] |= (uint8_t)(d << j);
		if (i + 1 < outlen)
			buf[i + 1] |= (uint8_t)(d >> (8 - j));
		else if (d >> (8 - j))
			return sf_err(-EINVAL, "nixbase32 string '%.*s' has non-zero overflow bits",
				      (int)inlen, in);
	}
	memcpy(out, buf, outlen);
	return 0;
}
