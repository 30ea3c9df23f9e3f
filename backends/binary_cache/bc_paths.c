/* bc_paths.c - the binary cache PathInfo service: local first, else fetch
 * narinfo and NAR once per path, verify, ingest, register. */
#include "backends/binary_cache/bc_internal.h"
#include "backends/binary_cache/binary_cache.h"

#include "common/deadline.h"
#include "common/err.h"
#include "common/log.h"
#include "store/ca_verify.h"
#include "store/store_write.h"
#include "store/narinfo.h"
#include "store/signing.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fetch's result when the narinfo names the path differently than the
 * lookup that started it: nothing is downloaded; waiters ask again. */
#define OTHER_NAME (-ESRCH)

/* How long a waiter gives the owner of a fetch beyond its deadline. */
#define WAIT_GRACE_MS 10000

/* A fetch in progress; waiters hold references. */
struct inflight {
	struct inflight *next;
	uint8_t digest[STORE_PATH_DIGEST_LEN];
	bool done;
	int rc; /* the fetch's result once done */
	unsigned refs;
	uint64_t until_ms; /* its deadline (deadline_now_ms() clock) */
};

struct bc_paths {
	struct path_info_service base;
	struct path_info_service *local; /* owned */
	struct store *st;		 /* the store of this service, for write sessions */
	struct blob_service *bs;	 /* borrowed */
	struct dir_service *ds;		 /* borrowed */
	enum dir_size_formula f;
	char *url; /* without trailing '/' */
	struct nix_public_key *keys;
	size_t n_keys;
	unsigned flags;
	struct deadline_rule deadline;
	store_fetch_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	pthread_mutex_t lock; /* protects inflight and their until_ms */
	pthread_cond_t cond;
	struct inflight *inflight;
	atomic_uint_fast64_t narinfos, nars, added, failures;
};

/* What one fetch works with. */
struct fetch {
	struct bc_paths *s;
	struct inflight *f;
	struct store_write *session; /* NULL: writing straight to the blobs */
	char hash[STORE_PATH_HASH_CHARS + 1];
	char full[STORE_PATH_FULL_MAX]; /* once the narinfo names it */
	struct narinfo *ni;
	struct path_info *pi;
};

/* -EIO with "<formatted prefix>: <the message recorded for rc>"; the
 * message is copied first because sf_err() reuses its buffer. */
static int __attribute__((format(printf, 2, 3))) wrap_eio(int rc, const char *fmt, ...)
{
	char prefix[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	return sf_err(-EIO, "%s: %s", prefix, sf_errmsg(rc));
}

/* --- checks on the narinfo --- */

/* "a, b" of the signature key names (or "none") into buf. */
static void sig_names(const struct narinfo *ni, char *buf, size_t len)
{
	size_t used = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < ni->n_sigs && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 ni->sigs[i].name);
}

static void key_names(const struct bc_paths *s, char *buf, size_t len)
{
	size_t used = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < s->n_keys && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 s->keys[i].name);
}

static int check_trust(struct fetch *fx)
{
	char sigs[512], keys[512], why[768] = "";
	size_t valid = 0;
	int rc;

	if (fx->s->flags & BINARY_CACHE_NO_CHECK_SIGS)
		return 0;
	/* A CA that gives this path stands in for a signature; its content is
	 * checked against it once the NAR is in (fetch_path). */
	if (fx->pi->has_ca) {
		rc = ca_verify_claims(fx->pi);
		if (rc == 0 || rc == -ENOMEM)
			return rc;
		snprintf(why, sizeof(why), "%s", sf_errmsg(rc));
	}
	rc = signing_verify_path_info(fx->pi, fx->s->keys, fx->s->n_keys, &valid);
	if (rc < 0)
		return rc;
	if (valid > 0)
		return 0;
	/* Unsigned (as far as we trust) with a CA that does not hold: that
	 * is the reason worth naming. */
	if (*why)
		return sf_err(-EIO, "%s", why);
	sig_names(fx->ni, sigs, sizeof(sigs));
	key_names(fx->s, keys, sizeof(keys));
	if (fx->ni->n_sigs == 0)
		return sf_err(-EIO, "'%s' is unsigned and not content-addressed (trusted keys: %s)",
			      fx->full, keys);
	return sf_err(-EIO,
		      "'%s' has no valid signature by a trusted key (signed by: %s; "
		      "trusted keys: %s)",
		      fx->full, sigs, keys);
}

