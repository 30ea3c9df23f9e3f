/* verify.c - the store scrub: blobs, Directory closures, PathInfo CAs,
 * references and NAR hashes, objects no path reaches; and repair from
 * another store. */
#include "store/verify.h"

#include "common/err.h"
#include "store/ca_verify.h"
#include "store/nar.h"
#include "store/store_gc.h"
#include "store/store_write.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK (1u << 20)
/* Any non-NULL value marks membership in a digest set. */
#define PRESENT ((void *)1)

struct verifier {
	struct store *st;
	const struct verify_options *opt;
	struct verify_result *res;
	bool scrubbed;		      /* every blob file was hashed by store_blob_check */
	struct digest_map good_blobs; /* digest -> (void *)(size + 1) */
	struct digest_map seen_dirs;  /* visited by the walk */
	struct b3_digest *queue;      /* Directories still to visit */
	size_t qlen, qcap;
	uint8_t (*paths)[STORE_PATH_DIGEST_LEN];
	size_t npaths, cap_paths;
	struct digest_map path_set;    /* every listed path (digest zero padded) */
	struct digest_map reach_blobs; /* blobs the registered paths reach */
	bool reaching;		       /* the walk is still below the paths' roots */
	struct digest_map damage;      /* Directory -> DAMAGE_* of its closure */
};

/* Memo values of `damage`: what a Directory's closure holds. The found
 * object's digest is kept in `damaged_at` for the message. */
#define CLEAN	((void *)1)
#define DAMAGED ((void *)2)

static void report(struct verifier *v, enum verify_kind kind, bool problem, const char *subject,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(struct verifier *v, enum verify_kind kind, bool problem, const char *subject,
		   const char *fmt, ...)
{
	char why[1024];
	struct verify_finding f = {kind, subject, why, problem};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (problem)
		v->res->problems++;
	if (v->opt->report)
		v->opt->report(v->opt->report_ctx, &f);
}

static void progress(struct verifier *v)
{
	struct verify_result *r = v->res;

	if (v->opt->progress)
		v->opt->progress(v->opt->progress_ctx, r->blobs + r->dirs + r->paths,
				 r->blob_bytes);
}

static int set_add(struct digest_map *m, const struct b3_digest *digest)
{
	return digest_map_put(m, digest, PRESENT, NULL);
}

static int good_add(struct verifier *v, const struct b3_digest *digest, uint64_t size)
{
	v->res->blobs++;
	v->res->blob_bytes += size;
	progress(v);
	return digest_map_put(&v->good_blobs, digest, (void *)(uintptr_t)(size + 1), NULL);
}

/* --- blobs --- */

static int scrub_one(void *ctx, const struct b3_digest *digest)
{
	struct verifier *v = ctx;
	char text[B3_TEXT_LEN + 1];
	uint64_t size;
	int rc = store_blob_check(v->st, digest, &size);

	if (rc == -ENOENT) /* removed meanwhile: the walk finds out if it matters */
		return 0;
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		b3_digest_to_text(digest, text);
		report(v, VERIFY_BLOB, true, text, "%s", sf_errmsg(rc));
		sf_err_clear();
		return set_add(&v->res->bad_blobs, digest);
	}
	return good_add(v, digest, size);
}

static int quarantined_one(void *ctx, const struct b3_digest *digest, const char *path)
{
	struct verifier *v = ctx;
	char text[B3_TEXT_LEN + 1];

	b3_digest_to_text(digest, text);
	v->res->quarantined++;
	if (digest_map_get(&v->good_blobs, digest)) {
		report(v, VERIFY_QUARANTINED, false, text,
		       "a damaged copy is quarantined at '%s' (the blob is good again)", path);
		return 0;
	}
	report(v, VERIFY_QUARANTINED, true, text, "quarantined at '%s' and missing from the store",
	       path);
	return set_add(&v->res->bad_blobs, digest);
}

