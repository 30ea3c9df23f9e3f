/* composite.h - one store made of services taken from several stores
 * (--blob-service-addr, --directory-service-addr, --path-info-service-addr;
 * docs/services.md says which optional operations it keeps and why).
 * Built by store_open_services() (registry.h); declared here for it and
 * for the unit tests. */
#ifndef STOREFS_BACKENDS_COMPOSITE_H
#define STOREFS_BACKENDS_COMPOSITE_H

#include "store/store.h"

#include <stddef.h>

/* The three services, as indices. */
enum store_role { STORE_ROLE_BLOBS, STORE_ROLE_DIRS, STORE_ROLE_PATHS, STORE_ROLES };

/* Builds a store whose service of role r is the one of subs[from[r]].
 * `subs` are `n` distinct stores (2 or 3); each must have the services it
 * is named for (-EINVAL otherwise). On success the composite owns every
 * sub-store (store_free(*out) frees each exactly once, with the services
 * it did not lend); on failure the caller still owns them. -ENOMEM. */
int store_composite_new(struct store *const *subs, size_t n, const size_t from[STORE_ROLES],
			struct store **out);

#endif