/* A relative NAR URL must stay inside the cache: no "..", no leading '/',
 * no query tricks on a file:// cache. */
static int check_relative_url(const struct fetch *fx, const char *u)
{
	bool file = !strncmp(fx->s->url, "file://", 7);
	const char *ok = file ? "._+-=/" : "._+-=/~%?&";

	if (!*u || *u == '/')
		return sf_err(-EIO, "narinfo of '%s' has a bad URL '%s'", fx->full, u);
	for (const char *p = u; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(ok, *p)))
			return sf_err(-EIO, "narinfo of '%s' has a bad URL '%s'", fx->full, u);
	for (const char *p = u; (p = strstr(p, "..")); p += 2)
		if ((p == u || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return sf_err(-EIO, "narinfo of '%s' has a URL '%s' leaving the cache",
				      fx->full, u);
	return 0;
}

/* The NAR's URL, malloc'd. */
static int nar_url(const struct fetch *fx, char **out)
{
	const char *u = fx->ni->url;
	int rc;

	if (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) {
		rc = bc_url_check(u);
		if (rc < 0)
			return sf_err(-EIO, "narinfo of '%s' has a bad URL '%s'", fx->full, u);
		*out = strdup(u);
	} else {
		rc = check_relative_url(fx, u);
		if (rc < 0)
			return rc;
		if (asprintf(out, "%s/%s", fx->s->url, u) < 0)
			*out = NULL;
	}
	return *out ? 0 : -ENOMEM;
}

/* --- fetching one path --- */

static int fetch_narinfo(struct fetch *fx, const uint8_t *digest)
{
	/* Only a valid placeholder: the real root comes from the NAR. */
	static const struct node placeholder = {.kind = NODE_FILE};
	char *url, *text = NULL;
	size_t len = 0;
	int rc;

	if (asprintf(&url, "%s/%s.narinfo", fx->s->url, fx->hash) < 0)
		return -ENOMEM;
	atomic_fetch_add(&fx->s->narinfos, 1);
	log_debug("substituter: fetching '%s'", url);
	rc = bc_fetch_all(url, BC_NARINFO_MAX, deadline_ms(&fx->s->deadline, 0), &text, &len);
	if (rc == 0 && (rc = narinfo_parse(text, len, &fx->ni)) < 0)
		rc = wrap_eio(rc, "narinfo '%s' is invalid", url);
	free(url);
	free(text);
	if (rc < 0)
		return rc;
	if (memcmp(fx->ni->path.digest, digest, STORE_PATH_DIGEST_LEN) != 0) {
		char other[STORE_PATH_FULL_MAX];

		store_path_full(&fx->ni->path, other);
		return sf_err(-EIO, "narinfo '%s.narinfo' describes '%s', another path", fx->hash,
			      other);
	}
	store_path_full(&fx->ni->path, fx->full);
	rc = narinfo_to_path_info(fx->ni, &placeholder, &fx->pi);
	if (rc < 0)
		return wrap_eio(rc, "narinfo of '%s' is invalid", fx->full);
	return 0;
}

/* The NAR's deadline, also the limit of concurrent waiters' waits. */
static uint64_t nar_deadline(struct fetch *fx)
{
	uint64_t ms = deadline_ms(&fx->s->deadline, fx->ni->nar_size);

	pthread_mutex_lock(&fx->s->lock);
	fx->f->until_ms = deadline_now_ms() + ms;
	pthread_mutex_unlock(&fx->s->lock);
	return ms;
}

/* The decompressed NAR on its way to the ingester, counted for whoever
 * shows the fetch's progress. */
struct counted {
	struct fetch *fx;
	struct nar_decomp *dc;
	struct store_fetch_progress p;
};

static int counted_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct counted *c = ctx;
	int rc = nar_decomp_read(c->dc, buf, len, n);

	if (rc == 0) {
		c->p.bytes += *n;
		c->fx->s->progress(c->fx->s->progress_ctx, &c->p);
	}
	return rc;
}

static int ingest(struct fetch *fx, struct nar_decomp *dc, const struct nar_summary *expect,
		  struct node *root, uint8_t *target)
{
	struct counted c = {fx, dc, {.path = fx->full, .total = fx->ni->nar_size}};
	struct blob_service *bs = fx->session ? store_write_blobs(fx->session) : fx->s->bs;
	struct dir_service *ds = fx->session ? store_write_dirs(fx->session) : fx->s->ds;
	int rc;