/* Reads a blob in full through the blob service (stores without listings). */
static int blob_read_check(struct verifier *v, const struct b3_digest *digest, uint64_t *size)
{
	struct blob_reader *r;
	uint8_t *buf = malloc(READ_CHUNK);
	struct b3_hasher h;
	struct b3_digest got;
	uint64_t off = 0;
	size_t n = 1;
	int rc = buf ? blob_service_open_read(v->st->blobs, digest, &r) : -ENOMEM;

	if (rc < 0) {
		free(buf);
		return rc;
	}
	b3_hasher_init(&h);
	while (rc == 0 && n > 0) {
		rc = blob_reader_pread(r, buf, READ_CHUNK, off, &n);
		b3_hasher_update(&h, buf, rc == 0 ? n : 0);
		off += rc == 0 ? n : 0;
	}
	blob_reader_close(r);
	free(buf);
	b3_hasher_final(&h, &got);
	if (rc == 0 && !b3_digest_eq(&got, digest))
		rc = sf_err(-EIO, "its content does not match the digest");
	*size = off;
	return rc;
}

/* Checks the blob a file node refers to; `where` names the referrer. */
static int blob_ref_check(struct verifier *v, const struct node *n, const char *where)
{
	char text[B3_TEXT_LEN + 1];
	void *good = digest_map_get(&v->good_blobs, &n->digest);
	uint64_t size = 0;
	int rc = 0;

	if (digest_map_get(&v->res->bad_blobs, &n->digest))
		return 0; /* reported already */
	b3_digest_to_text(&n->digest, text);
	if (!good) {
		/* Not scrubbed, or stored after the scrub listed the blobs. */
		rc = v->scrubbed ? store_blob_check(v->st, &n->digest, &size)
				 : blob_read_check(v, &n->digest, &size);
		if (rc == 0)
			return good_add(v, &n->digest, size) < 0 ? -ENOMEM
								 : blob_ref_check(v, n, where);
		if (rc == -ENOMEM)
			return rc;
	}
	if (good && (uint64_t)(uintptr_t)good - 1 == n->size)
		return 0;
	/* Below no path: garbage that a failed write took its blobs back
	 * from (docs/trust.md "Orphans"); nothing needs it whole. */
	if (!good && (rc == 0 || rc == -ENOENT) && !v->reaching) {
		sf_err_clear();
		return 0;
	}
	if (good)
		report(v, VERIFY_BLOB, true, text, "has %llu bytes, %s says %llu",
		       (unsigned long long)((uintptr_t)good - 1), where,
		       (unsigned long long)n->size);
	else if (rc == 0 || rc == -ENOENT)
		report(v, VERIFY_BLOB, true, text, "missing (referenced by %s)", where);
	else
		report(v, VERIFY_BLOB, true, text, "%s (referenced by %s)", sf_errmsg(rc), where);
	sf_err_clear();
	return set_add(&v->res->bad_blobs, &n->digest);
}

/* --- Directories --- */

static int enqueue(void *ctx, const struct b3_digest *digest)
{
	struct verifier *v = ctx;

	if (v->qlen == v->qcap) {
		size_t cap = v->qcap ? 2 * v->qcap : 256;
		struct b3_digest *q = reallocarray(v->queue, cap, sizeof(*q));

		if (!q)
			return -ENOMEM;
		v->queue = q, v->qcap = cap;
	}
	v->queue[v->qlen++] = *digest;
	return 0;
}

static int dir_children(struct verifier *v, const char *text, const struct directory *d)
{
	char where[B3_TEXT_LEN + 64 + CASTORE_MAX_NAME_LEN];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < d->count; i++) {
		const struct node *n = &d->nodes[i];

		if (n->kind == NODE_DIRECTORY) {
			rc = enqueue(v, &n->digest);
		} else if (n->kind == NODE_FILE) {
			snprintf(where, sizeof(where), "directory '%s' entry '%.*s'", text,
				 (int)n->name_len, n->name);
			rc = blob_ref_check(v, n, where);
			if (rc == 0 && v->reaching)
				rc = set_add(&v->reach_blobs, &n->digest);
		}
	}
	return rc;
}

