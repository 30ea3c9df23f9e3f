/* pg_pool.c - connections to the database, a bounded pool of them shared
 * by the threads of a process, and statements run within a deadline
 * (docs/limits.md "Deadlines"). libpq's blocking calls would wait for a
 * silent server for ever, so results are awaited with poll() on the
 * connection's socket until the operation's deadline. */
#include "backends/postgres/pg_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pg_message(PGconn *pg, char *buf, size_t len)
{
	const char *m = pg ? PQerrorMessage(pg) : "out of memory";
	size_t o = 0;

	/* libpq's messages span lines (a hint after a tab); one line here. */
	for (; *m && o + 1 < len; m++) {
		char ch = *m == '\n' || *m == '\t' ? ' ' : *m;

		if (ch == ' ' && (o == 0 || buf[o - 1] == ' '))
			continue;
		buf[o++] = ch;
	}
	while (o && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
}

uint64_t pg_be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

/* --- the location named in messages: the URL without its secrets --- */

static const char *opt_value(PQconninfoOption *o, const char *key)
{
	for (; o && o->keyword; o++)
		if (!strcmp(o->keyword, key) && o->val && *o->val)
			return o->val;
	return NULL;
}

static char *location_of(PQconninfoOption *o)
{
	const char *user = opt_value(o, "user"), *host = opt_value(o, "host");
	const char *port = opt_value(o, "port"), *db = opt_value(o, "dbname");
	char buf[512];

	snprintf(buf, sizeof(buf), "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
		 host ? host : "", port ? ":" : "", port ? port : "", db ? db : "");
	return strdup(buf);
}

static unsigned default_max(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) * 2;

	return (unsigned)(n < 4 ? 4 : n > 32 ? 32 : n);
}

static void url_free(char *url)
{
	/* The URL may carry a password: do not leave it in freed memory. */
	if (url)
		explicit_bzero(url, strlen(url));
	free(url);
}

int pg_pool_new(const char *url, bool create_native, struct pg_pool **out)
{
	PQconninfoOption *opts;
	pthread_condattr_t ca;
	struct pg_pool *p;
	unsigned timeout_s;
	char *libpq_url;
	int rc = pg_url_take_timeout(url, &libpq_url, &timeout_s);

	if (rc < 0)
		return rc;
	opts = PQconninfoParse(libpq_url, NULL);
	if (!opts) {
		url_free(libpq_url);
		return sf_err(-EINVAL, "cannot parse the PostgreSQL URL (see libpq's "
				       "connection URI rules)");
	}
	p = calloc(1, sizeof(*p));
	if (p) {
		p->url = libpq_url;
		p->location = location_of(opts);
		p->max = default_max();
		p->idle = calloc(p->max, sizeof(*p->idle));
		p->rule.base_s = timeout_s;
	}
	PQconninfoFree(opts);
	if (!p || !p->location || !p->idle) {
		if (p)
			free(p->location), free(p->idle);
		url_free(libpq_url);
		free(p);
		return -ENOMEM;
	}
	atomic_init(&p->refs, 1);
	p->create_native = create_native;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->schema_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return 0;
}

struct pg_pool *pg_pool_ref(struct pg_pool *p)
{
	atomic_fetch_add(&p->refs, 1);
	return p;
}

void pg_pool_unref(struct pg_pool *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (unsigned i = 0; i < p->n_idle; i++) {
		PQfinish(p->idle[i]->pg);
		free(p->idle[i]);
	}
	free(p->idle);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->schema_mu);
	url_free(p->url);
	free(p->location);
	free(p);
}

/* --- connecting --- */

/* Server notices (e.g. "relation already exists, skipping") are not for
 * the user's terminal. */
static void notice_quiet(void *arg, const char *msg)
{
	log_debug("PostgreSQL: %.*s", (int)strcspn(msg, "\n"), msg);
}

