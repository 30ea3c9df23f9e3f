/* s3_uploads.c - PUTs of whole blobs (below S3_CHUNKED_MIN): whether to
 * ask the bucket first, and the background queue that keeps several of
 * them in flight during an import (docs/s3.md "Uploads"). */
#include "backends/s3/s3_internal.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A committed blob waiting for its PUT. */
struct upload {
	struct upload *next;
	struct owner *owner;
	int fd; /* the blob's bytes: a temporary file, closed when done */
	uint64_t len;
	struct b3_digest d;
	char sha[65];
};

/* The uploads one thread committed since its last flush. */
struct owner {
	struct owner *next;
	pthread_t thread;
	unsigned pending;
	int err;
	char msg[512];
};

struct s3_uploads {
	struct s3_client *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct upload *head, **tail; /* lock */
	unsigned held;		     /* queued and running: each holds a temporary file; lock */
	pthread_t threads[S3_PARALLEL];
	unsigned n_threads;	/* lock */
	bool stop;		/* lock */
	struct owner *owners;	/* lock */
	struct s3_ask ask;	/* whole blobs: whether to HEAD first */
	struct digest_map seen; /* blob digest -> what we know of it (below); lock */
};

/* A tree often holds one content several times: once the bucket said it
 * has a blob (200 to a PUT or HEAD, 412), a later commit of it in this
 * process sends nothing; while a thread's upload of it is queued or
 * running, that thread's later commits of it rely on the same upload
 * (its flush reports it). The values of `seen`: &seen_have (the bucket
 * has it), &seen_unknown (an upload failed), or the struct owner whose
 * upload of it is queued or running. At most S3_SEEN_MAX digests are
 * kept (about 10 MiB). */
static char seen_have, seen_unknown;
#define S3_SEEN_MAX (1u << 17)

/* Called locked. A cache: a digest that cannot be kept costs a request. */
static void seen_set(struct s3_uploads *u, const struct b3_digest *d, void *what)
{
	if (u->seen.count < S3_SEEN_MAX || digest_map_get(&u->seen, d))
		(void)digest_map_put(&u->seen, d, what, NULL);
}

static bool known(struct s3_uploads *u, const struct b3_digest *d)
{
	bool have;

	pthread_mutex_lock(&u->lock);
	have = digest_map_get(&u->seen, d) == &seen_have;
	pthread_mutex_unlock(&u->lock);
	return have;
}

static void remember(struct s3_uploads *u, const struct b3_digest *d)
{
	pthread_mutex_lock(&u->lock);
	seen_set(u, d, &seen_have);
	pthread_mutex_unlock(&u->lock);
}

/* --- one PUT, asked first or not --- */

/* A re-import of a tree the bucket has would send every blob's bytes again
 * only to be refused (radosgw reads the body before answering 412, even
 * with Expect: 100-continue: docs/s3.md). So an object is asked for with
 * HEAD first, until this many in a row were absent (new contents): from
 * then on it is PUT blind, one request each, until a 412 says the bucket
 * has what we upload again. */
#define S3_BLIND_AFTER 8

void s3_ask_init(struct s3_ask *a)
{
	*a = (struct s3_ask){.absent_run = 0};
	pthread_mutex_init(&a->lock, NULL);
}

void s3_ask_release(struct s3_ask *a)
{
	pthread_mutex_destroy(&a->lock);
}

bool s3_ask_first(struct s3_ask *a)
{
	bool ask;

	/* HEADs in flight count as answers to come: S3_PARALLEL workers
	 * starting together do not all ask */
	pthread_mutex_lock(&a->lock);
	ask = a->absent_run + a->asking < S3_BLIND_AFTER;
	a->asking += ask;
	pthread_mutex_unlock(&a->lock);
	return ask;
}

void s3_ask_learn(struct s3_ask *a, bool asked, bool present)
{
	pthread_mutex_lock(&a->lock);
	a->asking -= asked;
	a->absent_run = present ? 0 : a->absent_run + 1;
	pthread_mutex_unlock(&a->lock);
}

