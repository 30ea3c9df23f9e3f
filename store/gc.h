/* gc.h - garbage collection and deletion of store paths over a store's
 * optional operations (store/store_gc.h); the rules are in docs/gc.md. */
#ifndef STOREFS_GC_H
#define STOREFS_GC_H

#include "store/store_gc.h"

#include <stdbool.h>
#include <stdint.h>

/* Where a collection is, for a progress line. Marking: the paths walked
 * and the Directories and blobs they reach so far; sweeping: the
 * Directories and blobs looked at, the blobs deleted and the bytes freed
 * so far. */
enum gc_phase { GC_MARKING, GC_SWEEPING };
struct gc_progress {
	enum gc_phase phase;
	uint64_t paths, dirs, blobs;
	uint64_t blobs_deleted, bytes_freed;
};

struct gc_options {
	bool dry_run;	    /* report what would go, delete nothing */
	uint64_t max_freed; /* stop deleting blobs once this many bytes are
			     * freed (0: no limit) */
	/* storefs delete: only these paths, refused if a root or a path that
	 * stays references one, unless ignore_liveness. NULL: every path
	 * outside the closure of the roots. */
	const struct store_path *only;
	size_t n_only;
	bool ignore_liveness;
	/* Called for each path deleted (or, dry, to be deleted), sorted. */
	void (*on_path)(void *ctx, const struct store_path *p);
	/* Called as objects are walked (often: rate-limit the drawing); may
	 * be NULL. */
	void (*progress)(void *ctx, const struct gc_progress *p);
	void *ctx; /* of both */
};

/* The rule for a root's name (docs/gc.md "Roots"), so commands can refuse
 * a bad --add-root before they import anything: 1-255 bytes, no '/', not
 * starting with '.'. -EINVAL with a message otherwise. */
#define STORE_ROOT_NAME_MAX 255
int store_root_name_check(const char *name);

struct gc_result {
	uint64_t paths, dirs, blobs, bytes_freed;
};

/* Collects with `o`. The caller opened `st` holding its import lock
 * (STORE_OPEN_IMPORT | STORE_OPEN_WAIT), so no import is half done; this
 * takes the collection lock that blocks new temporary roots. Errors:
 * -ENOTSUP (the store cannot collect), -EBUSY (delete refused: a root or a
 * path references it, named in the message), -ENOENT (delete: a path not
 * in the store), service errors. `r` holds what was done even on error. */
int store_gc(struct store *st, const struct gc_options *o, struct gc_result *r);

#endif