int pg_connect(struct pg_pool *p, uint64_t until, PGconn **out)
{
	uint64_t now = deadline_now_ms(), left = until > now ? until - now : 1;
	char timeout[24], user_timeout[24], msg[512];
	/* Ours come first: whatever the URL sets wins (libpq's rule). */
	const char *keys[] = {"connect_timeout",
			      "tcp_user_timeout",
			      "keepalives_idle",
			      "keepalives_interval",
			      "fallback_application_name",
			      "dbname",
			      NULL};
	const char *vals[] = {timeout, user_timeout, "15", "5", "storefs", p->url, NULL};
	PGconn *pg;

	snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)(left + 999) / 1000);
	snprintf(user_timeout, sizeof(user_timeout), "%llu", (unsigned long long)left);
	pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		pg_message(pg, msg, sizeof(msg));
		PQfinish(pg);
		return sf_err(-EIO, "cannot connect to PostgreSQL database '%s': %s", p->location,
			      msg);
	}
	PQsetNoticeProcessor(pg, notice_quiet, NULL);
	*out = pg;
	return 0;
}

/* A new pooled connection: schema checked, statements prepared, and the
 * server told to give up on a statement at the deadline too. */
static int conn_open(struct pg_pool *p, uint64_t until, struct pg_conn **out)
{
	struct pg_conn *c = calloc(1, sizeof(*c));
	char sql[64];
	int rc;

	if (!c)
		return -ENOMEM;
	c->until = until;
	rc = pg_connect(p, until, &c->pg);
	if (rc == 0) {
		snprintf(sql, sizeof(sql), "SET statement_timeout = %llu",
			 (unsigned long long)deadline_ms(&p->rule, 0));
		rc = pg_command(p, c, sql);
	}
	if (rc == 0)
		rc = pg_schema_ensure(p, c);
	if (rc == 0)
		rc = pg_prepare_all(p, c);
	if (rc < 0) {
		PQfinish(c->pg);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* --- the pool --- */

static int pool_take(struct pg_pool *p, uint64_t until, struct pg_conn **out)
{
	struct timespec ts = deadline_abs(until - deadline_now_ms());
	int rc;

	pthread_mutex_lock(&p->mu);
	while (!p->n_idle && p->open >= p->max) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			return sf_err(-EIO,
				      "all %u connections to PostgreSQL database '%s' stayed "
				      "busy until the deadline",
				      p->max, p->location);
		}
	}
	if (p->n_idle) {
		*out = p->idle[--p->n_idle];
		(*out)->until = until;
		(*out)->reused = true;
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	p->open++;
	pthread_mutex_unlock(&p->mu);
	rc = conn_open(p, until, out);
	if (rc < 0) {
		pthread_mutex_lock(&p->mu);
		p->open--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return rc;
}

/* A connection that broke or is left inside a transaction is closed. */
static void pool_give(struct pg_pool *p, struct pg_conn *c)
{
	bool keep = PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;

	if (!keep) {
		PQfinish(c->pg);
		free(c);
	}
	pthread_mutex_lock(&p->mu);
	if (keep)
		p->idle[p->n_idle++] = c;
	else
		p->open--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Closes every idle connection: one kept connection found dead means the
 * server restarted or the network broke, and the others are as dead, so
 * the retry (and the requests after it) must not be given them. */
static void pool_drain(struct pg_pool *p)
{
	struct pg_conn *v[64];
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->n_idle < 64 ? p->n_idle : 64;
	p->n_idle -= n;
	memcpy(v, p->idle + p->n_idle, n * sizeof(*v));
	p->open -= n;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++) {
		PQfinish(v[i]->pg);
		free(v[i]);
	}
}

int pg_run(struct pg_pool *p, pg_op_fn op, void *arg)
{
	for (int attempt = 0;; attempt++) {
		uint64_t until = deadline_now_ms() + deadline_ms(&p->rule, 0);
		struct pg_conn *c = NULL;
		bool stale;
		int rc = pool_take(p, until, &c);

		if (rc < 0)
			return rc;
		rc = op(p, c, arg);
		/* A connection the server closed fails at once; one that missed
		 * the deadline is a silent peer, and trying again would double
		 * the operation's wait. */
		stale = rc == -EIO && c->reused && PQstatus(c->pg) != CONNECTION_OK &&
			deadline_now_ms() < until;
		pool_give(p, c);
		if (!stale || attempt)
			return rc;
		pool_drain(p);
		log_debug("a kept connection to '%s' was dead; trying a new one", p->location);
	}
}

/* --- statements --- */

/* Waits for the statement's results, keeping the first failure (or the
 * last success). On a missed deadline the connection is closed: a half
 * read answer cannot be resumed. */
static int await_results(struct pg_pool *p, struct pg_conn *c, PGresult **out)
{
	PGresult *keep = NULL, *r;
	char msg[512];

	for (;;) {
		while (PQisBusy(c->pg)) {
			struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
			uint64_t now = deadline_now_ms();
			int n = now < c->until ? poll(&pfd, 1, (int)(c->until - now)) : 0;

			if (n == 0) {
				PQclear(keep);
				/* NULL: every libpq call on it fails, PQstatus() is BAD. */
				PQfinish(c->pg);
				c->pg = NULL;
				return sf_err(-EIO,
					      "PostgreSQL database '%s' did not answer before "
					      "the deadline",
					      p->location);
			}
			if ((n < 0 && errno != EINTR) || (n > 0 && !PQconsumeInput(c->pg)))
				goto broken;
		}
		r = PQgetResult(c->pg);
		if (!r)
			break;
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			PQclear(r);
		else {
			PQclear(keep);
			keep = r;
		}
	}
	if (!keep)
		goto broken;
	*out = keep;
	return 0;
broken:
	PQclear(keep);
	pg_message(c->pg, msg, sizeof(msg));
	return sf_err(-EIO, "lost the connection to PostgreSQL database '%s': %s", p->location,
		      msg);
}

static int check_result(struct pg_pool *p, PGresult *r, PGresult **out)
{
	ExecStatusType st = PQresultStatus(r);
	char msg[512];

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (out)
			*out = r;
		else
			PQclear(r);
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
	msg[strcspn(msg, "\n")] = '\0';
	PQclear(r);
	return sf_err(-EIO, "PostgreSQL database '%s': %s", p->location, msg);
}

int pg_exec(struct pg_pool *p, struct pg_conn *c, const char *name, const struct pg_param *params,
	    int n, PGresult **out)
{
	const char *vals[8];
	int lens[8], fmts[8];
	PGresult *r;
	char msg[512];
	int rc;

	if (n > 8)
		return sf_err(-EINVAL, "too many statement parameters");
	for (int i = 0; i < n; i++) {
		vals[i] = params[i].v;
		lens[i] = params[i].len < 0 ? 0 : params[i].len;
		fmts[i] = params[i].len >= 0;
	}
	if (!PQsendQueryPrepared(c->pg, name, n, vals, lens, fmts, 1)) {
		pg_message(c->pg, msg, sizeof(msg));
		return sf_err(-EIO, "cannot send a statement to PostgreSQL database '%s': %s",
			      p->location, msg);
	}
	rc = await_results(p, c, &r);
	return rc < 0 ? rc : check_result(p, r, out);
}

int pg_query(struct pg_pool *p, struct pg_conn *c, const char *sql, PGresult **out)
{
	PGresult *r;
	char msg[512];
	int rc;

	if (!PQsendQuery(c->pg, sql)) {
		pg_message(c->pg, msg, sizeof(msg));
		return sf_err(-EIO, "cannot send a statement to PostgreSQL database '%s': %s",
			      p->location, msg);
	}
	rc = await_results(p, c, &r);
	return rc < 0 ? rc : check_result(p, r, out);
}

int pg_prepare(struct pg_pool *p, struct pg_conn *c, const char *name, const char *sql)
{
	PGresult *r;
	char msg[512];
	int rc;

	if (!PQsendPrepare(c->pg, name, sql, 0, NULL)) {
		pg_message(c->pg, msg, sizeof(msg));
		return sf_err(-EIO, "cannot send a statement to PostgreSQL database '%s': %s",
			      p->location, msg);
	}
	rc = await_results(p, c, &r);
	return rc < 0 ? rc : check_result(p, r, NULL);
}

int pg_command(struct pg_pool *p, struct pg_conn *c, const char *sql)
{
	return pg_query(p, c, sql, NULL);
}

void pg_rollback(struct pg_pool *p, struct pg_conn *c, int rc)
{
	char saved[512];

	if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) == PQTRANS_IDLE)
		return;
	snprintf(saved, sizeof(saved), "%s", sf_errmsg(rc));
	/* Its failure is ignored: the connection is then closed on return to
	 * the pool, which rolls the transaction back just as well. The
	 * failure that made us roll back keeps its message. */
	if (pg_command(p, c, "ROLLBACK") < 0)
		sf_err(rc, "%s", saved);
}
