/* ca_verify.h - checking a content address (CA) against the content a store
 * holds for a path (docs/trust.md "Content addresses").
 *
 * A CA is a claim: "this path's content hashes to H, and H (with the
 * references and the name) gives this store path". Every road that
 * registers a path carrying a CA checks both halves before the path is
 * registered, and `storefs verify` checks them again. Thread-safe as far
 * as the services are; nothing is kept between calls. */
#ifndef STOREFS_CA_VERIFY_H
#define STOREFS_CA_VERIFY_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"
#include "store/path_info.h"

/* Checks the CA of `pi` (0 at once if it has none):
 *  1. the CA, pi's references (a reference to itself counts as a self
 *     reference) and pi's name must give pi's store path; else -EINVAL,
 *     "'<path>' claims to be content-addressed but its CA gives '<other>'";
 *  2. the content must hash to the CA's digest: the NAR kinds with sha256
 *     compare pi->nar_sha256 (the caller has checked it against the content,
 *     or trusts it, see verify), the other NAR kinds render the NAR from
 *     `bs`/`ds` and hash it, the flat and text kinds hash the bytes of the
 *     root, which must be a regular, non-executable file. A mismatch is
 *     -EIO with Nix's wording: "ca hash mismatch importing path '<path>';
 *     specified: <algo>:<nix32> got: <algo>:<nix32>".
 * Reading the content may fail with the services' codes (-EIO, -ENOENT for
 * a missing blob or Directory, -ENOMEM). */
int ca_verify(struct blob_service *bs, struct dir_service *ds, const struct path_info *pi);

/* Only step 1 and, for the sha256 NAR kind, step 2 (no content is read). */
int ca_verify_claims(const struct path_info *pi);

#endif