	if (!fx->s->progress)
		return nar_ingest_expect(bs, ds, fx->s->f, nar_decomp_read, dc, expect, root,
					 target, NULL);
	rc = nar_ingest_expect(bs, ds, fx->s->f, counted_read, &c, expect, root, target, NULL);
	c.p.done = true;
	fx->s->progress(fx->s->progress_ctx, &c.p);
	return rc;
}

/* Streams the NAR through the decompressor into the local services. */
static int fetch_nar(struct fetch *fx, struct node *root, uint8_t *target)
{
	struct nar_summary expect = {.size = fx->ni->nar_size};
	struct nar_decomp *dc = NULL;
	struct bc_source *src = NULL;
	enum nar_compression comp;
	char *url = NULL;
	int rc;

	memcpy(expect.sha256, fx->ni->nar_sha256, 32);
	rc = nar_compression_parse(fx->ni->compression, &comp);
	if (rc == 0)
		rc = nar_url(fx, &url);
	if (rc == 0) {
		atomic_fetch_add(&fx->s->nars, 1);
		log_info("substituter: fetching '%s' from '%s'", fx->full, url);
		rc = bc_source_open(url, nar_deadline(fx), &src);
	}
	if (rc == 0)
		rc = nar_decomp_new(comp, bc_source_read, src, &dc);
	if (rc == 0)
		rc = ingest(fx, dc, &expect, root, target);
	if (rc == -ENOENT)
		rc = sf_err(-EIO, "NAR '%s' is missing from the cache", url);
	nar_decomp_free(dc);
	bc_source_close(src);
	free(url);
	return rc;
}

/* `name` (NULL: any) must be the narinfo's before the NAR is fetched. */
static int fetch_path(struct bc_paths *s, struct inflight *f, const uint8_t *digest,
		      const char *name, struct path_info **out)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct fetch fx = {.s = s, .f = f};
	struct node root;
	int rc;

	store_path_hash_part(digest, fx.hash);
	rc = fetch_narinfo(&fx, digest);
	if (rc == 0 && name && strcmp(fx.ni->path.name, name) != 0)
		rc = OTHER_NAME;
	if (rc == 0)
		rc = check_trust(&fx);
	/* From the first blob to the registration: a refused NAR takes back
	 * what it wrote (docs/trust.md "Orphans"). */
	if (rc == 0 && s->st)
		rc = store_write_begin(s->st, &fx.session);
	if (rc == 0)
		rc = fetch_nar(&fx, &root, target);
	if (rc == 0)
		rc = path_info_set_root(fx.pi, &root);
	if (rc == 0)
		rc = path_info_validate(fx.pi);
	/* Signed or not, a claimed CA must match what arrived (as in Nix). */
	if (rc == 0)
		rc = ca_verify(s->bs, s->ds, fx.pi);
	if (rc == 0)
		rc = blob_service_flush(s->bs);
	if (rc == 0)
		rc = path_info_service_put(s->local, fx.pi);
	if (rc == 0) {
		atomic_fetch_add(&s->added, 1);
		*out = fx.pi;
		fx.pi = NULL;
	} else if (rc != -ENOENT && rc != OTHER_NAME && rc != -ENOMEM) {
		/* Recorded, not logged: whoever reports the failure (the mount's
		 * transport, a command) logs it, once. */
		rc = sf_err(rc, "substituter: cannot substitute '%s' from '%s': %s",
			    fx.full[0] ? fx.full : fx.hash, s->url, sf_errmsg(rc));
	}
	if (fx.session)
		store_write_finish(fx.session, rc, fx.full[0] ? fx.full : fx.hash);
	path_info_free(fx.pi);
	narinfo_free(fx.ni);
	return rc;
}

/* --- the in-flight table --- */

static struct inflight *inflight_find(struct bc_paths *s, const uint8_t *digest)
{
	for (struct inflight *f = s->inflight; f; f = f->next)
		if (!memcmp(f->digest, digest, STORE_PATH_DIGEST_LEN))
			return f;
	return NULL;
}

static void inflight_unlink(struct bc_paths *s, struct inflight *f)
{
	for (struct inflight **pp = &s->inflight; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			return;
		}
}

static void inflight_unref(struct inflight *f)
{
	if (--f->refs == 0)
		free(f);
}

