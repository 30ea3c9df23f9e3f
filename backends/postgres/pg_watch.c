/* pg_watch.c - new paths announced by PostgreSQL: a connection of its
 * own LISTENs on PG_CHANNEL, which every registration notifies with
 * "<cursor> <basename>" when it commits. If the connection is lost the
 * thread reconnects with a growing pause and then lists what was
 * registered meanwhile (after the last cursor it saw), so no path goes
 * unannounced across an outage. */
#include "backends/postgres/pg_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "store/path_info_watch.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000

struct pg_watcher {
	struct pg_pool *pool;
	struct path_info_service *paths;
	path_info_watch_fn cb;
	void *ctx;
	PGconn *conn; /* NULL while disconnected; the thread's alone */
	struct watch_thread th;
	uint64_t last; /* the largest cursor announced */
};

static int listen_on(struct pg_watcher *w)
{
	uint64_t until = deadline_now_ms() + deadline_ms(&w->pool->rule, 0);
	struct pg_conn c = {.until = until};
	int rc = pg_connect(w->pool, until, &c.pg);

	if (rc < 0)
		return rc;
	rc = pg_command(w->pool, &c, "LISTEN " PG_CHANNEL);
	if (rc < 0) {
		PQfinish(c.pg);
		return rc;
	}
	w->conn = c.pg;
	return 0;
}

/* "<cursor> <basename>": only well-formed basenames reach the callback. */
static void deliver(struct pg_watcher *w, const char *payload)
{
	char *end;
	uint64_t cursor = strtoull(payload, &end, 10);
	size_t len;

	if (end == payload || *end != ' ')
		return;
	len = strlen(++end);
	if (len == 0 || len > STORE_PATH_MAX_BASENAME)
		return;
	if (cursor > w->last)
		w->last = cursor;
	w->cb(w->ctx, end);
}

static int catch_up_cb(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct pg_watcher *w = ctx;
	char name[STORE_PATH_MAX_BASENAME + 1];

	store_path_basename(&pi->path, name);
	if (cursor > w->last)
		w->last = cursor;
	w->cb(w->ctx, name);
	return 0;
}

static bool stop_wait(struct pg_watcher *w, int ms)
{
	struct pollfd p = {.fd = w->th.stopfd, .events = POLLIN};

	return poll(&p, 1, ms) > 0;
}

/* Reconnects; true once listening again with the gap filled. */
static bool reconnect(struct pg_watcher *w)
{
	int rc = listen_on(w);

	if (rc == 0)
		rc = path_info_service_list(w->paths, w->last, catch_up_cb, w);
	if (rc < 0) {
		log_debug("watching '%s' for new paths: %s", w->pool->location, sf_errmsg(rc));
		PQfinish(w->conn);
		w->conn = NULL;
		return false;
	}
	log_info("watching '%s' for new paths again", w->pool->location);
	return true;
}

/* Waits for notifications; false when the connection broke. */
static bool listen_once(struct pg_watcher *w, bool *stop)
{
	struct pollfd p[2] = {{.fd = PQsocket(w->conn), .events = POLLIN},
			      {.fd = w->th.stopfd, .events = POLLIN}};
	PGnotify *n;

	if (poll(p, 2, -1) < 0)
		return errno == EINTR;
	if (p[1].revents) {
		*stop = true;
		return true;
	}
	if (!PQconsumeInput(w->conn))
		return false;
	while ((n = PQnotifies(w->conn))) {
		deliver(w, n->extra);
		PQfreemem(n);
	}
	return PQstatus(w->conn) == CONNECTION_OK;
}

static void *watch_main(void *arg)
{
	struct pg_watcher *w = arg;
	int pause = RETRY_MIN_MS;
	bool stop = false;
	char msg[512];

	while (!stop) {
		if (!w->conn) {
			if (stop_wait(w, pause))
				break;
			pause = reconnect(w)		   ? RETRY_MIN_MS
				: pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
							   : pause * 2;
			continue;
		}
		if (!listen_once(w, &stop)) {
			pg_message(w->conn, msg, sizeof(msg));
			log_warn("lost the connection watching '%s' for new paths (%s); "
				 "reconnecting",
				 w->pool->location, msg);
			PQfinish(w->conn);
			w->conn = NULL;
		}
	}
	return NULL;
}

static void watcher_release(struct pg_watcher *w)
{
	PQfinish(w->conn);
	pg_pool_unref(w->pool);
	free(w);
}

/* LISTEN comes before reading the last cursor, so that a path committed
 * in between is announced (perhaps twice, which is harmless). */
int pg_watch_start(struct pg_pool *p, struct path_info_service *paths, path_info_watch_fn cb,
		   void *ctx, struct pg_watcher **out)
{
	struct pg_watcher *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	*w = (struct pg_watcher){.pool = pg_pool_ref(p), .paths = paths, .cb = cb, .ctx = ctx};
	rc = listen_on(w);
	if (rc == 0)
		rc = path_info_service_last_cursor(paths, &w->last);
	if (rc == 0)
		rc = watch_thread_start(&w->th, watch_main, w);
	if (rc < 0) {
		watcher_release(w);
		return rc;
	}
	*out = w;
	return 0;
}

void pg_watch_stop(struct pg_watcher *w)
{
	if (!w)
		return;
	watch_thread_stop(&w->th);
	watcher_release(w);
}
