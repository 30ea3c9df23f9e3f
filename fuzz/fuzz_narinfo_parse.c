/* fuzz_narinfo_parse.c - libFuzzer target: arbitrary text through
 * narinfo_parse(); an accepted narinfo must write out as text that parses
 * again and writes out identically (the writer's output is a fixed point). */
#include "store/narinfo.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct narinfo *n1 = NULL, *n2 = NULL;
	char *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (narinfo_parse((const char *)data, size, &n1) != 0)
		return 0;
	if (narinfo_write(n1, &t1, &l1) != 0 || narinfo_parse(t1, l1, &n2) != 0 ||
	    narinfo_write(n2, &t2, &l2) != 0 || l1 != l2 || memcmp(t1, t2, l1) ||
	    n1->nar_size != n2->nar_size || memcmp(n1->nar_sha256, n2->nar_sha256, 32) ||
	    memcmp(&n1->path, &n2->path, sizeof(n1->path)) || n1->n_refs != n2->n_refs ||
	    n1->n_sigs != n2->n_sigs)
		__builtin_trap();
	free(t1);
	free(t2);
	narinfo_free(n1);
	narinfo_free(n2);
	return 0;
}
