/* nar_load.h - what `nar-import`, `import-nix` and `serve` share: ingesting
 * a NAR into a store and registering a PathInfo for it, and parsing NAR
 * hashes given in any Nix syntax. Thread-safe as far as the store's
 * services are (no shared state here). */
#ifndef STOREFS_STORE_NAR_LOAD_H
#define STOREFS_STORE_NAR_LOAD_H

#include "store/nar.h"
#include "store/nar_ingest.h"
#include "store/path_info.h"
#include "store/store.h"
#include "store/store_write.h"

#include <stddef.h>
#include <stdint.h>

/* A NAR ingested into the store's services: the root node (its symlink
 * target, if any, points into `target`) and the NAR's SHA-256 and size. */
struct nar_loaded {
	struct node root;
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct nar_summary sum;
};

/* Ingests the NAR read from `fd` until EOF (strictly, see nar_ingest.h)
 * and makes its blobs durable, writing them through write session `w`
 * (store/store_write.h: what a failed load wrote is taken back when the
 * session fails). `expect` may be NULL; a NAR that differs from it is -EIO.
 * `lim` caps the NAR (NULL: NAR_DEFAULT_LIMITS). Errors: -EINVAL for a
 * malformed NAR, -EIO for a mismatch, -EFBIG over a cap, the services' or
 * read()'s codes otherwise; each with a message. */
int nar_load_fd(struct store *st, struct store_write *w, int fd, const struct nar_summary *expect,
		const struct nar_limits *lim, struct nar_loaded *out);
/* As nar_load_fd(), reading the NAR through `read`. */
int nar_load_read(struct store *st, struct store_write *w, nar_read_fn read, void *ctx,
		  const struct nar_summary *expect, const struct nar_limits *lim,
		  struct nar_loaded *out);

/* Parses a NAR hash in any Nix syntax ("sha256:" + nix32, hex or base64,
 * SRI "sha256-...", or a bare digest) into 32 bytes; -EINVAL with a
 * message naming `s` otherwise (also for another algorithm). */
int nar_hash_parse(const char *s, uint8_t out[32]);

/* "sha256:<nixbase32>" of a 32-byte digest into `out` (NAR_HASH_TEXT_LEN
 * bytes), as `nix-store -q --hash` prints it. */
void nar_hash_text(const uint8_t sha256[32], char *out);
#define NAR_HASH_TEXT_LEN (7 + 52 + 1)

/* 0 if every reference of `pi` other than itself is registered, else
 * -ENOENT with a message naming the first missing one. */
int nar_load_check_refs(struct store *st, const struct path_info *pi);

/* Validates `pi` and registers it (docs/trust.md): its references other
 * than itself must already be registered (-ENOENT with a message naming the
 * first missing one); a CA it claims must match its content and store path
 * (ca_verify: -EIO "ca hash mismatch ...", -EINVAL); a path registered
 * already with other content is refused (-EEXIST). `res` (may be NULL)
 * says what registering did. The service's codes otherwise. */
int nar_load_register(struct store *st, const struct path_info *pi, enum path_info_put_result *res);

#endif
