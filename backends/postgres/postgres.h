/* postgres.h - Directories and PathInfos in a PostgreSQL database
 * (docs/postgres.md), shared by every host that points at it.
 *
 * The URL is a libpq connection URI (postgres:// or postgresql://, with
 * libpq's rules: PGPASSFILE, PGPASSWORD, PGSSLMODE... apply). The store it
 * opens has only `dirs` and `paths` (blobs is NULL): a composite store puts
 * a blob service beside it. */
#ifndef STOREFS_BACKENDS_POSTGRES_H
#define STOREFS_BACKENDS_POSTGRES_H

#include "store/store.h"

#include <stdbool.h>

/* True for the URLs this backend takes. */
bool postgres_url_is(const char *url);

/* Connects, creates or migrates the schema, and opens the services. With
 * STORE_OPEN_READONLY puts fail -EROFS (the schema is still created on
 * first use: it holds nothing). STORE_OPEN_NATIVE_SIZE applies to a
 * database whose schema this open creates. -EIO with one message (never
 * the password) if the database cannot be reached or holds a schema of a
 * newer storefs; -EINVAL for a bad URL. Free with store_free(). */
int postgres_store_open(const char *url, unsigned flags, struct store **out);

#endif