/* The local answer for `digest`, OTHER_NAME if it is a path named other
 * than `name` (NULL: any name). */
static int local_named(struct bc_paths *s, const uint8_t *digest, const char *name,
		       struct path_info **out)
{
	struct path_info *pi;
	int rc = path_info_service_get(s->local, digest, &pi);

	if (rc < 0)
		return rc;
	if (name && strcmp(pi->path.name, name) != 0) {
		path_info_free(pi);
		return OTHER_NAME;
	}
	*out = pi;
	return 0;
}

/* Waits for another thread's fetch; then the local store has the answer.
 * -EAGAIN: that fetch was for another name and fetched nothing: ask again. */
static int wait_for(struct bc_paths *s, struct inflight *f, const uint8_t *digest, const char *name,
		    struct path_info **out)
{
	int rc;

	f->refs++;
	/* Timed: the owner's own deadline plus a grace for its local work
	 * (ingest, registration); it may move the deadline once it knows the
	 * NAR's size. */
	rc = 0;
	while (!f->done && rc == 0) {
		uint64_t now = deadline_now_ms(), until = f->until_ms + WAIT_GRACE_MS;
		struct timespec ts = deadline_abs(until > now ? until - now : 0);

		if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT &&
		    deadline_now_ms() >= f->until_ms + WAIT_GRACE_MS)
			rc = -ETIMEDOUT;
	}
	if (rc == 0)
		rc = f->rc;
	inflight_unref(f);
	pthread_mutex_unlock(&s->lock);
	if (rc == OTHER_NAME)
		return -EAGAIN;
	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		char hash[STORE_PATH_HASH_CHARS + 1];

		store_path_hash_part(digest, hash);
		if (rc == -ETIMEDOUT)
			return sf_err(-EIO,
				      "substituting '%s' in a concurrent request missed its "
				      "deadline",
				      hash);
		return sf_err(-EIO, "substituting '%s' failed in a concurrent request", hash);
	}
	return local_named(s, digest, name, out);
}

/* Runs the fetch as the one owner of its in-flight entry. */
static int fetch_owned(struct bc_paths *s, struct inflight *f, const uint8_t *digest,
		       const char *name, struct path_info **out)
{
	int rc = local_named(s, digest, name, out);

	/* Another fetch may have finished between our miss and our entry. */
	if (rc == -ENOENT) {
		rc = fetch_path(s, f, digest, name, out);
		if (rc < 0 && rc != -ENOENT && rc != OTHER_NAME) {
			atomic_fetch_add(&s->failures, 1);
			/* The message already names the path and the cache. */
			if (rc != -ENOMEM && rc != -EIO)
				rc = sf_err(-EIO, "%s", sf_errmsg(rc));
		}
	}
	pthread_mutex_lock(&s->lock);
	f->done = true;
	f->rc = rc;
	inflight_unlink(s, f);
	inflight_unref(f);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Starts a fetch of `digest` and runs it, unless one is running: then
 * waits for it. Called with s->lock held; returns with it released. */
static int fetch_or_wait(struct bc_paths *s, const uint8_t *digest, const char *name,
			 struct path_info **out)
{
	struct inflight *f = inflight_find(s, digest);

	if (f)
		return wait_for(s, f, digest, name, out);
	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	memcpy(f->digest, digest, STORE_PATH_DIGEST_LEN);
	f->refs = 1;
	f->until_ms = deadline_now_ms() + deadline_ms(&s->deadline, 0);
	f->next = s->inflight;
	s->inflight = f;
	pthread_mutex_unlock(&s->lock);
	return fetch_owned(s, f, digest, name, out);
}

/* get() by digest, and by name too if `name` is not NULL. */
static int bc_lookup(struct bc_paths *s, const uint8_t *digest, const char *name,
		     struct path_info **out)
{
	int rc;

	do {
		rc = local_named(s, digest, name, out);
		if (rc != -ENOENT)
			break;
		pthread_mutex_lock(&s->lock);
		rc = fetch_or_wait(s, digest, name, out);
	} while (rc == -EAGAIN);
	return rc == OTHER_NAME ? -ENOENT : rc;
}

static int bc_get(struct path_info_service *ps, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		  struct path_info **out)
{
	return bc_lookup((struct bc_paths *)ps, digest, NULL, out);
}

static int bc_get_path(struct path_info_service *ps, const struct store_path *p,
		       struct path_info **out)
{
	return bc_lookup((struct bc_paths *)ps, p->digest, p->name, out);
}

/* --- the rest of the interface --- */

static int bc_put(struct path_info_service *ps, const struct path_info *pi,
		  enum path_info_put_result *res)
{
	return path_info_service_register(((struct bc_paths *)ps)->local, pi, res);
}

static int bc_list(struct path_info_service *ps, uint64_t after, path_info_list_fn cb, void *ctx)
{
	return path_info_service_list(((struct bc_paths *)ps)->local, after, cb, ctx);
}

static int bc_watch(struct path_info_service *ps, path_info_watch_fn cb, void *ctx)
{
	return path_info_service_watch(((struct bc_paths *)ps)->local, cb, ctx);
}

static void bc_free(struct path_info_service *ps)
{
	struct bc_paths *s = (struct bc_paths *)ps;

	path_info_service_free(s->local);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->keys);
	free(s->url);
	free(s);
}

