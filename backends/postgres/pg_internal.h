/* pg_internal.h - what the files of backends/postgres/ share: the
 * connection pool, the statements every connection prepares, and the
 * services' constructors. */
#ifndef STOREFS_BACKENDS_PG_INTERNAL_H
#define STOREFS_BACKENDS_PG_INTERNAL_H

#include "common/deadline.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* The schema this storefs writes (pg_schema.c has every version's DDL). */
#define PG_SCHEMA_VERSION 1
/* The channel of "<cursor> <basename>" notifications of new paths. */
#define PG_CHANNEL "storefs_paths"

/* One connection of the pool. `until` is the deadline (deadline_now_ms()
 * clock) of the operation using it. */
struct pg_conn {
	PGconn *pg;
	uint64_t until;
	bool reused; /* it served an operation before this one */
};

struct pg_pool {
	atomic_int refs;
	char *url;	/* as given, secret included: only ever passed to libpq */
	char *location; /* postgresql://USER@HOST:PORT/DB, for messages */
	unsigned max;	/* connections at most */
	struct deadline_rule rule;
	pthread_mutex_t mu;
	pthread_cond_t cv;	       /* a connection was returned or closed */
	struct pg_conn **idle;	       /* protected by mu */
	unsigned n_idle, open;	       /* protected by mu */
	pthread_mutex_t schema_mu;     /* held while the schema is checked */
	bool schema_done;	       /* protected by schema_mu */
	bool create_native;	       /* a new schema records DIR_SIZE_NATIVE */
	enum dir_size_formula formula; /* the database's, once schema_done */
};

/* A statement parameter: `len` bytes (binary) or a C string (len < 0). */
struct pg_param {
	const void *v;
	int len;
};

#define PG_BYTES(p, n) ((struct pg_param){(p), (int)(n)})
#define PG_TEXT(s)     ((struct pg_param){(s), -1})

/* --- pg_pool.c --- */

/* At most `max` connections (0: twice the CPUs, as many as the mount's
 * request threads by default, between 4 and 32). -EINVAL for a URL libpq
 * cannot parse (its text is never repeated: it may hold a password). */
int pg_pool_new(const char *url, bool create_native, struct pg_pool **out);

/* --- pg_url.c --- */

/* `url` without its `timeout=SECONDS` parameter (malloc'd, for libpq) and
 * that value (0 if absent); -EINVAL for a bad or repeated one. */
int pg_url_take_timeout(const char *url, char **libpq_url, unsigned *timeout_s);
struct pg_pool *pg_pool_ref(struct pg_pool *p);
void pg_pool_unref(struct pg_pool *p);

/* Runs `op` on a connection of the pool within one deadline. If it fails
 * with -EIO because a connection kept from earlier turned out dead (the
 * server restarted), it runs again once on a new connection: every op is
 * one transaction or a read, so running it again is safe. */
typedef int (*pg_op_fn)(struct pg_pool *p, struct pg_conn *c, void *arg);
int pg_run(struct pg_pool *p, pg_op_fn op, void *arg);

/* A new connection outside the pool with no statements prepared (the
 * watcher's), within `until`. */
int pg_connect(struct pg_pool *p, uint64_t until, PGconn **out);

/* Runs prepared statement `name` (results in binary; *out may be NULL to
 * drop them), or a plain SQL command. -EIO with one message on failure
 * or a missed deadline (the connection is then closed). */
int pg_exec(struct pg_pool *p, struct pg_conn *c, const char *name, const struct pg_param *params,
	    int n, PGresult **out);
int pg_command(struct pg_pool *p, struct pg_conn *c, const char *sql);
int pg_prepare(struct pg_pool *p, struct pg_conn *c, const char *name, const char *sql);
/* A plain SQL statement (or several) with text results in *out (of the
 * last statement). */
int pg_query(struct pg_pool *p, struct pg_conn *c, const char *sql, PGresult **out);
/* ROLLBACK after the failure `rc`, if the connection still works; rc's
 * message stays the recorded one. */
void pg_rollback(struct pg_pool *p, struct pg_conn *c, int rc);

/* libpq's last message on `pg` as one line. */
void pg_message(PGconn *pg, char *buf, size_t len);

uint64_t pg_be64(const char *p);

/* --- pg_schema.c --- */

/* Creates or migrates the schema once per pool and reads the store's
 * size formula; prepares the statements on `c`. */
int pg_schema_ensure(struct pg_pool *p, struct pg_conn *c);
int pg_prepare_all(struct pg_pool *p, struct pg_conn *c);

/* --- services --- */

int pg_dirs_new(struct pg_pool *p, bool readonly, struct dir_service **out);
int pg_dirs_stage_new(struct dir_service *real, struct dir_service **out);
bool pg_dirs_is_stage(struct dir_service *ds);
/* Writes the staged Directories within the transaction open on `c`. */
int pg_dirs_put_staged(struct pg_pool *p, struct pg_conn *c, struct dir_service *stage);

int pg_paths_new(struct pg_pool *p, bool readonly, struct path_info_service **out);
/* Registers `pi` with the staged Directories (may be NULL) in one
 * transaction. */
int pg_paths_put_with(struct path_info_service *ps, struct dir_service *stage,
		      const struct path_info *pi, enum path_info_put_result *res);

struct pg_watcher;
int pg_watch_start(struct pg_pool *p, struct path_info_service *paths, path_info_watch_fn cb,
		   void *ctx, struct pg_watcher **out);
void pg_watch_stop(struct pg_watcher *w);

#endif