int s3_status_error(struct s3_client *c, const char *op, const char *key,
		    const struct s3_response *r)
{
	return sf_err(r->status == 403 ? -EACCES : -EIO, "S3 %s of '%s' at '%s': HTTP %ld%s%s", op,
		      key, c->url.endpoint, r->status, r->code[0] ? " " : "", r->code);
}

/* 0 and *present after a HEAD. */
static int head(struct s3_client *c, const char *key, bool *present)
{
	struct s3_response r;
	int rc = s3_send(c, &(struct s3_request){.method = "HEAD", .key = key}, &r);

	if (rc < 0)
		return rc;
	if (r.status != 200 && r.status != 404)
		return s3_status_error(c, "HEAD", key, &r);
	*present = r.status == 200;
	return 0;
}

/* PUT if absent: 412 means the bucket has an object of that name, and
 * names are digests (reads verify, so a wrong object there is found then,
 * never served). */
static int put(struct s3_client *c, const char *key, int fd, uint64_t len, const char *sha,
	       bool *created)
{
	struct s3_response r;
	int rc = s3_send(c,
			 &(struct s3_request){.method = "PUT",
					      .key = key,
					      .if_none_match = true,
					      .body_fd = fd,
					      .body_len = len,
					      .body_sha256 = sha},
			 &r);

	if (rc == 0 && r.status != 200 && r.status != 412)
		rc = s3_status_error(c, "PUT", key, &r);
	if (rc == 0)
		*created = r.status == 200;
	return rc;
}

int s3_uploads_put_now(struct s3_uploads *u, int fd, uint64_t len, const struct b3_digest *d,
		       const char *sha, bool *created)
{
	char key[512];
	bool asked, present = false;
	int rc = 0;

	*created = false;
	if (known(u, d))
		return 0;
	s3_blob_key(u->c, d, key, sizeof(key));
	asked = s3_ask_first(&u->ask);
	if (asked)
		rc = head(u->c, key, &present);
	if (asked) /* no answer: keep asking */
		s3_ask_learn(&u->ask, true, rc < 0 || present);
	if (rc == 0 && !present)
		rc = put(u->c, key, fd, len, sha, created);
	/* a 412 after a HEAD said absent: another writer, not a reason */
	if (rc == 0 && !asked)
		s3_ask_learn(&u->ask, false, !*created);
	if (rc == 0)
		remember(u, d);
	return rc;
}

/* --- the queue --- */

static struct owner *owner_of(struct s3_uploads *u, pthread_t self)
{
	for (struct owner *o = u->owners; o; o = o->next)
		if (pthread_equal(o->thread, self))
			return o;
	return NULL;
}

static void done(struct s3_uploads *u, struct upload *up, int rc)
{
	struct owner *o = up->owner;

	close(up->fd);
	pthread_mutex_lock(&u->lock);
	if (digest_map_get(&u->seen, &up->d) == o) /* not uploaded: we do not know */
		seen_set(u, &up->d, &seen_unknown);
	if (rc < 0 && o->err == 0) {
		o->err = rc;
		snprintf(o->msg, sizeof(o->msg), "%s", sf_errmsg(rc));
	}
	o->pending--;
	u->held--;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	free(up);
}

/* Takes the next upload; NULL when stopping. A stopping service drops
 * what is queued: nothing flushed it, so nothing relies on it. */
static struct upload *take(struct s3_uploads *u)
{
	struct upload *up;

	pthread_mutex_lock(&u->lock);
	while (!u->head && !u->stop)
		pthread_cond_wait(&u->cond, &u->lock);
	up = u->stop ? NULL : u->head;
	if (up) {
		u->head = up->next;
		if (!u->head)
			u->tail = &u->head;
	}
	pthread_mutex_unlock(&u->lock);
	return up;
}

/* After a failed upload its owner's flush fails whatever follows: the
 * rest of its queue is dropped without a request. */
static bool owner_failed(struct s3_uploads *u, struct owner *o)
{
	bool failed;

	pthread_mutex_lock(&u->lock);
	failed = o->err != 0;
	pthread_mutex_unlock(&u->lock);
	return failed;
}

