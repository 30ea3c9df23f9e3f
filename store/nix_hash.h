/* nix_hash.h - the hashes Nix uses (md5, sha1, sha256, sha512): computing
 * them with OpenSSL, their text forms "<algo>:<nix32|hex|base64>" and SRI
 * "<algo>-<base64>" (docs/store-paths.md §2), and CA strings such as
 * "fixed:r:sha256:<nix32>" (docs/store-paths.md §6, docs/castore.md §6).
 *
 * All functions are thread-safe; nothing is kept between calls. */
#ifndef STOREFS_NIX_HASH_H
#define STOREFS_NIX_HASH_H

#include "store/path_info.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nix_hash_algo { NIX_HASH_MD5, NIX_HASH_SHA1, NIX_HASH_SHA256, NIX_HASH_SHA512 };

#define NIX_HASH_MAX_LEN 64
/* Longest text form ("sha512:" + 128 hex digits) plus NUL. */
#define NIX_HASH_TEXT_MAX 136
/* Longest CA string ("fixed:r:sha512:" + 103 nix32 chars) plus NUL. */
#define NIX_CA_TEXT_MAX 120

struct nix_hash {
	enum nix_hash_algo algo;
	uint8_t digest[NIX_HASH_MAX_LEN]; /* nix_hash_len(algo) bytes used */
};

enum nix_hash_format { NIX_HASH_NIX32, NIX_HASH_HEX, NIX_HASH_BASE64, NIX_HASH_SRI };

/* Digest length of `algo` in bytes (16, 20, 32, 64). */
size_t nix_hash_len(enum nix_hash_algo algo);
/* "md5", "sha1", "sha256", "sha512". */
const char *nix_hash_algo_name(enum nix_hash_algo algo);
/* Exactly one of the names above; -EINVAL otherwise. */
int nix_hash_algo_parse(const char *s, size_t len, enum nix_hash_algo *out);

/* One-shot digest of a buffer into `out` (nix_hash_len(algo) bytes).
 * -EIO if OpenSSL fails. */
int nix_hash_buf(enum nix_hash_algo algo, const void *data, size_t len, uint8_t *out);

/* Streaming digest. new() allocates (-ENOMEM/-EIO); final() writes the
 * digest and may be called once; free() accepts NULL. Not shared between
 * threads. */
struct nix_hasher;
int nix_hasher_new(enum nix_hash_algo algo, struct nix_hasher **out);
int nix_hasher_update(struct nix_hasher *h, const void *data, size_t len);
int nix_hasher_final(struct nix_hasher *h, uint8_t *out);
void nix_hasher_free(struct nix_hasher *h);

/* Parses "<algo>:<digest>" with the digest in nix32, hex (either case) or
 * padded base64, told apart by length, or SRI "<algo>-<base64>". */
int nix_hash_parse(const char *s, size_t len, struct nix_hash *out);
/* As nix_hash_parse() but the algorithm must be `algo`, and a bare digest
 * without the "<algo>:" prefix is accepted too. */
int nix_hash_parse_as(const char *s, size_t len, enum nix_hash_algo algo, struct nix_hash *out);

/* Prints "<algo>:<digest>" (or SRI) into `out` (NIX_HASH_TEXT_MAX bytes). */
void nix_hash_print(const struct nix_hash *h, enum nix_hash_format fmt, char *out);

/* Hash algorithm and digest length of a CA type; -EINVAL for an unknown
 * enum value. `recursive` is true for the NAR kinds, `text` for text. */
int ca_hash_info(enum ca_hash type, enum nix_hash_algo *algo, bool *recursive, bool *text);
/* The CA type for (text?, recursive?, algo); -EINVAL if there is none (text
 * requires sha256 and no recursion). */
int ca_hash_from_parts(bool text, bool recursive, enum nix_hash_algo algo, enum ca_hash *out);

/* Parses "fixed:[r:]<algo>:<hash>" or "text:sha256:<hash>" (any digest
 * encoding). `digest` receives up to 64 bytes, `*digest_len` its length. */
int ca_parse(const char *s, size_t len, enum ca_hash *type, uint8_t digest[NIX_HASH_MAX_LEN],
	     size_t *digest_len);
/* Prints the CA string with a nix32 digest into `out` (NIX_CA_TEXT_MAX
 * bytes). -EINVAL if the type is unknown or `digest_len` does not match. */
int ca_print(enum ca_hash type, const uint8_t *digest, size_t digest_len, char *out);

/* The store path a CA implies (docs/store-paths.md §4): "source" for NAR sha256 (with
 * `refs` and an optional self reference), "text" for text (references,
 * no self reference), "output:out" for the other fixed kinds (neither).
 * `refs` exclude the path itself. -EINVAL if the kind forbids what is
 * given or the digest length is wrong. */
int ca_store_path(enum ca_hash type, const uint8_t *digest, size_t digest_len, const char *name,
		  const struct store_path *refs, size_t nrefs, bool self_ref,
		  struct store_path *out);

#endif