static int bc_last_cursor(struct path_info_service *ps, uint64_t *out)
{
	return path_info_service_last_cursor(((struct bc_paths *)ps)->local, out);
}

static const struct path_info_service_ops bc_paths_ops = {
    .last_cursor = bc_last_cursor,
    .get = bc_get,
    .put = bc_put,
    .list = bc_list,
    .watch = bc_watch,
    .free = bc_free,
    .get_path = bc_get_path,
};

void binary_cache_stats(struct path_info_service *ps, struct binary_cache_stats *out)
{
	struct bc_paths *s = (struct bc_paths *)ps;

	out->narinfo_fetches = atomic_load(&s->narinfos);
	out->nar_fetches = atomic_load(&s->nars);
	out->paths_added = atomic_load(&s->added);
	out->failures = atomic_load(&s->failures);
}

/* Timed waits use the monotonic clock (common/deadline.h). */
static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int rc = pthread_condattr_init(&a);

	if (rc == 0)
		rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return rc;
}

void binary_cache_set_deadline(struct path_info_service *ps, const struct deadline_rule *r)
{
	((struct bc_paths *)ps)->deadline = *r;
}

static int bc_config(struct bc_paths *s, const char *cache_url, const char *trusted_keys)
{
	size_t len;
	int rc = bc_url_check(cache_url);

	if (rc < 0)
		return rc;
	s->url = strdup(cache_url);
	if (!s->url)
		return -ENOMEM;
	len = strlen(s->url);
	while (len > 8 && s->url[len - 1] == '/')
		s->url[--len] = '\0';
	if (trusted_keys && *trusted_keys)
		return signing_public_keys_parse(trusted_keys, &s->keys, &s->n_keys);
	return 0;
}

void bc_paths_set_progress(struct path_info_service *ps, store_fetch_progress_fn fn, void *ctx)
{
	struct bc_paths *s = (struct bc_paths *)ps;

	s->progress = fn, s->progress_ctx = ctx;
}

void bc_paths_attach(struct path_info_service *ps, struct store *st)
{
	((struct bc_paths *)ps)->st = st;
}

int bc_paths_create(const char *cache_url, const char *trusted_keys, unsigned flags,
		    struct path_info_service *local_paths, struct blob_service *blobs,
		    struct dir_service *dirs, enum dir_size_formula f,
		    struct path_info_service **out)
{
	struct bc_paths *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = bc_config(s, cache_url, trusted_keys);
	if (rc == 0 && pthread_mutex_init(&s->lock, NULL) != 0)
		rc = -ENOMEM;
	if (rc == 0 && cond_init_monotonic(&s->cond) != 0) {
		pthread_mutex_destroy(&s->lock);
		rc = -ENOMEM;
	}
	if (rc < 0) {
		free(s->keys);
		free(s->url);
		free(s);
		return rc;
	}
	s->base.ops = &bc_paths_ops;
	s->local = local_paths, s->bs = blobs, s->ds = dirs, s->f = f, s->flags = flags;
	*out = &s->base;
	return 0;
}

int binary_cache_path_info_new(const char *cache_url, const char *trusted_keys, unsigned flags,
			       struct path_info_service *local_paths, struct blob_service *blobs,
			       struct dir_service *dirs, enum dir_size_formula f,
			       struct path_info_service **out)
{
	int rc = bc_paths_create(cache_url, trusted_keys, flags, local_paths, blobs, dirs, f, out);

	if (rc < 0)
		path_info_service_free(local_paths);
	return rc;
}
