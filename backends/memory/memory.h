/* memory.h - services that keep everything in process memory.
 *
 * For tests and in-process use: the contents die with the service. All
 * services are thread-safe (one mutex each) and so are their readers. Blob
 * readers have fd = -1 and stay valid until closed, even after the blob
 * service is freed. PathInfo cursors are insertion sequence numbers starting
 * at 1; replacing a path keeps its cursor. Watch callbacks are called in the
 * thread that put the path, after the put, with no lock held. */
#ifndef STOREFS_BACKENDS_MEMORY_H
#define STOREFS_BACKENDS_MEMORY_H

#include "store/store.h"

/* Each returns 0 or -ENOMEM; the caller frees with the interface's _free. */
int memory_blob_service_new(struct blob_service **out);
int memory_dir_service_new(struct dir_service **out);
int memory_path_info_service_new(struct path_info_service **out);

/* A bundle of the three, with the given DirectoryEntry.size formula and
 * location "memory://". Free with store_free(). */
int memory_store_new(enum dir_size_formula f, struct store **out);

#endif
