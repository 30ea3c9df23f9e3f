/* store.c - the service bundle's lifetime. */
#include "store/store.h"

#include <stdlib.h>

void store_free(struct store *st)
{
	if (!st)
		return;
	path_info_service_free(st->paths);
	dir_service_free(st->dirs);
	blob_service_free(st->blobs);
	if (st->close)
		st->close(st);
	free(st->location);
	free(st);
}
