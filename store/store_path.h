/* store_path.h - Nix store paths: "<32 nixbase32 chars>-<name>" under
 * /nix/store, their validation, and how content-addressed paths are made
 * (docs/store-paths.md). */
#ifndef STOREFS_STORE_PATH_H
#define STOREFS_STORE_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_DIR	      "/nix/store"
#define STORE_PATH_DIGEST_LEN 20
#define STORE_PATH_HASH_CHARS 32
#define STORE_PATH_MAX_NAME   211
/* Longest basename: hash, '-', name. */
#define STORE_PATH_MAX_BASENAME (STORE_PATH_HASH_CHARS + 1 + STORE_PATH_MAX_NAME)

struct store_path {
	uint8_t digest[STORE_PATH_DIGEST_LEN];
	char name[STORE_PATH_MAX_NAME + 1]; /* NUL-terminated */
};

/* Name rules of modern Nix: 1..211 chars of [0-9a-zA-Z+-._?=], not "." or
 * "..", not starting with ".-" or "..-". */
int store_path_name_check(const char *name, size_t len);

/* Parses a basename "<hash>-<name>". -EINVAL with a message otherwise. */
int store_path_parse_basename(const char *s, size_t len, struct store_path *out);

/* Parses "/nix/store/<hash>-<name>" (a trailing "/sub/path" is not allowed
 * here). Also accepts a plain basename if `allow_basename`. */
int store_path_parse(const char *s, size_t len, bool allow_basename, struct store_path *out);

/* "<hash>-<name>" into `out` (STORE_PATH_MAX_BASENAME+1 bytes). */
void store_path_basename(const struct store_path *p, char *out);

/* "/nix/store/<hash>-<name>" into `out` (sizeof STORE_DIR + 1 +
 * STORE_PATH_MAX_BASENAME + 1 bytes). */
void store_path_full(const struct store_path *p, char *out);
#define STORE_PATH_FULL_MAX (sizeof(STORE_DIR) + 1 + STORE_PATH_MAX_BASENAME + 1)

/* The 32-char hash part of a digest into `out` (33 bytes). */
void store_path_hash_part(const uint8_t digest[STORE_PATH_DIGEST_LEN], char *out);

/* XOR-folds a hash to `outlen` bytes (Nix's compressHash). */
void hash_compress(const uint8_t *in, size_t len, uint8_t *out, size_t outlen);

/* The fingerprint "<type>:sha256:<hex inner>:/nix/store:<name>" as a
 * malloc'd string (caller frees). Does not validate. */
int store_path_fingerprint(const char *type, const uint8_t inner_sha256[32], const char *name,
			   char **out);

/* The store path of a fingerprint: digest = compress20(sha256(fp)), with
 * `name`, which is validated. */
int store_path_from_fingerprint(const char *fp, size_t fp_len, const char *name,
				struct store_path *out);

/* Makes the store path for a fingerprint "<type>:sha256:<hex inner>:
 * /nix/store:<name>". `type` is e.g. "source", "source:/nix/store/..-x",
 * "text", "output:out". Validates `name`. */
int store_path_make(const char *type, const uint8_t inner_sha256[32], const char *name,
		    struct store_path *out);

/* Content-addressed kinds (docs/store-paths.md §4). References are full store paths;
 * they are sorted internally. */
int store_path_make_source(const uint8_t nar_sha256[32], const char *name, const char *const *refs,
			   size_t nrefs, bool self_ref, struct store_path *out);
int store_path_make_text(const uint8_t sha256[32], const char *name, const char *const *refs,
			 size_t nrefs, struct store_path *out);
/* Fixed outputs: algo is "sha1", "sha256", "sha512" or "md5"; `recursive`
 * for NAR hashing. A recursive sha256 is the "source" kind without
 * references, as in Nix. */
int store_path_make_fixed(bool recursive, const char *algo, const uint8_t *digest,
			  size_t digest_len, const char *name, struct store_path *out);

/* The fingerprints the three make functions above hash (malloc'd, caller
 * frees); the same validation of references and digest lengths. */
int store_path_fingerprint_source(const uint8_t nar_sha256[32], const char *name,
				  const char *const *refs, size_t nrefs, bool self_ref, char **out);
int store_path_fingerprint_text(const uint8_t sha256[32], const char *name, const char *const *refs,
				size_t nrefs, char **out);
int store_path_fingerprint_fixed(bool recursive, const char *algo, const uint8_t *digest,
				 size_t digest_len, const char *name, char **out);

/* Orders store paths as Nix's StorePathSet does (by basename). */
int store_path_cmp(const struct store_path *a, const struct store_path *b);

#endif
