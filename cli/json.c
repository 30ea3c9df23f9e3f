/* json.c - escaped JSON values for the CLI's --json output. */
#include "cli/json.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at `s` (at most `len` bytes), or 0. */
static size_t utf8_seq_len(const uint8_t *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void json_char(FILE *f, uint8_t c)
{
	switch (c) {
	case '"':
		fputs("\\\"", f);
		break;
	case '\\':
		fputs("\\\\", f);
		break;
	case '\n':
		fputs("\\n", f);
		break;
	case '\t':
		fputs("\\t", f);
		break;
	case '\r':
		fputs("\\r", f);
		break;
	default:
		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void json_string(FILE *f, const void *s, size_t len)
{
	const uint8_t *p = s;

	fputc('"', f);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 1) {
			json_char(f, p[i]);
		} else if (n > 1) {
			fwrite(p + i, 1, n, f);
		} else {
			fprintf(f, "\\u%04x", p[i]);
			n = 1;
		}
		i += n;
	}
	fputc('"', f);
}

void json_cstring(FILE *f, const char *s)
{
	json_string(f, s, strlen(s));
}

void json_key(FILE *f, const char *key)
{
	json_cstring(f, key);
	fputc(':', f);
}

void json_u64(FILE *f, uint64_t v)
{
	fprintf(f, "%llu", (unsigned long long)v);
}
