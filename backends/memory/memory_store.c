/* memory_store.c - bundles the three in-memory services into a store. */
#include "backends/memory/memory.h"

#include <stdlib.h>
#include <string.h>

int memory_store_new(enum dir_size_formula f, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	int rc = st ? 0 : -ENOMEM;

	if (rc == 0)
		rc = memory_blob_service_new(&st->blobs);
	if (rc == 0)
		rc = memory_dir_service_new(&st->dirs);
	if (rc == 0)
		rc = memory_path_info_service_new(&st->paths);
	if (rc == 0 && !(st->location = strdup("memory://")))
		rc = -ENOMEM;
	if (rc < 0) {
		store_free(st);
		return rc;
	}
	st->size_formula = f;
	*out = st;
	return 0;
}
