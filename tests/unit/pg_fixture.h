/* pg_fixture.h - fresh PostgreSQL stores for unit tests: each in a schema
 * of its own in the database named by $STOREFS_TEST_PG_URL (set by
 * tests/integration/t25-postgres.sh, which starts the server). Without it
 * the PostgreSQL tests do nothing. */
#ifndef STOREFS_TEST_PG_FIXTURE_H
#define STOREFS_TEST_PG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

struct pg_fx {
	char schema[48];
	char url[768];
};

/* $STOREFS_TEST_PG_URL, or NULL. */
const char *pg_fx_base(void);
/* Creates an empty schema and writes the store URL that uses it. */
int pg_fx_new(struct pg_fx *fx);
/* Drops the schema and all in it. */
void pg_fx_drop(struct pg_fx *fx);
/* Runs SQL in the fixture's schema; 0 or -EIO. */
int pg_fx_sql(struct pg_fx *fx, const char *sql);

#endif
