/* import.h - ingesting a filesystem tree into a store as a Nix "source"
 * content-addressed store path (what `nix-store --add PATH` registers).
 *
 * The tree is walked once, depth first, each directory's names in bytewise
 * order. Every file is read exactly once: its bytes go through BLAKE3 and
 * into the blob service while the canonical NAR of the whole tree is hashed
 * (SHA-256) on the fly. Directories are built bottom-up and sent through a
 * dir_putter, so they become visible all at once, and only then is the
 * PathInfo registered. A failure registers nothing (blobs already written
 * stay as unreferenced content).
 *
 * Rules, as Nix applies them: a file is executable iff its owner-execute
 * bit is set; symlinks are stored with their raw target; hard links are just
 * files; owner, group, times and xattrs are ignored. FIFOs, sockets and
 * devices are refused, as are directories nested NAR_MAX_DEPTH levels deep
 * and files that change size while being read. The root may be a regular
 * file, a symlink or a directory. */
#ifndef STOREFS_IMPORT_H
#define STOREFS_IMPORT_H

#include "store/path_info.h"
#include "store/store.h"

#include <stdint.h>

/* Called after each file with the totals so far (files and symlinks
 * counted, bytes of file contents). Runs on the importing thread; it must
 * be cheap (the CLI throttles its drawing). */
typedef void (*import_progress_fn)(void *ctx, uint64_t files, uint64_t bytes);

struct import_options {
	/* Store path name; NULL: the last component of the path (after making
	 * it absolute and resolving "." and ".." lexically, as Nix does). */
	const char *name;
	import_progress_fn progress; /* may be NULL */
	void *progress_ctx;
	/* If non-NULL, receives what registering did: a tree imported again
	 * is PATH_INFO_UNCHANGED (a registered path never changes). */
	enum path_info_put_result *result;
	/* `storefs import --trust-stat` (docs/import.md): a tree whose every
	 * file's stat matches the store's import index, old enough not to be
	 * racily clean, and whose root is then that of the registered path is
	 * that path, without reading a file; otherwise the tree is read as
	 * usual and what was read is recorded in the index. -ENOTSUP if the
	 * store has no import index. */
	bool trust_stat;
};

/* Imports the tree at `path` (not followed if it is a symlink) into `st`.
 * `opt` may be NULL. On success `*out` is the registered PathInfo (owned by
 * the caller, path_info_free). Errors, each with a message naming the file:
 * -EINVAL (unsupported file type, invalid name, too deep, a name that
 * cannot be a store path name), -EIO (a file changed while read), the
 * errno of a failed open/read (-EACCES, -ENOENT ...), and whatever the
 * store's services return. Not thread-safe for one store unless its
 * services are; the caller holds the store's import lock if it has one. */
int store_import_path(struct store *st, const char *path, const struct import_options *opt,
		      struct path_info **out);

/* The store path name `nix-store --add` derives from `path`: the last
 * component of its lexically normalised absolute form, copied into `buf`
 * (`len` bytes). Validated with store_path_name_check(); -EINVAL with a
 * message suggesting --name if it is not a valid name. */
int store_import_default_name(const char *path, char *buf, size_t len);

#endif
