/* path_info.h - PathInfo: a store path's root node plus NAR hash and size,
 * references, signatures, deriver and CA (docs/castore.md §6-7). */
#ifndef STOREFS_PATH_INFO_H
#define STOREFS_PATH_INFO_H

#include "castore/node.h"
#include "store/store_path.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NARInfo.CA.Hash values. */
enum ca_hash {
	CA_NAR_SHA256 = 0,
	CA_NAR_SHA1 = 1,
	CA_NAR_SHA512 = 2,
	CA_NAR_MD5 = 3,
	CA_TEXT_SHA256 = 4,
	CA_FLAT_SHA1 = 5,
	CA_FLAT_MD5 = 6,
	CA_FLAT_SHA256 = 7,
	CA_FLAT_SHA512 = 8,
};

struct path_signature {
	char *name;	  /* key name, e.g. "cache.nixos.org-1" */
	uint8_t data[64]; /* ed25519 detached signature */
};

struct path_info {
	struct store_path path; /* also the root node's name */
	struct node root;	/* root.name points at `root_name` */
	char root_name[STORE_PATH_MAX_BASENAME + 1];
	uint8_t *root_target; /* owned copy of a symlink root's target */

	uint64_t nar_size;
	uint8_t nar_sha256[32];

	size_t n_refs;
	struct store_path *refs; /* sorted by basename as Nix prints them */

	size_t n_sigs;
	struct path_signature *sigs;

	bool has_deriver;
	struct store_path deriver; /* name without the ".drv" suffix */

	bool has_ca;
	enum ca_hash ca_type;
	uint8_t ca_digest[64];
	size_t ca_digest_len;
};

/* Allocates an empty PathInfo (all zero). */
int path_info_new(struct path_info **out);
void path_info_free(struct path_info *pi);

/* Sets the root node, copying a symlink target; the node's name is set to
 * the basename of pi->path, so set the path first. -EINVAL for a bad
 * symlink target, -ENOMEM. */
int path_info_set_root(struct path_info *pi, const struct node *root);

/* Adds a reference (copied; -EINVAL for an invalid name), keeping `refs`
 * sorted by basename; an equal reference already present is not added
 * again. Adds a signature (copies the name). */
int path_info_add_ref(struct path_info *pi, const struct store_path *ref);
int path_info_add_sig(struct path_info *pi, const char *name, const uint8_t data[64]);

/* What registering a PathInfo did (docs/trust.md "Immutability"). */
enum path_info_put_result {
	PATH_INFO_ADDED,      /* the path was not registered: now it is */
	PATH_INFO_UNCHANGED,  /* registered already with this content: nothing changed */
	PATH_INFO_SIGS_ADDED, /* registered already with this content: signatures merged */
};

/* The rule a backend applies, atomically with its write, when `want` is
 * registered for a path that already has `have`: a registered path never
 * changes. Same NAR hash, NAR size and root: 0, and `want`'s signatures
 * that `have` lacks are added to `have` (*res says whether any were).
 * Anything else: -EEXIST with a message naming both NAR hashes. Other
 * fields of `want` (references, deriver, CA) are ignored: the first
 * registration's stay. -ENOMEM. */
int path_info_merge(struct path_info *have, const struct path_info *want,
		    enum path_info_put_result *res);

/* Validation rules of docs/castore.md §7 on the in-memory form, plus: the
 * root node's name is the basename of `path`, signature names are not
 * empty. Thread-safe (reads only). */
int path_info_validate(const struct path_info *pi);

/* Proto encoding (PathInfo message), after path_info_validate();
 * reference_names are derived from `refs`. `*out` malloc'd. */
int path_info_encode(const struct path_info *pi, uint8_t **out, size_t *out_len);
/* Decodes and validates; -EINVAL with a message on any violation.
 * References keep their order on the wire. */
int path_info_decode(const uint8_t *buf, size_t len, struct path_info **out);

#endif
