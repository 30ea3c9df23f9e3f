/* fuzz_store_path_parse.c - libFuzzer target: store path parsing and
 * nixbase32 decoding. An accepted path prints back to exactly the input; a
 * decoded nixbase32 string encodes back to exactly the input. */
#include "store/nixbase32.h"
#include "store/store_path.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_store_path(const char *s, size_t len)
{
	char full[STORE_PATH_FULL_MAX], base[STORE_PATH_MAX_BASENAME + 1];
	struct store_path p, q;

	if (store_path_parse(s, len, true, &p) != 0)
		return;
	store_path_full(&p, full);
	store_path_basename(&p, base);
	if ((strlen(full) != len || memcmp(full, s, len)) &&
	    (strlen(base) != len || memcmp(base, s, len)))
		__builtin_trap();
	if (store_path_parse(full, strlen(full), false, &q) != 0 || store_path_cmp(&p, &q) ||
	    store_path_parse_basename(base, strlen(base), &q) != 0 || store_path_cmp(&p, &q) ||
	    store_path_name_check(p.name, strlen(p.name)) != 0)
		__builtin_trap();
}

/* Tries every output length whose encoding has the input's length. */
static void check_nixbase32(const char *s, size_t len)
{
	uint8_t out[256];
	char *again;

	for (size_t n = 0; n <= sizeof(out); n++) {
		if (nixbase32_encoded_len(n) != len)
			continue;
		if (nixbase32_decode(s, len, out, n) != 0)
			continue;
		again = malloc(len + 1);
		if (!again)
			return;
		nixbase32_encode(out, n, again);
		if (strlen(again) != len || memcmp(again, s, len))
			__builtin_trap();
		free(again);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_store_path(s, size);
	check_nixbase32(s, size);
	free(s);
	return 0;
}
