/* signing.h - Nix's Ed25519 signatures of store paths (docs/narinfo.md §5): key
 * files "name:base64(key)", the signed fingerprint
 * "1;<path>;sha256:<nix32 nar hash>;<nar size>;<refs>", signing and
 * verification against trusted public keys. Uses OpenSSL. All functions
 * are thread-safe; keys are plain values. */
#ifndef STOREFS_SIGNING_H
#define STOREFS_SIGNING_H

#include "store/path_info.h"

#include <stddef.h>
#include <stdint.h>

#define SIGNING_MAX_KEY_NAME 255
#define SIGNING_SIG_LEN	     64

struct nix_secret_key {
	char name[SIGNING_MAX_KEY_NAME + 1];
	uint8_t seed[32];
	uint8_t public_key[32];
};

struct nix_public_key {
	char name[SIGNING_MAX_KEY_NAME + 1];
	uint8_t key[32];
};

/* Parses "name:base64(seed || public key)" (64 bytes); the public half
 * must be the one derived from the seed. A single trailing newline is
 * tolerated. -EINVAL otherwise. */
int signing_secret_key_parse(const char *s, size_t len, struct nix_secret_key *out);
/* Reads and parses a secret key file (-errno if unreadable). */
int signing_secret_key_load(const char *path, struct nix_secret_key *out);
/* Parses "name:base64(32 bytes)"; a trailing newline is tolerated. */
int signing_public_key_parse(const char *s, size_t len, struct nix_public_key *out);
/* The public key of a secret key. */
void signing_public_key_of(const struct nix_secret_key *sk, struct nix_public_key *out);
/* "name:base64" into a malloc'd string (caller frees). */
int signing_public_key_format(const struct nix_public_key *pk, char **out);

/* Parses a space-separated list of public keys (as in trusted-public-keys)
 * into a malloc'd array (caller frees; NULL if empty). */
int signing_public_keys_parse(const char *list, struct nix_public_key **out, size_t *n);

/* Parses a Sig value "name:base64(64 bytes)"; `out->name` is malloc'd.
 * A signature of another length is -EINVAL. */
int signing_sig_parse(const char *s, size_t len, struct path_signature *out);
/* "name:base64" into a malloc'd string (caller frees). */
int signing_sig_format(const struct path_signature *sig, char **out);

/* The fingerprint of `pi` (malloc'd, caller frees). References are printed
 * as full paths, sorted, comma-separated. */
int signing_fingerprint(const struct path_info *pi, char **out);

/* Signs `msg`; `out->name` is a malloc'd copy of the key name. */
int signing_sign(const struct nix_secret_key *sk, const void *msg, size_t len,
		 struct path_signature *out);
/* Signs the fingerprint of `pi` and adds the signature to it (an equal
 * signature already present is not added twice). */
int signing_sign_path_info(const struct nix_secret_key *sk, struct path_info *pi);

/* 0 if `sig` is a valid signature of `msg` by `pk`, -EBADMSG if not. */
int signing_verify(const struct nix_public_key *pk, const void *msg, size_t len,
		   const uint8_t sig[SIGNING_SIG_LEN]);
/* Counts the signatures of `pi` that verify with a trusted key of the same
 * name; signatures by keys not in `keys` are ignored. */
int signing_verify_path_info(const struct path_info *pi, const struct nix_public_key *keys,
			     size_t n_keys, size_t *n_valid);

#endif
