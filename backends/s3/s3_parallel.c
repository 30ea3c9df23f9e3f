/* s3_parallel.c - independent requests of one operation (the chunks of a
 * blob being uploaded, the chunks read ahead) run S3_PARALLEL at a time.
 * Threads over the client's handle pool rather than a curl multi loop:
 * each request keeps its own retry and backoff (s3_send()) unchanged, and
 * at 8 requests in flight a thread each costs nothing that matters. */
#include "backends/s3/s3_internal.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>

struct pool {
	int (*job)(void *ctx, size_t i);
	void *ctx;
	size_t n, next; /* lock */
	pthread_mutex_t lock;
	size_t err_at; /* index of the first failed job, n if none; lock */
	int err;       /* lock */
	char msg[512]; /* its message: sf_err() records per thread; lock */
};

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i;
		int rc;

		pthread_mutex_lock(&p->lock);
		i = p->err_at < p->n ? p->n : p->next++; /* stop taking jobs after a failure */
		pthread_mutex_unlock(&p->lock);
		if (i >= p->n)
			return NULL;
		rc = p->job(p->ctx, i);
		if (rc == 0)
			continue;
		pthread_mutex_lock(&p->lock);
		if (i < p->err_at) {
			p->err_at = i;
			p->err = rc;
			snprintf(p->msg, sizeof(p->msg), "%s", sf_errmsg(rc));
		}
		pthread_mutex_unlock(&p->lock);
	}
}

int s3_parallel(size_t n, int (*job)(void *ctx, size_t i), void *ctx)
{
	struct pool p = {.job = job, .ctx = ctx, .n = n, .err_at = n};
	pthread_t t[S3_PARALLEL - 1];
	size_t started = 0;

	pthread_mutex_init(&p.lock, NULL);
	/* a thread that cannot start leaves its share to the others */
	while (started + 1 < S3_PARALLEL && started + 1 < n &&
	       pthread_create(&t[started], NULL, worker, &p) == 0)
		started++;
	worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.err_at == n)
		return 0;
	return p.err == -ENOMEM ? -ENOMEM : sf_err(p.err, "%s", p.msg);
}
