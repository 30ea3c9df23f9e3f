/* pg_schema.c - the tables, created on first use and migrated forward
 * (docs/postgres.md "Schema"), and the statements each connection
 * prepares. A database written by a newer storefs is refused: its
 * tables may mean something this version does not know. */
#include "backends/postgres/pg_internal.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Serializes first uses across processes and hosts ("storefs!"). */
#define MIGRATE_LOCK "8319104465508857889"

/* migrations[v - 1] takes a database from schema v - 1 to v. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE storefs_meta ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  next_cursor bigint NOT NULL CHECK (next_cursor > 0),"
    "  size_formula integer NOT NULL CHECK (size_formula IN (0, 1)));"
    "INSERT INTO storefs_meta VALUES (1, 1, 0);"
    "CREATE TABLE storefs_directories ("
    "  digest bytea PRIMARY KEY CHECK (length(digest) = 32),"
    "  data bytea NOT NULL);"
    "CREATE TABLE storefs_path_infos ("
    "  digest bytea PRIMARY KEY CHECK (length(digest) = 20),"
    "  cursor bigint NOT NULL UNIQUE,"
    "  name text NOT NULL,"
    "  info bytea NOT NULL);",
};

static const struct {
	const char *name, *sql;
} statements[] = {
    {"dir_get", "SELECT data FROM storefs_directories WHERE digest = $1"},
    {"dir_put", "INSERT INTO storefs_directories (digest, data) VALUES ($1, $2) "
		"ON CONFLICT (digest) DO NOTHING"},
    {"path_get", "SELECT info FROM storefs_path_infos WHERE digest = $1"},
    /* Registrations take this row first: they commit one at a time, in
     * cursor order, so a listing never misses one that commits late. */
    {"cursor_lock", "SELECT next_cursor FROM storefs_meta WHERE id = 1 FOR UPDATE"},
    {"cursor_set", "UPDATE storefs_meta SET next_cursor = $1::bigint WHERE id = 1"},
    {"path_insert", "INSERT INTO storefs_path_infos (digest, cursor, name, info) "
		    "VALUES ($1, $2::bigint, $3, $4)"},
    {"path_update", "UPDATE storefs_path_infos SET info = $2 WHERE digest = $1"},
    {"path_notify", "SELECT pg_notify('" PG_CHANNEL "', $1)"},
    {"path_list", "SELECT cursor, info FROM storefs_path_infos WHERE cursor > $1::bigint "
		  "ORDER BY cursor LIMIT $2::bigint"},
    {"cursor_last", "SELECT next_cursor - 1 FROM storefs_meta WHERE id = 1"},
};

int pg_prepare_all(struct pg_pool *p, struct pg_conn *c)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(statements) / sizeof(statements[0]); i++)
		rc = pg_prepare(p, c, statements[i].name, statements[i].sql);
	return rc;
}

/* One integer from a one-row text result; -1 if there is none. */
static int query_int(struct pg_pool *p, struct pg_conn *c, const char *sql, long *out)
{
	PGresult *r;
	int rc = pg_query(p, c, sql, &r);

	if (rc < 0)
		return rc;
	*out =
	    PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
	PQclear(r);
	return 0;
}

static int schema_version(struct pg_pool *p, struct pg_conn *c, long *v)
{
	long exists;
	int rc = query_int(p, c, "SELECT (to_regclass('storefs_schema_version') IS NOT NULL)::int",
			   &exists);

	if (rc == 0 && exists != 1) {
		*v = 0;
		return 0;
	}
	if (rc == 0)
		rc = query_int(p, c, "SELECT coalesce(max(version), 0) FROM storefs_schema_version",
			       v);
	return rc;
}

static int refuse_newer(struct pg_pool *p, long v)
{
	return sf_err(-EPROTO,
		      "PostgreSQL database '%s' holds a storefs schema of version %ld, newer than "
		      "this storefs knows (%d): use a newer storefs",
		      p->location, v, PG_SCHEMA_VERSION);
}

static int migrate(struct pg_pool *p, struct pg_conn *c, long from)
{
	char sql[160];
	int rc = 0;

	for (long v = from + 1; rc == 0 && v <= PG_SCHEMA_VERSION; v++)
		rc = pg_command(p, c, migrations[v - 1]);
	/* A store created now records the formula it was asked for. */
	if (rc == 0 && from == 0 && p->create_native)
		rc = pg_command(p, c, "UPDATE storefs_meta SET size_formula = 1");
	if (rc == 0) {
		snprintf(sql, sizeof(sql),
			 "DELETE FROM storefs_schema_version;"
			 "INSERT INTO storefs_schema_version VALUES (%d)",
			 PG_SCHEMA_VERSION);
		rc = pg_command(p, c, sql);
	}
	return rc;
}

/* In one transaction: the version, the migration if one is due (under an
 * advisory lock, the version read again under it), the size formula. */
static int schema_check(struct pg_pool *p, struct pg_conn *c)
{
	long v = 0, formula = -1;
	int rc = pg_command(p, c, "BEGIN");

	if (rc == 0)
		rc = schema_version(p, c, &v);
	if (rc == 0 && v < PG_SCHEMA_VERSION) {
		rc = pg_command(p, c,
				"SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ");"
				"CREATE TABLE IF NOT EXISTS storefs_schema_version "
				"(version integer NOT NULL)");
		if (rc == 0)
			rc = schema_version(p, c, &v);
		if (rc == 0 && v < PG_SCHEMA_VERSION)
			rc = migrate(p, c, v);
	}
	if (rc == 0 && v > PG_SCHEMA_VERSION)
		rc = refuse_newer(p, v);
	if (rc == 0)
		rc =
		    query_int(p, c, "SELECT size_formula FROM storefs_meta WHERE id = 1", &formula);
	if (rc == 0 && formula != DIR_SIZE_SPEC && formula != DIR_SIZE_NATIVE)
		rc = sf_err(-EIO, "PostgreSQL database '%s': table storefs_meta is damaged",
			    p->location);
	if (rc == 0)
		rc = pg_command(p, c, "COMMIT");
	if (rc < 0) {
		pg_rollback(p, c, rc);
		return rc;
	}
	p->formula = (enum dir_size_formula)formula;
	return 0;
}

int pg_schema_ensure(struct pg_pool *p, struct pg_conn *c)
{
	int rc = 0;

	pthread_mutex_lock(&p->schema_mu);
	if (!p->schema_done) {
		rc = schema_check(p, c);
		p->schema_done = rc == 0;
	}
	pthread_mutex_unlock(&p->schema_mu);
	return rc;
}
