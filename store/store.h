/* store.h - a store: the three services storefs works with, bundled.
 *
 * The bundle is built by backends/ from a URL (backends/registry.h); the
 * store layer and the CLI only see the interfaces. */
#ifndef STOREFS_STORE_H
#define STOREFS_STORE_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"
#include "store/path_info_service.h"

struct store {
	struct blob_service *blobs;
	struct dir_service *dirs;
	struct path_info_service *paths;
	/* How this store computes DirectoryEntry.size (fixed per store). */
	enum dir_size_formula size_formula;
	/* Human-readable location, for messages. */
	char *location;
	/* Backend-private cleanup (locks, environments); may be NULL. */
	void (*close)(struct store *st);

	/* Optional, both or neither (NULL): atomic registration. stage_dirs
	 * gives a Directory service (free with dir_service_free) whose
	 * put_batch validates and holds Directories back; commit_path then
	 * stores them together with `pi` in one atomic step, so a crash leaves
	 * both or neither. Blobs must have been flushed before. */
	int (*stage_dirs)(struct store *st, struct dir_service **out);
	int (*commit_path)(struct store *st, struct dir_service *stage, const struct path_info *pi);
};

/* Frees the services, then calls st->close. NULL is a no-op. */
void store_free(struct store *st);

#endif
