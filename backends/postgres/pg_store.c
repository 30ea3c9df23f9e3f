/* pg_store.c - the PostgreSQL store: Directories and PathInfos over one
 * connection pool, and atomic registration (Directories + PathInfo in one
 * transaction). It has no blob service. */
#include "backends/postgres/postgres.h"

#include "backends/postgres/pg_internal.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_store {
	struct store base;
	struct pg_pool *pool;
};

bool postgres_url_is(const char *url)
{
	return !strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13);
}

static int pg_store_stage_dirs(struct store *st, struct dir_service **out)
{
	return pg_dirs_stage_new(st->dirs, out);
}

static int pg_store_commit_path(struct store *st, struct dir_service *stage,
				const struct path_info *pi, enum path_info_put_result *res)
{
	if (!pg_dirs_is_stage(stage))
		return sf_err(-EINVAL, "directories were not staged by this PostgreSQL store");
	return pg_paths_put_with(st->paths, stage, pi, res);
}

static int pg_store_describe(struct store *st, char *format, size_t len, uint64_t *db_bytes)
{
	snprintf(format, len, "PostgreSQL, storefs schema %d", PG_SCHEMA_VERSION);
	*db_bytes = 0;
	return 0;
}

static void pg_store_close(struct store *st)
{
	pg_pool_unref(((struct pg_store *)st)->pool);
}

/* The first connection creates or checks the schema, so a database that
 * cannot be reached or is too new fails the open, not a later read. */
static int first_contact(struct pg_pool *p, struct pg_conn *c, void *arg)
{
	return 0;
}

static int services_open(struct pg_store *ps, unsigned flags)
{
	bool ro = flags & STORE_OPEN_READONLY;
	int rc = pg_run(ps->pool, first_contact, NULL);

	if (rc == 0)
		rc = pg_dirs_new(ps->pool, ro, &ps->base.dirs);
	if (rc == 0)
		rc = pg_paths_new(ps->pool, ro, &ps->base.paths);
	ps->base.size_formula = ps->pool->formula;
	return rc;
}

int postgres_store_open(const char *url, unsigned flags, struct store **out)
{
	struct pg_store *ps = calloc(1, sizeof(*ps));
	int rc;

	if (!ps)
		return -ENOMEM;
	rc = pg_pool_new(url, flags & STORE_OPEN_NATIVE_SIZE, &ps->pool);
	if (rc < 0) {
		free(ps);
		return rc;
	}
	ps->base.close = pg_store_close;
	ps->base.location = strdup(ps->pool->location);
	rc = ps->base.location ? services_open(ps, flags) : -ENOMEM;
	ps->base.stage_dirs = pg_store_stage_dirs;
	ps->base.commit_path = pg_store_commit_path;
	ps->base.describe = pg_store_describe;
	if (rc < 0) {
		store_free(&ps->base);
		return rc;
	}
	*out = &ps->base;
	return 0;
}
