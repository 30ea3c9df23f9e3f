/* root_nodes_path_info.c - root_nodes over a PathInfo service. */
#include "store/root_nodes_path_info.h"

#include "common/err.h"
#include "common/log.h"

#include <stdatomic.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct watch_ctx {
	struct watch_ctx *next;
	root_nodes_watch_fn cb;
	void *ctx;
};

struct rn_path_info {
	struct root_nodes base;
	struct path_info_service *ps;
	pthread_mutex_t lock; /* protects watches */
	struct watch_ctx *watches;
	root_nodes_pin_fn pin;
	void *pin_ctx;
	atomic_bool pin_warned;
};

void root_nodes_path_info_set_pin(struct root_nodes *r, root_nodes_pin_fn fn, void *ctx)
{
	struct rn_path_info *s = (struct rn_path_info *)r;

	s->pin = fn, s->pin_ctx = ctx;
}

/* A mount must not stop serving because its temporary root could not be
 * written (say, a store directory it may not write); it only loses the
 * protection against a concurrent gc, which is worth one warning. */
static void pin(struct rn_path_info *s, const struct store_path *p)
{
	int rc = s->pin ? s->pin(s->pin_ctx, p) : 0;

	if (rc < 0 && rc != -ENOTSUP && !atomic_exchange(&s->pin_warned, true))
		log_warn("cannot record a temporary GC root: %s", sf_errmsg(rc));
	if (rc < 0)
		sf_err_clear();
}

static int rn_lookup(struct root_nodes *r, const uint8_t *name, size_t len, struct node *out,
		     uint8_t target_buf[CASTORE_MAX_TARGET_LEN])
{
	struct rn_path_info *s = (struct rn_path_info *)r;
	struct store_path sp;
	struct path_info *pi;
	int rc;

	/* A name that is no store path is simply not there. */
	if (store_path_parse_basename((const char *)name, len, &sp) < 0) {
		sf_err_clear();
		return -ENOENT;
	}
	pin(s, &sp);
	/* By name too: a wrong name must cost no substituter download. */
	rc = path_info_service_get_path(s->ps, &sp, &pi);
	if (rc == -ENOENT)
		return rc;
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	*out = pi->root;
	out->name = name, out->name_len = len;
	if (pi->root.kind == NODE_SYMLINK) {
		memcpy(target_buf, pi->root.target, pi->root.target_len);
		out->target = target_buf;
	}
	path_info_free(pi);
	return 0;
}

struct list_ctx {
	root_nodes_list_fn cb;
	void *ctx;
};

static int rn_list_one(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	const struct list_ctx *lc = ctx;

	return lc->cb(lc->ctx, &pi->root, cursor);
}

static int rn_list(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb, void *ctx)
{
	struct rn_path_info *s = (struct rn_path_info *)r;
	struct list_ctx lc = {cb, ctx};

	return path_info_service_list(s->ps, after, rn_list_one, &lc);
}

static void rn_watch_one(void *ctx, const char *basename)
{
	const struct watch_ctx *w = ctx;

	w->cb(w->ctx, (const uint8_t *)basename, strlen(basename));
}

static int rn_watch(struct root_nodes *r, root_nodes_watch_fn cb, void *ctx)
{
	struct rn_path_info *s = (struct rn_path_info *)r;
	struct watch_ctx *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->cb = cb, w->ctx = ctx;
	rc = path_info_service_watch(s->ps, rn_watch_one, w);
	if (rc < 0) {
		free(w);
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	w->next = s->watches;
	s->watches = w;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void rn_free(struct root_nodes *r)
{
	struct rn_path_info *s = (struct rn_path_info *)r;

	while (s->watches) {
		struct watch_ctx *w = s->watches;

		s->watches = w->next;
		free(w);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct root_nodes_ops rn_path_info_ops = {
    .lookup = rn_lookup,
    .list = rn_list,
    .watch = rn_watch,
    .free = rn_free,
};

int root_nodes_path_info_new(struct path_info_service *ps, struct root_nodes **out)
{
	struct rn_path_info *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return -ENOMEM;
	}
	s->base.ops = &rn_path_info_ops;
	s->ps = ps;
	*out = &s->base;
	return 0;
}
