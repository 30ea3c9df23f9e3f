/* verify.h - the store scrub behind `storefs verify`: every blob against its
 * digest, every Directory's digest and closure, every PathInfo's root, CA
 * (docs/trust.md), references and (optionally) NAR hash and size; objects
 * no path reaches are counted; and repair of missing or damaged objects
 * from another store.
 *
 * The three service interfaces cannot list blobs or Directories; a store
 * that can (the local one) has struct store's optional listings, and then
 * every stored object is checked. Without them only what PathInfos reach
 * is checked, blobs by reading them in full. Single-threaded; the store
 * may be used by others meanwhile. */
#ifndef STOREFS_VERIFY_H
#define STOREFS_VERIFY_H

#include "castore/digest_map.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

enum verify_kind { VERIFY_BLOB, VERIFY_DIRECTORY, VERIFY_PATH, VERIFY_QUARANTINED };

/* One finding. `subject` is the digest ("blake3-...") or the store path;
 * `why` says what is wrong. A VERIFY_QUARANTINED finding whose blob is
 * present and good again is reported with `problem` false (a note). */
struct verify_finding {
	enum verify_kind kind;
	const char *subject;
	const char *why;
	bool problem;
};
typedef void (*verify_report_fn)(void *ctx, const struct verify_finding *f);

struct verify_options {
	verify_report_fn report; /* may be NULL */
	void *report_ctx;
	/* Called as objects are checked (an import_progress_fn); may be NULL. */
	void (*progress)(void *ctx, uint64_t objects, uint64_t bytes);
	void *progress_ctx;
	/* Also render every path's NAR and compare its hash and size with
	 * the PathInfo's (reads every file of every path once more). */
	bool check_contents;
};

/* What one run found. The two sets hold what repair can fetch: blobs that
 * are missing, damaged or of the wrong size, and Directories that are
 * missing or damaged (values are a non-NULL marker). Objects that no
 * registered path reaches are counted (not a problem: a failed or killed
 * write leaves them) and kept in the two `unreferenced` sets (blob values
 * are size + 1); only stores that can list their objects have them. */
struct verify_result {
	uint64_t blobs, blob_bytes, dirs, paths, quarantined;
	uint64_t problems;
	struct digest_map bad_blobs, bad_dirs;
	uint64_t unref_blobs, unref_blob_bytes, unref_dirs;
	struct digest_map unref_blob_set, unref_dir_set;
	uint64_t since; /* the PathInfo listing's last cursor when the run began */
};

/* Checks the whole store, reporting each finding through opt->report.
 * Returns 0 when the run completed (problems are counted in `res`, which
 * the caller releases with verify_result_release even on failure), or a
 * negative errno with a message if it could not run (-ENOMEM, a listing
 * that failed). */
int store_verify(struct store *st, const struct verify_options *opt, struct verify_result *res);
/* Frees the sets (and leaves them empty: a second release is harmless). */
void verify_result_release(struct verify_result *res);

/* What store_verify_remove_unreferenced() did. */
struct verify_removed {
	uint64_t blobs, blob_bytes, dirs;
};

/* Removes the unreferenced objects `res` found (docs/trust.md "Orphans"):
 * waits until no writer, import or collection runs and keeps them out
 * (store_exclusive_enter), spares what the paths registered since the run
 * began reach, then deletes the Directories (one atomic step) and then the
 * blobs, so no Directory ever refers to a missing blob. -ENOTSUP for a
 * store that cannot. */
int store_verify_remove_unreferenced(struct store *st, const struct verify_result *res,
				     struct verify_removed *out);

/* Fetches every object in res->bad_blobs and res->bad_dirs from `from`:
 * blobs are checked against their digest before they are committed,
 * Directories are stored with their missing children (recursively). Each
 * object that could not be fetched is reported (problem true). *repaired
 * counts the objects stored. 0, or a negative errno if it could not run. */
int store_verify_repair(struct store *st, struct store *from, const struct verify_result *res,
			const struct verify_options *opt, uint64_t *repaired);

#endif