static int dir_visit(struct verifier *v, const struct b3_digest *dg)
{
	char text[B3_TEXT_LEN + 1];
	struct directory *d;
	int rc;

	if (digest_map_get(&v->seen_dirs, dg))
		return 0;
	rc = set_add(&v->seen_dirs, dg);
	if (rc < 0)
		return rc;
	b3_digest_to_text(dg, text);
	rc = dir_service_get(v->st->dirs, dg, &d);
	if (rc == -ENOMEM)
		return rc;
	if (rc == -ENOENT && !v->reaching)
		return 0; /* below no path, as for blobs above */
	if (rc < 0) {
		report(v, VERIFY_DIRECTORY, true, text, "%s",
		       rc == -ENOENT ? "missing (referenced by a directory or path)"
				     : sf_errmsg(rc));
		sf_err_clear();
		return set_add(&v->res->bad_dirs, dg);
	}
	v->res->dirs++;
	progress(v);
	rc = v->reaching ? 0 : set_add(&v->res->unref_dir_set, dg);
	v->res->unref_dirs += v->reaching ? 0 : 1;
	if (rc == 0)
		rc = dir_children(v, text, d);
	directory_free(d);
	return rc;
}

static int walk(struct verifier *v)
{
	int rc = 0;

	/* LIFO: depth first, so the queue stays as short as the tree is deep
	 * times its fan-out, not as long as the store is wide. */
	while (rc == 0 && v->qlen > 0) {
		struct b3_digest digest = v->queue[--v->qlen];

		rc = dir_visit(v, &digest);
	}
	return rc;
}

/* --- PathInfos --- */

static struct b3_digest path_key(const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct b3_digest k = {{0}};

	memcpy(k.bytes, digest, STORE_PATH_DIGEST_LEN);
	return k;
}

static int path_listed(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct verifier *v = ctx;
	struct b3_digest key = path_key(pi->path.digest);
	int rc = set_add(&v->path_set, &key);

	if (rc == 0 && pi->root.kind == NODE_FILE)
		rc = set_add(&v->reach_blobs, &pi->root.digest);
	if (rc < 0)
		return rc;

	if (v->npaths == v->cap_paths) {
		size_t cap = v->cap_paths ? 2 * v->cap_paths : 64;
		void *p = reallocarray(v->paths, cap, sizeof(*v->paths));

		if (!p)
			return -ENOMEM;
		v->paths = p, v->cap_paths = cap;
	}
	memcpy(v->paths[v->npaths++], pi->path.digest, STORE_PATH_DIGEST_LEN);
	return pi->root.kind == NODE_DIRECTORY ? enqueue(v, &pi->root.digest) : 0;
}

/* Every reference other than the path itself is registered: a reference
 * is registered before its referrer, so the listing holds it. A missing
 * one is a note, not a problem: a store a substituter fills lazily holds
 * paths without their references (docs/trust.md). */
static void path_refs_check(struct verifier *v, const struct path_info *pi, const char *full)
{
	char base[STORE_PATH_MAX_BASENAME + 1];

	for (size_t i = 0; i < pi->n_refs; i++) {
		struct b3_digest key = path_key(pi->refs[i].digest);

		if (store_path_cmp(&pi->refs[i], &pi->path) == 0 ||
		    digest_map_get(&v->path_set, &key))
			continue;
		store_path_basename(&pi->refs[i], base);
		report(v, VERIFY_PATH, false, full, "its reference '%s' is not in the store", base);
	}
}

/* 1 if the closure of Directory `dg` holds a missing or damaged object
 * (found by the walk), its digest in `at`; 0 if not. Each Directory is
 * read once more at most (memoised), and only when the walk found damage. */
static int closure_damaged(struct verifier *v, const struct b3_digest *dg, int depth,
			   struct b3_digest *at)
{
	void *memo = digest_map_get(&v->damage, dg);
	struct directory *d;
	int rc = 0;

