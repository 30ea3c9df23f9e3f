/* progress.c - the progress line of the storefs commands (progress.h). */
#include "cli/progress.h"

#include "common/err.h"
#include "common/io.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

/* Lines of several threads (a mount's fetches) share the terminal. */
static pthread_mutex_t draw_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t interval_ns(void)
{
	const char *s = getenv("STOREFS_PROGRESS_INTERVAL_MS");
	char *end;
	unsigned long ms;

	if (!s || !*s)
		return 100000000u;
	ms = strtoul(s, &end, 10);
	return *end || ms > 10000 ? 100000000u : (uint64_t)ms * 1000000u;
}

void cli_progress_init(struct cli_progress *p)
{
	*p = (struct cli_progress){.enabled = isatty(STDERR_FILENO) == 1,
				   .interval_ns = interval_ns()};
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last = p->start;
}

static uint64_t ns_between(const struct timespec *a, const struct timespec *b)
{
	int64_t ns = (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);

	return ns > 0 ? (uint64_t)ns : 0;
}

/* Called with draw_lock held: whether a line is due, and then from now on
 * the next one waits an interval. */
static bool due_locked(struct cli_progress *p)
{
	struct timespec now;

	if (!p->enabled)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ns_between(&p->last, &now) < p->interval_ns)
		return false;
	p->last = now;
	return true;
}

bool cli_progress_due(struct cli_progress *p)
{
	struct timespec now;
	bool due;

	if (!p->enabled)
		return false;
	pthread_mutex_lock(&draw_lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	due = ns_between(&p->last, &now) >= p->interval_ns;
	pthread_mutex_unlock(&draw_lock);
	return due;
}

void cli_progress_draw(struct cli_progress *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->enabled)
		return;
	pthread_mutex_lock(&draw_lock);
	if (due_locked(p)) {
		va_start(ap, fmt);
		fputc('\r', stderr);
		vfprintf(stderr, fmt, ap);
		fputs("\033[K", stderr);
		fflush(stderr);
		va_end(ap);
		p->drawn = true;
	}
	pthread_mutex_unlock(&draw_lock);
}

/* MiB per second since the start. */
static double rate(const struct cli_progress *p, uint64_t bytes)
{
	struct timespec now;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &now);
	s = (double)ns_between(&p->start, &now) / 1e9;
	return s > 0 ? (double)bytes / MIB / s : 0.0;
}

void cli_progress_update(void *ctx, uint64_t files, uint64_t bytes)
{
	struct cli_progress *p = ctx;

	if (cli_progress_due(p))
		cli_progress_draw(p, "%llu files, %.1f MiB, %.1f MiB/s", (unsigned long long)files,
				  (double)bytes / MIB, rate(p, bytes));
}

void cli_progress_bytes(struct cli_progress *p, uint64_t bytes)
{
	if (cli_progress_due(p))
		cli_progress_draw(p, "%.1f MiB, %.1f MiB/s", (double)bytes / MIB, rate(p, bytes));
}

void cli_progress_done(struct cli_progress *p)
{
	pthread_mutex_lock(&draw_lock);
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = false;
	pthread_mutex_unlock(&draw_lock);
}

int cli_progress_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct cli_progress_reader *r = ctx;
	ssize_t got = read_retry(r->fd, buf, len);

	if (got < 0)
		return sf_err_sys((int)-got, "cannot read the NAR");
	r->bytes += (uint64_t)got;
	if (r->show)
		r->show(r->ctx, r->bytes);
	else
		cli_progress_bytes(&r->prog, r->bytes);
	*n = (size_t)got;
	return 0;
}

/* --- fetches a store makes on its own --- */

/* One line for the whole process: fetches end before a command prints. */
static struct cli_progress fetch_line;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_line_init(void)
{
	cli_progress_init(&fetch_line);
}

static void on_fetch(void *ctx, const struct store_fetch_progress *f)
{
	struct cli_progress *p = ctx;

	if (f->done)
		cli_progress_done(p);
	else if (f->total)
		cli_progress_draw(p, "fetching %s: %.1f of %.1f MiB", f->path,
				  (double)f->bytes / MIB, (double)f->total / MIB);
	else
		cli_progress_draw(p, "fetching %s: %.1f MiB", f->path, (double)f->bytes / MIB);
}

void cli_progress_fetches(struct store *st)
{
	pthread_once(&fetch_once, fetch_line_init);
	if (fetch_line.enabled)
		store_set_fetch_progress(st, on_fetch, &fetch_line);
}
