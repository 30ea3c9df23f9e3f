/* narinfo.h - the binary cache's .narinfo text (docs/narinfo.md §2-3): a
 * writer with Nix's fixed field order and a strict parser, and the
 * conversions to and from struct path_info. Not thread-shared: each
 * struct narinfo belongs to one thread at a time. */
#ifndef STOREFS_NARINFO_H
#define STOREFS_NARINFO_H

#include "store/nix_hash.h"
#include "store/path_info.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct narinfo {
	struct store_path path;
	char *url;	   /* as written, relative or absolute; owned */
	char *compression; /* owned; "bzip2" when the file has none */
	bool has_file_hash;
	struct nix_hash file_hash;
	bool has_file_size;
	uint64_t file_size;
	uint8_t nar_sha256[32];
	uint64_t nar_size;
	size_t n_refs;
	struct store_path *refs; /* as listed (Nix lists them sorted) */
	bool has_deriver;
	struct store_path deriver; /* the .drv itself: name ends in ".drv" */
	char *system;		   /* NULL if absent; owned */
	size_t n_sigs;
	struct path_signature *sigs; /* names owned */
	bool has_ca;
	enum ca_hash ca_type;
	uint8_t ca_digest[64];
	size_t ca_digest_len;
};

void narinfo_free(struct narinfo *ni);

/* Parses a .narinfo. Rules: LF line ends only, a final newline, each line
 * "Key: value"; StorePath, URL, NarHash (sha256, any encoding or SRI) and
 * NarSize != 0 are required; a References line after a non-empty one or a
 * second CA line is corrupt; a Sig must be 64 bytes; unknown keys are
 * ignored. -EINVAL with a message otherwise; `*out` owned by the caller. */
int narinfo_parse(const char *text, size_t len, struct narinfo **out);

/* Writes the .narinfo text in Nix's field order (References sorted, hashes
 * as sha256:<nix32>). `*out` is malloc'd and NUL-terminated. */
int narinfo_write(const struct narinfo *ni, char **out, size_t *out_len);

/* A narinfo describing `pi` (whose deriver gets its ".drv" back), served
 * from `url` with `compression`; `file_hash` may be NULL and a file size is
 * written only if `has_file_size`. */
int narinfo_from_path_info(const struct path_info *pi, const char *url, const char *compression,
			   const struct nix_hash *file_hash, bool has_file_size, uint64_t file_size,
			   struct narinfo **out);

/* The PathInfo of a narinfo with the given root node (whose name is
 * replaced by the store path basename); the deriver loses its ".drv". */
int narinfo_to_path_info(const struct narinfo *ni, const struct node *root, struct path_info **out);

#endif