	if (memo)
		return memo == DAMAGED ? (*at = *dg, 1) : 0;
	if (digest_map_get(&v->res->bad_dirs, dg) || depth > NAR_MAX_DEPTH ||
	    dir_service_get(v->st->dirs, dg, &d) < 0) {
		sf_err_clear();
		*at = *dg;
		return digest_map_put(&v->damage, dg, DAMAGED, NULL) < 0 ? -ENOMEM : 1;
	}
	for (size_t i = 0; rc == 0 && i < d->count; i++) {
		const struct node *n = &d->nodes[i];

		if (n->kind == NODE_FILE && digest_map_get(&v->res->bad_blobs, &n->digest))
			rc = (*at = n->digest, 1);
		else if (n->kind == NODE_DIRECTORY)
			rc = closure_damaged(v, &n->digest, depth + 1, at);
	}
	directory_free(d);
	if (rc >= 0 && digest_map_put(&v->damage, dg, rc ? DAMAGED : CLEAN, NULL) < 0)
		rc = -ENOMEM;
	return rc;
}

/* Names a path whose contents the walk found missing or damaged: 1 then
 * (reported), else 0. */
static int path_damage_check(struct verifier *v, const struct path_info *pi, const char *full)
{
	char text[B3_TEXT_LEN + 1];
	struct b3_digest at;
	int rc = 0;

	if (!v->res->bad_blobs.count && !v->res->bad_dirs.count)
		return 0;
	if (pi->root.kind == NODE_FILE && digest_map_get(&v->res->bad_blobs, &pi->root.digest))
		rc = (at = pi->root.digest, 1);
	else if (pi->root.kind == NODE_DIRECTORY)
		rc = closure_damaged(v, &pi->root.digest, 0, &at);
	if (rc <= 0)
		return rc;
	b3_digest_to_text(&at, text);
	report(v, VERIFY_PATH, true, full, "its contents are damaged or incomplete ('%s')", text);
	return 1;
}

/* What the path claims: its CA fits its store path and its content. */
static int path_ca_check(struct verifier *v, const struct path_info *pi, const char *full)
{
	char text[B3_TEXT_LEN + 1];
	int rc = ca_verify(v->st->blobs, v->st->dirs, pi);

	if (rc == 0 || rc == -ENOMEM)
		return rc;
	b3_digest_to_text(&pi->root.digest, text);
	if (pi->root.kind == NODE_FILE)
		report(v, VERIFY_PATH, true, full, "%s (its root is blob %s)", sf_errmsg(rc), text);
	else
		report(v, VERIFY_PATH, true, full, "%s", sf_errmsg(rc));
	sf_err_clear();
	return 0;
}

static int path_check(struct verifier *v, const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX], a[70], b[70];
	struct nar_summary sum;
	int rc = 0;

	store_path_full(&pi->path, full);
	v->res->paths++;
	progress(v);
	if (pi->root.kind == NODE_FILE)
		rc = blob_ref_check(v, &pi->root, "the path's root");
	if (rc == 0)
		rc = path_damage_check(v, pi, full);
	/* Damaged contents cannot be checked against the CA or rendered. */
	if (rc == 0)
		rc = path_ca_check(v, pi, full);
	if (rc < 0)
		return rc;
	path_refs_check(v, pi, full);
	if (!v->opt->check_contents || rc > 0)
		return 0;
	rc = nar_render(v->st->blobs, v->st->dirs, &pi->root, NULL, NULL, &sum);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		report(v, VERIFY_PATH, true, full, "cannot render its NAR: %s", sf_errmsg(rc));
		sf_err_clear();
		return 0;
	}
	if (sum.size != pi->nar_size || memcmp(sum.sha256, pi->nar_sha256, 32)) {
		for (int i = 0; i < 32; i++) {
			snprintf(a + 2 * i, 3, "%02x", pi->nar_sha256[i]);
			snprintf(b + 2 * i, 3, "%02x", sum.sha256[i]);
		}
		report(v, VERIFY_PATH, true, full,
		       "NAR hash/size mismatch: recorded sha256 %s size %llu, rendered sha256 %s "
		       "size %llu",
		       a, (unsigned long long)pi->nar_size, b, (unsigned long long)sum.size);
	}
	return 0;
}

