/* nar_ingest.h - streaming ingestion of one NAR into castore (docs/nar.md §4-5).
 *
 * The NAR is read once, front to back, with memory bounded by the nesting
 * depth (at most NAR_MAX_DEPTH partially built Directories) and the width of
 * the directories being built, never by file sizes: file contents are
 * streamed into blob_service writers in chunks, Directories go leaves to root
 * through one dir_putter, which passes them on in batches and keeps about
 * 80 bytes per distinct Directory for its closure check (docs/limits.md
 * "Ingest"), and the NAR's SHA-256 and size are computed on the way. The
 * Directory count and the NAR's size are capped (struct nar_limits).
 *
 * The parser is at least as strict as modern Nix: bad magic, invalid or
 * over-long names (> 255 bytes), unsorted or duplicate names (bytewise),
 * a non-empty `executable` value, any field out of its fixed order, a regular
 * file without `contents`, an empty, NUL-containing or over-long (> 4095
 * bytes) symlink target, tags over NAR_MAX_TAG bytes, unknown types, nesting
 * of NAR_MAX_DEPTH levels or more (root = depth 0), non-zero padding,
 * truncation, and any byte after the final ")" are all rejected with -EINVAL
 * and a message naming the problem and its NAR byte offset.
 *
 * Thread-safety: calls are independent; the services must tolerate being
 * used from the calling thread. */
#ifndef STOREFS_NAR_INGEST_H
#define STOREFS_NAR_INGEST_H

#include "store/nar.h"

/* Caps on one ingest; 0 means no cap. Going over one is -EFBIG with a
 * message naming the cap and the byte offset. */
struct nar_limits {
	uint64_t max_size; /* NAR bytes */
	uint64_t max_dirs; /* directories, each occurrence counted */
};

/* The Directory cap where a caller names none: about 80 MB of closure check
 * (docs/limits.md "Ingest"). */
#define NAR_DEFAULT_MAX_DIRS 1000000
/* The caps nar_ingest() and nar_ingest_expect() apply: NAR_DEFAULT_MAX_DIRS
 * and no size cap (a NAR's size costs disk, not memory). */
#define NAR_DEFAULT_LIMITS ((struct nar_limits){.max_dirs = NAR_DEFAULT_MAX_DIRS})

/* Reads up to `len` bytes into `buf`; *n = 0 only at EOF (short reads are
 * fine). A negative return aborts ingestion and is passed up unchanged. */
typedef int (*nar_read_fn)(void *ctx, void *buf, size_t len, size_t *n);

/* Ingests one NAR read through `read`. On success:
 *  - *root_out is the anonymous (name_len 0) root node; for a symlink root,
 *    its target is copied into `root_target` and root_out->target points
 *    there (so root_target must outlive *root_out);
 *  - every blob and Directory of the tree is stored, Directories with the
 *    DirectoryEntry.size formula `f`, through one dir_putter (in batches,
 *    the last by its close);
 *  - *sum_out (may be NULL) holds the NAR's SHA-256 and size.
 * Errors: -EINVAL for a malformed NAR, -EFBIG over a cap; a service's or
 * `read`'s code otherwise. After a failure, blobs and Directories may
 * remain stored as unreferenced garbage: write through a session's
 * services (store/store_write.h) to have them taken back. */
int nar_ingest(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
	       nar_read_fn read, void *ctx, struct node *root_out,
	       uint8_t root_target[CASTORE_MAX_TARGET_LEN], struct nar_summary *sum_out);

/* As nar_ingest(), also checking the NAR against `expect` (NULL: no check),
 * e.g. a narinfo's NarHash and NarSize: a different SHA-256 or size is -EIO
 * (and the last batch of Directories, with the root, is not stored).
 * Reading stops as soon as the input exceeds expect->size. */
int nar_ingest_expect(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
		      nar_read_fn read, void *ctx, const struct nar_summary *expect,
		      struct node *root_out, uint8_t root_target[CASTORE_MAX_TARGET_LEN],
		      struct nar_summary *sum_out);

/* As nar_ingest_expect(), with the caps `lim` (NULL: NAR_DEFAULT_LIMITS). */
int nar_ingest_limited(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
		       nar_read_fn read, void *ctx, const struct nar_summary *expect,
		       const struct nar_limits *lim, struct node *root_out,
		       uint8_t root_target[CASTORE_MAX_TARGET_LEN], struct nar_summary *sum_out);

/* As nar_ingest_limited(), reading the NAR from `fd` until EOF (the fd is
 * neither seeked nor closed). */
int nar_ingest_fd(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f, int fd,
		  const struct nar_summary *expect, const struct nar_limits *lim,
		  struct node *root_out, uint8_t root_target[CASTORE_MAX_TARGET_LEN],
		  struct nar_summary *sum_out);

#endif
