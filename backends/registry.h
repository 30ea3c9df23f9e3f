/* registry.h - opens a store bundle from a URL or directory.
 *
 * Supported forms:
 *	DIR, local://DIR, local:///abs/dir	the embedded local store (backends/local)
 *	memory://				an empty in-process store (tests)
 *	nix+http(s)://HOST[/PATH][?trusted-public-keys=...&cache=DIR]
 *		a Nix binary cache filling a local store on demand
 *		(backends/binary_cache/binary_cache.h)
 * A NULL url means the default location (store_default_location()). */
#ifndef STOREFS_BACKENDS_REGISTRY_H
#define STOREFS_BACKENDS_REGISTRY_H

#include "store/store.h"

#include <stddef.h>

enum store_open_flags {
	/* Create a missing or empty store directory (and its parents). */
	STORE_OPEN_CREATE = 1 << 0,
	/* Take the store's import lock for the store's lifetime: -EBUSY if
	 * another process (or another open) holds it ... */
	STORE_OPEN_IMPORT = 1 << 1,
	/* ... unless this flag is also given: then wait for it. */
	STORE_OPEN_WAIT = 1 << 2,
	/* No writes: blob writers, Directory and PathInfo puts fail -EROFS,
	 * nothing is created or cleaned up on open. */
	STORE_OPEN_READONLY = 1 << 3,
	/* A store created by this open uses DIR_SIZE_NATIVE (snix's doubled
	 * sizes) instead of DIR_SIZE_SPEC. An existing store keeps its own. */
	STORE_OPEN_NATIVE_SIZE = 1 << 4,
};

/* Opens the store named by `url` (see above) with `flags`. -EINVAL with a
 * message listing the supported forms for an unknown scheme; otherwise the
 * backend's errors (-ENOENT, -EBUSY, -EIO, ...). Free with store_free(). */
int store_open(const char *url, unsigned flags, struct store **out);

/* The default store directory: $STOREFS_STORE if set and non-empty, else
 * /var/lib/storefs when running as root (euid 0), else
 * $XDG_DATA_HOME/storefs, else $HOME/.local/share/storefs. Written into
 * `buf`; returns buf, or NULL if it does not fit or no home is known. */
const char *store_default_location(char *buf, size_t len);

#endif