static void *worker(void *arg)
{
	struct s3_uploads *u = arg;
	struct upload *up;
	bool created;

	while ((up = take(u)))
		done(u, up,
		     owner_failed(u, up->owner)
			 ? 0
			 : s3_uploads_put_now(u, up->fd, up->len, &up->d, up->sha, &created));
	return NULL;
}

/* Called locked: this thread's record, made on its first upload. After
 * a failed upload its flush fails anyway: its later commits fail at once. */
static int owner_get(struct s3_uploads *u, struct owner **out)
{
	struct owner *o = owner_of(u, pthread_self());

	if (o && o->err)
		return o->err == -ENOMEM ? -ENOMEM : sf_err(o->err, "%s", o->msg);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		o->thread = pthread_self();
		o->next = u->owners;
		u->owners = o;
	}
	*out = o;
	return 0;
}

/* Called locked: queues `up` unless no worker runs nor can start (then
 * the caller uploads it itself). */
static bool enqueue(struct s3_uploads *u, struct owner *o, struct upload *up)
{
	void *what = digest_map_get(&u->seen, &up->d);

	if (what == &seen_have || what == o) { /* sent, or being sent for this thread */
		close(up->fd);
		free(up);
		return true;
	}
	if (u->n_threads < S3_PARALLEL && u->n_threads <= u->held &&
	    pthread_create(&u->threads[u->n_threads], NULL, worker, u) == 0)
		u->n_threads++;
	if (u->n_threads == 0)
		return false;
	up->owner = o;
	seen_set(u, &up->d, o);
	o->pending++;
	u->held++;
	*u->tail = up;
	u->tail = &up->next;
	pthread_cond_broadcast(&u->cond);
	return true;
}

int s3_uploads_add(struct s3_uploads *u, int fd, uint64_t len, const struct b3_digest *d,
		   const char *sha)
{
	struct upload *up = malloc(sizeof(*up));
	struct owner *o = NULL;
	bool queued = false, created;
	int rc = up ? 0 : -ENOMEM;

	if (up) {
		*up = (struct upload){.fd = fd, .len = len, .d = *d};
		memcpy(up->sha, sha, sizeof(up->sha));
	}
	pthread_mutex_lock(&u->lock);
	while (rc == 0 && u->held >= S3_UPLOADS_HELD)
		pthread_cond_wait(&u->cond, &u->lock);
	if (rc == 0)
		rc = owner_get(u, &o);
	if (rc == 0)
		queued = enqueue(u, o, up);
	pthread_mutex_unlock(&u->lock);
	if (queued)
		return 0;
	free(up);
	if (rc == 0)
		rc = s3_uploads_put_now(u, fd, len, d, sha, &created);
	close(fd);
	return rc;
}

int s3_uploads_wait(struct s3_uploads *u)
{
	struct owner *o, **p;
	char msg[512];
	int rc = 0;

	pthread_mutex_lock(&u->lock);
	o = owner_of(u, pthread_self());
	while (o && o->pending)
		pthread_cond_wait(&u->cond, &u->lock);
	if (o) {
		for (p = &u->owners; *p != o; p = &(*p)->next)
			;
		*p = o->next;
		rc = o->err;
		memcpy(msg, o->msg, sizeof(msg));
		free(o);
	}
	pthread_mutex_unlock(&u->lock);
	if (rc == 0 || rc == -ENOMEM)
		return rc;
	return sf_err(rc, "%s", msg);
}

int s3_uploads_new(struct s3_client *c, struct s3_uploads **out)
{
	struct s3_uploads *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->c = c;
	u->tail = &u->head;
	digest_map_init(&u->seen);
	s3_ask_init(&u->ask);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	*out = u;
	return 0;
}

void s3_uploads_free(struct s3_uploads *u)
{
	struct upload *up;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	for (unsigned i = 0; i < u->n_threads; i++)
		pthread_join(u->threads[i], NULL);
	while ((up = u->head)) {
		u->head = up->next;
		close(up->fd);
		free(up);
	}
	while (u->owners) {
		struct owner *o = u->owners;

		u->owners = o->next;
		free(o);
	}
	digest_map_release(&u->seen);
	s3_ask_release(&u->ask);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