static int paths_check(struct verifier *v)
{
	char hash[STORE_PATH_HASH_CHARS + 1];
	struct path_info *pi;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < v->npaths; i++) {
		rc = path_info_service_get(v->st->paths, v->paths[i], &pi);
		if (rc == -ENOMEM)
			return rc;
		if (rc == -ENOENT) { /* removed meanwhile */
			rc = 0;
			continue;
		}
		if (rc < 0) {
			store_path_hash_part(v->paths[i], hash);
			report(v, VERIFY_PATH, true, hash, "%s", sf_errmsg(rc));
			sf_err_clear();
			rc = 0;
			continue;
		}
		rc = path_check(v, pi);
		path_info_free(pi);
	}
	return rc;
}

/* --- the run --- */

/* A store without a listing (-ENOTSUP) is checked through its PathInfos. */
static int verify_listings(struct verifier *v)
{
	int rc = store_blobs_each(v->st, scrub_one, v);

	v->scrubbed = rc == 0;
	if (rc == -ENOTSUP)
		rc = 0;
	if (rc == 0)
		rc = store_quarantine_each(v->st, quarantined_one, v);
	if (rc == -ENOTSUP)
		rc = 0;
	if (rc == 0)
		rc = path_info_service_list(v->st->paths, 0, path_listed, v);
	if (rc < 0 && rc != -ENOMEM) {
		/* A damaged listing is a finding; the rest is still checked. */
		report(v, VERIFY_PATH, true, "(listing)", "%s", sf_errmsg(rc));
		sf_err_clear();
		rc = 0;
	}
	return rc;
}

/* Blobs the scrub found that no path reached. */
static void count_unreferenced(struct verifier *v)
{
	digest_map_foreach(&v->good_blobs, s)
	{
		if (digest_map_get(&v->reach_blobs, &s->key) ||
		    digest_map_put(&v->res->unref_blob_set, &s->key, s->value, NULL) < 0)
			continue;
		v->res->unref_blobs++;
		v->res->unref_blob_bytes += (uint64_t)(uintptr_t)s->value - 1;
	}
}

/* First what the paths reach, then every other stored Directory. */
static int walk_all(struct verifier *v)
{
	int rc;

	v->reaching = true;
	rc = walk(v);
	v->reaching = false;
	if (rc == 0)
		rc = store_dirs_each(v->st, enqueue, v);
	if (rc == -ENOTSUP)
		return 0;
	if (rc == 0)
		rc = walk(v);
	if (rc == 0 && v->scrubbed)
		count_unreferenced(v);
	return rc;
}

int store_verify(struct store *st, const struct verify_options *opt, struct verify_result *res)
{
	struct verifier v = {.st = st, .opt = opt, .res = res};
	int rc;

	memset(res, 0, sizeof(*res));
	digest_map_init(&res->bad_blobs);
	digest_map_init(&res->bad_dirs);
	digest_map_init(&res->unref_blob_set);
	digest_map_init(&res->unref_dir_set);
	digest_map_init(&v.good_blobs);
	digest_map_init(&v.seen_dirs);
	digest_map_init(&v.path_set);
	digest_map_init(&v.reach_blobs);
	digest_map_init(&v.damage);
	if (path_info_service_last_cursor(st->paths, &res->since) < 0) {
		sf_err_clear();
		res->since = 0;
	}
	rc = verify_listings(&v);
	if (rc == 0)
		rc = walk_all(&v);
	if (rc == 0)
		rc = paths_check(&v);
	digest_map_release(&v.good_blobs);
	digest_map_release(&v.seen_dirs);
	digest_map_release(&v.path_set);
	digest_map_release(&v.reach_blobs);
	digest_map_release(&v.damage);
	free(v.queue);
	free(v.paths);
	return rc;
}

void verify_result_release(struct verify_result *res)
{
	digest_map_release(&res->bad_blobs);
	digest_map_release(&res->bad_dirs);
	digest_map_release(&res->unref_blob_set);
	digest_map_release(&res->unref_dir_set);
	digest_map_init(&res->bad_blobs);
	digest_map_init(&res->bad_dirs);
	digest_map_init(&res->unref_blob_set);
	digest_map_init(&res->unref_dir_set);
}

