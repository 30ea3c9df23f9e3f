/* gc.c - mark and sweep over the store's optional GC operations.
 *
 * Order of deletion (docs/gc.md): the PathInfos first, in one atomic step;
 * then the Directories no remaining path reaches, in one atomic step; then
 * the blobs no remaining path reaches, one file at a time. A crash between
 * any two steps leaves only unreferenced Directories or blobs, never a path
 * or Directory that refers to something missing. */
#include "store/gc.h"

#include "common/err.h"
#include "store/closure.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct path_vec {
	struct store_path *v;
	size_t n, cap;
};

static int vec_push(struct path_vec *pv, const struct store_path *p)
{
	if (pv->n == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 64;
		struct store_path *v = reallocarray(pv->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		pv->v = v, pv->cap = cap;
	}
	pv->v[pv->n++] = *p;
	return 0;
}

struct digest_vec {
	struct b3_digest *v;
	size_t n, cap;
};

static int dvec_push(struct digest_vec *dv, const struct b3_digest *d)
{
	if (dv->n == dv->cap) {
		size_t cap = dv->cap ? dv->cap * 2 : 256;
		struct b3_digest *v = reallocarray(dv->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		dv->v = v, dv->cap = cap;
	}
	dv->v[dv->n++] = *d;
	return 0;
}

struct gc {
	struct store *st;
	const struct gc_options *o;
	struct gc_result *r;
	struct path_set live;  /* paths kept (gc) */
	struct path_set dead;  /* paths to delete */
	struct path_vec roots; /* gc: roots; delete: their names in `root_names` */
	char **root_names;
	struct path_vec dead_v;
	struct digest_map live_dirs, live_blobs;
	struct digest_vec todo;
	struct timespec start;
	struct gc_progress prog;
};

static void progress(struct gc *g)
{
	if (g->o->progress)
		g->o->progress(g->o->ctx, &g->prog);
}

static char mark;

/* --- which paths go --- */

static int root_one(void *ctx, const char *name, const struct store_path *p, bool temporary)
{
	struct gc *g = ctx;
	char **v;
	int rc;

	v = realloc(g->root_names, (g->roots.n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	g->root_names = v;
	if (!(v[g->roots.n] = malloc(strlen(name) + 16)))
		return -ENOMEM;
	strcpy(v[g->roots.n], name);
	if (temporary)
		strcat(v[g->roots.n], " (temporary)");
	rc = vec_push(&g->roots, p);
	if (rc < 0)
		free(v[g->roots.n]);
	return rc;
}

static int dead_if_unreachable(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct gc *g = ctx;
	int rc;

	(void)cursor;
	if (path_set_get(&g->live, pi->path.digest))
		return 0;
	rc = path_set_put(&g->dead, pi->path.digest, &mark);
	return rc < 0 ? rc : vec_push(&g->dead_v, &pi->path);
}

static int select_unrooted(struct gc *g)
{
	long n = closure_walk(g->st->paths, g->roots.v, g->roots.n, true, false, &g->live);

	if (n < 0)
		return (int)n;
	return path_info_service_list(g->st->paths, 0, dead_if_unreachable, g);
}

/* storefs delete: the named paths, each once, which must exist. */
static int select_named(struct gc *g)
{
	char full[STORE_PATH_FULL_MAX];

	for (size_t i = 0; i < g->o->n_only; i++) {
		const struct store_path *p = &g->o->only[i];
		struct path_info *pi = NULL;
		int rc;

		if (path_set_get(&g->dead, p->digest))
			continue;
		rc = path_info_service_get(g->st->paths, p->digest, &pi);
		if (rc == 0 && strcmp(pi->path.name, p->name) != 0)
			rc = -ENOENT;
		if (pi)
			path_info_free(pi);
		if (rc == -ENOENT) {
			store_path_full(p, full);
			return sf_err(-ENOENT, "'%s' is not in the store", full);
		}
		if (rc == 0)
			rc = path_set_put(&g->dead, p->digest, &mark);
		if (rc == 0)
			rc = vec_push(&g->dead_v, p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A path that stays and refers to one that would go refuses the delete. */
static int refuse_if_referrer(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	char a[STORE_PATH_FULL_MAX], b[STORE_PATH_FULL_MAX];
	struct gc *g = ctx;

	(void)cursor;
	if (path_set_get(&g->dead, pi->path.digest))
		return 0;
	for (size_t i = 0; i < pi->n_refs; i++) {
		if (!path_set_get(&g->dead, pi->refs[i].digest))
			continue;
		store_path_full(&pi->refs[i], a);
		store_path_full(&pi->path, b);
		return sf_err(-EBUSY, "cannot delete '%s': '%s' references it", a, b);
	}
	return 0;
}

static int check_liveness(struct gc *g)
{
	char full[STORE_PATH_FULL_MAX];

	for (size_t i = 0; i < g->roots.n; i++) {
		if (!path_set_get(&g->dead, g->roots.v[i].digest))
			continue;
		store_path_full(&g->roots.v[i], full);
		return sf_err(-EBUSY, "cannot delete '%s': it is root '%s'", full,
			      g->root_names[i]);
	}
	return path_info_service_list(g->st->paths, 0, refuse_if_referrer, g);
}

/* --- what the remaining paths reach --- */

static int reach_node(struct gc *g, const struct node *n)
{
	if (n->kind == NODE_FILE && !digest_map_get(&g->live_blobs, &n->digest))
		g->prog.blobs++;
	if (n->kind == NODE_FILE)
		return digest_map_put(&g->live_blobs, &n->digest, &mark, NULL);
	if (n->kind != NODE_DIRECTORY || digest_map_get(&g->live_dirs, &n->digest))
		return 0;
	return dvec_push(&g->todo, &n->digest);
}

/* Marks every Directory and blob below the queued Directories. */
static int reach_dirs(struct gc *g)
{
	while (g->todo.n) {
		struct b3_digest d = g->todo.v[--g->todo.n];
		struct directory *dir;
		int rc;

		if (digest_map_get(&g->live_dirs, &d))
			continue;
		rc = digest_map_put(&g->live_dirs, &d, &mark, NULL);
		if (rc < 0)
			return rc;
		g->prog.dirs++;
		progress(g);
		rc = dir_service_get(g->st->dirs, &d, &dir);
		/* Already missing: nothing below it can be told apart from
		 * garbage; any other error stops the collection. */
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			return rc;
		for (size_t i = 0; rc == 0 && i < dir->count; i++)
			rc = reach_node(g, &dir->nodes[i]);
		directory_free(dir);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int reach_path(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct gc *g = ctx;
	int rc;

	(void)cursor;
	if (path_set_get(&g->dead, pi->path.digest))
		return 0;
	g->prog.paths++;
	progress(g);
	rc = reach_node(g, &pi->root);
	return rc < 0 ? rc : reach_dirs(g);
}

int store_root_name_check(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > STORE_ROOT_NAME_MAX || strchr(name, '/') || name[0] == '.')
		return sf_err(-EINVAL,
			      "invalid root name '%s' (1-255 bytes, no '/', not starting with '.')",
			      name);
	return 0;
}

/* --- sweeping --- */

struct sweep {
	struct gc *g;
	struct digest_vec dead;
};

static int dir_unreached(void *ctx, const struct b3_digest *d)
{
	struct sweep *s = ctx;

	s->g->prog.dirs++;
	progress(s->g);
	return digest_map_get(&s->g->live_dirs, d) ? 0 : dvec_push(&s->dead, d);
}

static int sweep_dirs(struct gc *g)
{
	struct sweep s = {g, {0}};
	int rc = store_dirs_each(g->st, dir_unreached, &s);

	if (rc == 0 && s.dead.n && !g->o->dry_run)
		rc = store_dirs_delete(g->st, s.dead.v, s.dead.n);
	if (rc == 0)
		g->r->dirs = s.dead.n;
	free(s.dead.v);
	return rc;
}

static int blob_unreached(void *ctx, const struct b3_digest *d)
{
	struct gc *g = ctx;
	uint64_t freed = 0;
	int rc;

	g->prog.blobs++;
	progress(g);
	if (digest_map_get(&g->live_blobs, d))
		return 0;
	if (g->o->max_freed && g->r->bytes_freed >= g->o->max_freed)
		return 1;
	if (g->o->dry_run) {
		rc = blob_service_stat(g->st->blobs, d, &freed);
		rc = rc == -ENOENT ? 0 : rc < 0 ? rc : 1;
	} else {
		rc = store_blob_delete(g->st, d, &g->start, &freed);
	}
	if (rc > 0)
		g->r->blobs++, g->r->bytes_freed += freed;
	g->prog.blobs_deleted = g->r->blobs, g->prog.bytes_freed = g->r->bytes_freed;
	return rc < 0 ? rc : 0;
}

static int sweep_blobs(struct gc *g)
{
	int rc = store_blobs_each(g->st, blob_unreached, g);

	return rc < 0 ? rc : 0;
}

/* --- the whole --- */

static int path_cmp(const void *a, const void *b)
{
	return store_path_cmp(a, b);
}

static int collect(struct gc *g)
{
	const struct gc_options *o = g->o;
	int rc = store_collect_lock(g->st);

	/* Blobs changed from now on may belong to a writer that does not hold
	 * the import lock; the coarse clock is what file times are taken from. */
	clock_gettime(CLOCK_REALTIME_COARSE, &g->start);
	if (rc == 0)
		rc = store_roots_each(g->st, root_one, g);
	if (rc == 0)
		rc = o->only ? select_named(g) : select_unrooted(g);
	if (rc == 0 && o->only && !o->ignore_liveness)
		rc = check_liveness(g);
	if (rc < 0)
		return rc;
	if (g->dead_v.n)
		qsort(g->dead_v.v, g->dead_v.n, sizeof(*g->dead_v.v), path_cmp);
	for (size_t i = 0; o->on_path && i < g->dead_v.n; i++)
		o->on_path(o->ctx, &g->dead_v.v[i]);
	if (!o->dry_run && g->dead_v.n)
		rc = store_paths_delete(g->st, g->dead_v.v, g->dead_v.n);
	if (rc < 0)
		return rc;
	g->r->paths = g->dead_v.n;
	rc = path_info_service_list(g->st->paths, 0, reach_path, g);
	g->prog = (struct gc_progress){.phase = GC_SWEEPING};
	if (rc == 0)
		rc = sweep_dirs(g);
	if (rc == 0)
		rc = sweep_blobs(g);
	return rc;
}

int store_gc(struct store *st, const struct gc_options *o, struct gc_result *r)
{
	struct gc g = {.st = st, .o = o, .r = r};
	int rc;

	*r = (struct gc_result){0};
	if (!st->paths_delete)
		return sf_err(-ENOTSUP, "store '%s' cannot collect garbage", st->location);
	path_set_init(&g.live);
	path_set_init(&g.dead);
	digest_map_init(&g.live_dirs);
	digest_map_init(&g.live_blobs);
	rc = collect(&g);
	for (size_t i = 0; i < g.roots.n; i++)
		free(g.root_names[i]);
	free(g.root_names);
	free(g.roots.v);
	free(g.dead_v.v);
	free(g.todo.v);
	path_set_release(&g.live);
	path_set_release(&g.dead);
	digest_map_release(&g.live_dirs);
	digest_map_release(&g.live_blobs);
	return rc;
}
