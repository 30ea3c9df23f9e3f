/* encoding.c - hex and base64.
 *
 * Base64 is written by hand because the decoders at hand (OpenSSL's
 * EVP_DecodeBlock) accept non-canonical input, and every digest and key we
 * read from outside must be rejected unless it is in canonical form. */
#include "common/encoding.h"

#include <errno.h>
#include <stdbool.h>

static const char hexdigits[] = "0123456789abcdef";

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	if (inlen != 2 * outlen)
		return -EINVAL;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t len, enum base64_alphabet alpha)
{
	if (alpha == BASE64_STD)
		return (len + 2) / 3 * 4;
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

void base64_encode(const uint8_t *in, size_t len, char *out, enum base64_alphabet alpha)
{
	const char *tab = alpha == BASE64_STD ? b64_std : b64_url;
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (len - i) {
		uint32_t v = (uint32_t)in[i] << 16 | (len - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		if (len - i == 2)
			out[o++] = tab[(v >> 6) & 63];
		if (alpha == BASE64_STD) {
			if (len - i == 1)
				out[o++] = '=';
			out[o++] = '=';
		}
	}
	out[o] = '\0';
}

static int b64_value(char c, enum base64_alphabet alpha)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (alpha == BASE64_STD ? '+' : '-'))
		return 62;
	if (c == (alpha == BASE64_STD ? '/' : '_'))
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen,
		  enum base64_alphabet alpha)
{
	size_t pad = 0, n, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (alpha == BASE64_STD) {
		if (inlen % 4)
			return -EINVAL;
		while (pad < 2 && inlen > pad && in[inlen - 1 - pad] == '=')
			pad++;
	} else if (inlen % 4 == 1) {
		return -EINVAL;
	}
	n = inlen - pad;
	if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outcap)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i], alpha);

		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-zero trailing bits: not the canonical encoding */
		return -EINVAL;
	*outlen = o;
	return 0;
}