/* --- repair --- */

struct repairer {
	struct store *st, *from;
	const struct verify_options *opt;
	struct digest_map done; /* blobs fetched */
	uint64_t repaired;
};

static void repair_failed(struct repairer *r, enum verify_kind kind, const struct b3_digest *digest,
			  int rc)
{
	char text[B3_TEXT_LEN + 1];
	struct verify_finding f = {kind, text, NULL, true};
	char why[1024];

	b3_digest_to_text(digest, text);
	snprintf(why, sizeof(why), "cannot repair: %s",
		 rc == -ENOENT ? "not in the other store either" : sf_errmsg(rc));
	f.why = why;
	sf_err_clear();
	if (r->opt->report)
		r->opt->report(r->opt->report_ctx, &f);
}

static int copy_blob(struct blob_reader *in, struct blob_writer *w, const struct b3_digest *digest)
{
	uint8_t *buf = malloc(READ_CHUNK);
	uint64_t off = 0;
	size_t n = 1;
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0 && n > 0) {
		rc = blob_reader_pread(in, buf, READ_CHUNK, off, &n);
		if (rc == 0 && n)
			rc = blob_writer_write(w, buf, n);
		off += n;
	}
	free(buf);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	/* The fetched bytes must hash to the digest, or nothing is stored. */
	return blob_writer_commit(w, digest, NULL);
}

static int fetch_blob(struct repairer *r, const struct b3_digest *digest)
{
	struct blob_reader *in;
	struct blob_writer *w;
	int rc;

	if (digest_map_get(&r->done, digest))
		return 0;
	rc = blob_service_open_read(r->from->blobs, digest, &in);
	if (rc < 0)
		return rc;
	rc = blob_service_open_write(r->st->blobs, &w);
	if (rc == 0)
		rc = copy_blob(in, w, digest);
	blob_reader_close(in);
	if (rc == 0) {
		r->repaired++;
		rc = set_add(&r->done, digest);
	}
	return rc;
}

/* A file child needs fetching if it is absent or of the wrong size here. */
static int child_blob(struct repairer *r, const struct node *n)
{
	uint64_t size;
	int rc = blob_service_stat(r->st->blobs, &n->digest, &size);

	if (rc == 0 && size == n->size)
		return 0;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return fetch_blob(r, &n->digest);
}

static int fetch_dir(struct repairer *r, const struct b3_digest *dg, int depth)
{
	struct directory *d, *have;
	struct b3_digest stored;
	int rc;

	if (depth > NAR_MAX_DEPTH)
		return sf_err(-ELOOP, "directory closure is nested too deep");
	rc = dir_service_get(r->from->dirs, dg, &d);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < d->count; i++) {
		const struct node *n = &d->nodes[i];

		if (n->kind == NODE_FILE) {
			rc = child_blob(r, n);
		} else if (n->kind == NODE_DIRECTORY) {
			rc = dir_service_get(r->st->dirs, &n->digest, &have);
			if (rc == 0)
				directory_free(have);
			else if (rc != -ENOMEM)
				rc = fetch_dir(r, &n->digest, depth + 1);
		}
	}
	/* Blobs are durable before a Directory refers to them. */
	if (rc == 0)
		rc = blob_service_flush(r->st->blobs);
	if (rc == 0)
		rc = dir_service_put(r->st->dirs, d, &stored);
	if (rc == 0 && !b3_digest_eq(&stored, dg))
		rc = sf_err(-EIO, "the other store's directory does not match its digest");
	if (rc == 0)
		r->repaired++;
	directory_free(d);
	return rc;
}

