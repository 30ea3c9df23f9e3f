/* pg_fixture.c - see pg_fixture.h. */
#include "pg_fixture.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_uint counter;

const char *pg_fx_base(void)
{
	const char *u = getenv("STOREFS_TEST_PG_URL");

	return u && *u ? u : NULL;
}

static int run_sql(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	int rc =
	    r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
		? 0
		: -EIO;

	if (rc)
		fprintf(stderr, "pg_fixture: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return rc;
}

int pg_fx_new(struct pg_fx *fx)
{
	const char *base = pg_fx_base();
	char sql[96];

	if (!base)
		return -ENOTSUP;
	snprintf(fx->schema, sizeof(fx->schema), "unit_%ld_%u", (long)getpid(),
		 atomic_fetch_add(&counter, 1));
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", fx->schema);
	/* libpq's URL rules: options=-csearch_path=SCHEMA, percent-encoded. */
	snprintf(fx->url, sizeof(fx->url), "%s%coptions=-csearch_path%%3D%s", base,
		 strchr(base, '?') ? '&' : '?', fx->schema);
	return run_sql(base, sql);
}

void pg_fx_drop(struct pg_fx *fx)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA %s CASCADE",
		 fx->schema);
	run_sql(pg_fx_base(), sql);
}

int pg_fx_sql(struct pg_fx *fx, const char *sql)
{
	return run_sql(fx->url, sql);
}