int store_verify_repair(struct store *st, struct store *from, const struct verify_result *res,
			const struct verify_options *opt, uint64_t *repaired)
{
	struct repairer r = {.st = st, .from = from, .opt = opt};
	int rc = 0;

	digest_map_init(&r.done);
	digest_map_foreach(&res->bad_blobs, s)
	{
		rc = fetch_blob(&r, &s->key);
		if (rc == -ENOMEM)
			break;
		if (rc < 0)
			repair_failed(&r, VERIFY_BLOB, &s->key, rc);
		rc = 0;
	}
	if (rc == 0)
		rc = blob_service_flush(st->blobs);
	digest_map_foreach(&res->bad_dirs, s)
	{
		if (rc == -ENOMEM)
			break;
		rc = fetch_dir(&r, &s->key, 0);
		if (rc < 0 && rc != -ENOMEM)
			repair_failed(&r, VERIFY_DIRECTORY, &s->key, rc);
		if (rc != -ENOMEM)
			rc = 0;
	}
	digest_map_release(&r.done);
	*repaired = r.repaired;
	return rc;
}

/* --- removing what no path reaches --- */

struct sweep {
	struct store *st;
	struct digest_map keep_dirs, keep_blobs;
};

static int sweep_keep_dir(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct sweep *sw = ctx;
	int rc = set_add(&sw->keep_dirs, digest);

	for (size_t i = 0; rc == 0 && i < d->count; i++)
		if (d->nodes[i].kind == NODE_FILE)
			rc = set_add(&sw->keep_blobs, &d->nodes[i].digest);
	return rc;
}

/* A path registered after the run listed the store may use objects the
 * run found unreferenced. */
static int sweep_keep_path(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct sweep *sw = ctx;

	if (pi->root.kind == NODE_FILE)
		return set_add(&sw->keep_blobs, &pi->root.digest);
	if (pi->root.kind != NODE_DIRECTORY)
		return 0;
	return dir_service_get_recursive(sw->st->dirs, &pi->root.digest, sweep_keep_dir, sw);
}

static int sweep_dirs(struct sweep *sw, const struct verify_result *res, uint64_t *n)
{
	struct b3_digest *v = malloc((res->unref_dir_set.count + 1) * sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	*n = 0;
	digest_map_foreach(&res->unref_dir_set, s)
	{
		if (!digest_map_get(&sw->keep_dirs, &s->key))
			v[(*n)++] = s->key;
	}
	rc = *n ? store_dirs_delete(sw->st, v, *n) : 0;
	free(v);
	return rc;
}

static int sweep_blobs(struct sweep *sw, const struct verify_result *res, struct verify_removed *o)
{
	const struct timespec any = {.tv_sec = INT64_MAX};
	uint64_t freed;
	int rc = 0;

	digest_map_foreach(&res->unref_blob_set, s)
	{
		if (digest_map_get(&sw->keep_blobs, &s->key))
			continue;
		rc = store_blob_delete(sw->st, &s->key, &any, &freed);
		if (rc < 0)
			break;
		o->blobs += rc > 0;
		o->blob_bytes += freed;
	}
	return rc < 0 ? rc : 0;
}

int store_verify_remove_unreferenced(struct store *st, const struct verify_result *res,
				     struct verify_removed *out)
{
	struct sweep sw = {.st = st};
	int token[2], rc;

	*out = (struct verify_removed){0};
	if (!res->unref_blob_set.count && !res->unref_dir_set.count)
		return 0;
	/* Services elsewhere (a composite, gRPC, S3) cannot be held still and
	 * may be shared: their orphans stay (docs/services.md "Orphans"). */
	if (!st->exclusive_enter || !st->blob_delete)
		return sf_err(-ENOTSUP,
			      "store '%s' cannot take back unreferenced objects: its services may "
			      "be shared with other stores (docs/services.md \"Orphans\")",
			      st->location);
	rc = store_exclusive_enter(st, STORE_WAIT_FOREVER, token);
	if (rc < 0)
		return rc;
	digest_map_init(&sw.keep_dirs);
	digest_map_init(&sw.keep_blobs);
	rc = path_info_service_list(st->paths, res->since, sweep_keep_path, &sw);
	if (rc == 0)
		rc = sweep_dirs(&sw, res, &out->dirs);
	if (rc == 0)
		rc = sweep_blobs(&sw, res, out);
	store_exclusive_leave(st, token);
	digest_map_release(&sw.keep_dirs);
	digest_map_release(&sw.keep_blobs);
	return rc;
}
