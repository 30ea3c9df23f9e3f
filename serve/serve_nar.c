/* serve_nar.c - NAR bodies of `storefs serve`: the closure check done
 * before a 200 is promised, rendering for GET (a producer thread feeding
 * MHD's pull callback through a pipe) and ingesting PUT bodies (MHD's push
 * calls feeding the strict ingester's pull reads, the other way round). */
#include "serve/serve.h"

#include "common/err.h"
#include "common/io.h"
#include "common/log.h"
#include "store/nix_hash.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- closure check --- */

static int check_blob(struct store *st, const struct node *n)
{
	char text[B3_TEXT_LEN + 1];
	uint64_t size;
	int rc = blob_service_stat(st->blobs, &n->digest, &size);

	if (rc == 0 && size == n->size)
		return 0;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	b3_digest_to_text(&n->digest, text);
	if (rc == -ENOENT)
		return sf_err(-EIO, "blob '%s' is missing from the store", text);
	return sf_err(-EIO, "blob '%s' has %llu bytes, not %llu", text, (unsigned long long)size,
		      (unsigned long long)n->size);
}

static int check_dir_cb(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	for (size_t i = 0; i < d->count; i++) {
		int rc = d->nodes[i].kind == NODE_FILE ? check_blob(ctx, &d->nodes[i]) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

int serve_check_closure(struct store *st, const struct node *root)
{
	char text[B3_TEXT_LEN + 1];
	int rc;

	if (root->kind == NODE_FILE)
		return check_blob(st, root);
	if (root->kind != NODE_DIRECTORY)
		return 0;
	rc = dir_service_get_recursive(st->dirs, &root->digest, check_dir_cb, st);
	if (rc != -ENOENT)
		return rc;
	b3_digest_to_text(&root->digest, text);
	return sf_err(-EIO, "directory '%s' is missing from the store", text);
}

/* --- GET: rendering into a pipe --- */

struct serve_nar_stream {
	struct server *s;
	struct path_info *pi;
	uint64_t start, len; /* the byte range to send */
	uint64_t at;	     /* rendered NAR bytes so far (render thread) */
	int rfd, wfd;
	bool started;
	pthread_t thread;
};

/* Sent everything asked for: rendering stops early with this code. */
#define STREAM_DONE (-ECANCELED)

/* nar_write_fn: passes on the part of the NAR inside the range. */
static int stream_write(void *ctx, const void *buf, size_t len)
{
	struct serve_nar_stream *ns = ctx;
	uint64_t end = ns->start + ns->len, from = ns->at, to = ns->at + len;
	int rc = 0;

	ns->at = to;
	if (from < ns->start)
		from = ns->start;
	if (to > end)
		to = end;
	if (from < to)
		rc = write_all(ns->wfd, (const uint8_t *)buf + (from - (ns->at - len)),
			       (size_t)(to - from));
	if (rc == 0 && ns->at >= end)
		rc = STREAM_DONE;
	return rc;
}

static void *stream_thread(void *arg)
{
	struct serve_nar_stream *ns = arg;
	char full[STORE_PATH_FULL_MAX];
	int rc =
	    nar_render(ns->s->st->blobs, ns->s->st->dirs, &ns->pi->root, stream_write, ns, NULL);

	if (rc < 0 && rc != STREAM_DONE && rc != -EPIPE) {
		store_path_full(&ns->pi->path, full);
		log_error("cannot render the NAR of '%s': %s", full, sf_errmsg(rc));
	}
	close(ns->wfd);
	ns->wfd = -1;
	return NULL;
}

/* A transfer slot (SERVE_MAX_TRANSFERS), or -EBUSY. */
static int transfer_take(struct server *s)
{
	if (atomic_fetch_add(&s->transfers, 1) < SERVE_MAX_TRANSFERS)
		return 0;
	atomic_fetch_sub(&s->transfers, 1);
	return -EBUSY;
}

static void transfer_give(struct server *s)
{
	atomic_fetch_sub(&s->transfers, 1);
}

int serve_nar_stream_new(struct server *s, struct path_info *pi, uint64_t start, uint64_t len,
			 struct serve_nar_stream **out)
{
	struct serve_nar_stream *ns;
	int rc = transfer_take(s);

	ns = rc == 0 ? calloc(1, sizeof(*ns)) : NULL;
	if (!ns) {
		if (rc == 0)
			transfer_give(s);
		path_info_free(pi);
		return rc ? rc : -ENOMEM;
	}
	*ns = (struct serve_nar_stream){
	    .s = s, .pi = pi, .start = start, .len = len, .rfd = -1, .wfd = -1};
	*out = ns;
	return 0;
}

static int stream_begin(struct serve_nar_stream *ns)
{
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	ns->rfd = p[0];
	ns->wfd = p[1];
	rc = pthread_create(&ns->thread, NULL, stream_thread, ns);
	if (rc != 0) {
		close(p[1]);
		ns->wfd = -1;
		return -rc;
	}
	ns->started = true;
	return 0;
}

ssize_t serve_nar_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct serve_nar_stream *ns = cls;
	ssize_t n;

	if (pos >= ns->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (!ns->started && stream_begin(ns) < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = read_retry(ns->rfd, buf, max);
	/* Ending early aborts the connection: the client sees an error, not a
	 * short body it could take for the whole NAR. */
	return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

void serve_nar_stream_free(void *cls)
{
	struct serve_nar_stream *ns = cls;

	if (ns->rfd >= 0)
		close(ns->rfd); /* a blocked renderer gets EPIPE */
	if (ns->started)
		pthread_join(ns->thread, NULL);
	transfer_give(ns->s);
	path_info_free(ns->pi);
	free(ns);
}

/* --- PUT: ingesting from a pipe --- */

struct serve_nar_upload {
	struct server *s;
	struct serve_upload file; /* as announced: URL hash, compression, size */
	int rfd, wfd;
	pthread_t thread;
	int rc;
	char msg[256];
	struct nar_loaded loaded;
	/* The worker's reading: the file's bytes are hashed and counted, then
	 * decompressed, and the NAR's bytes counted. */
	struct nix_hasher *file_hash; /* compressed files only */
	uint64_t file_bytes, nar_bytes;
	struct nar_decomp *dc;
	/* What the upload wrote, kept until its narinfo comes (docs/trust.md
	 * "Orphans"); a failed upload takes it back at once. */
	struct store_write *session;
	struct store_orphans orphans;
	char file_text[NAR_HASH_TEXT_LEN];
};

/* A nar_read_fn over the pipe: the uploaded file's bytes. */
static int file_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct serve_nar_upload *u = ctx;
	ssize_t got = read_retry(u->rfd, buf, len);

	if (got < 0)
		return sf_err_sys((int)-got, "cannot read the upload");
	*n = (size_t)got;
	u->file_bytes += *n;
	return u->file_hash ? nix_hasher_update(u->file_hash, buf, *n) : 0;
}

/* A nar_read_fn over the decompressor, refusing NARs over --max-upload. */
static int nar_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct serve_nar_upload *u = ctx;
	int rc = nar_decomp_read(u->dc, buf, len, n);

	if (rc < 0)
		return rc;
	u->nar_bytes += *n;
	if (u->nar_bytes > u->s->max_upload)
		return sf_err(-EFBIG, "the NAR is larger than --max-upload (%llu bytes)",
			      (unsigned long long)u->s->max_upload);
	return 0;
}

/* The file's hash must be the one its URL names. */
static int file_hash_check(struct serve_nar_upload *u)
{
	char want[NAR_HASH_TEXT_LEN], got[NAR_HASH_TEXT_LEN];
	uint8_t h[32], rest;
	size_t n = 0;
	int rc = file_read(u, &rest, 1, &n);

	if (rc == 0 && n)
		rc = sf_err(-EIO, "data follows the %s data", nar_compression_name(u->file.comp));
	if (rc == 0)
		rc = nix_hasher_final(u->file_hash, h);
	if (rc < 0 || !memcmp(h, u->file.file_sha256, 32))
		return rc;
	nar_hash_text(h, got);
	nar_hash_text(u->file.file_sha256, want);
	return sf_err(-EIO, "file hash mismatch: the URL names %s, the body is %s", want, got);
}

static int upload_ingest(struct serve_nar_upload *u)
{
	struct nar_summary expect = {.size = u->file.file_size};
	struct nar_limits lim = {.max_dirs = u->s->max_dirs};
	bool plain = u->file.comp == NAR_COMP_NONE;
	int rc = plain ? 0 : nix_hasher_new(NIX_HASH_SHA256, &u->file_hash);

	/* An uncompressed NAR is its own file: checked while it streams. */
	memcpy(expect.sha256, u->file.file_sha256, 32);
	if (rc == 0)
		rc = nar_decomp_new(u->file.comp, file_read, u, &u->dc);
	if (rc == 0)
		rc = store_write_begin(u->s->st, &u->session);
	if (rc == 0)
		rc = nar_load_read(u->s->st, u->session, nar_read, u, plain ? &expect : NULL, &lim,
				   &u->loaded);
	if (rc == 0 && !plain)
		rc = file_hash_check(u);
	nar_decomp_free(u->dc);
	nix_hasher_free(u->file_hash);
	return rc;
}

static void *upload_thread(void *arg)
{
	struct serve_nar_upload *u = arg;

	char what[80];

	u->rc = upload_ingest(u);
	if (u->rc < 0)
		snprintf(u->msg, sizeof(u->msg), "%s", sf_errmsg(u->rc));
	/* Later pushes fail with EPIPE instead of blocking. */
	close(u->rfd);
	u->rfd = -1;
	snprintf(what, sizeof(what), "upload of NAR file %s", u->file_text);
	if (u->session && u->rc == 0)
		store_write_detach(u->session, &u->orphans);
	else if (u->session)
		store_write_finish(u->session, u->rc, what);
	u->session = NULL;
	return NULL;
}

int serve_nar_upload_start(struct server *s, const struct serve_upload *f,
			   struct serve_nar_upload **out)
{
	struct serve_nar_upload *u;
	int p[2], rc = transfer_take(s);

	if (rc < 0)
		return rc;
	u = calloc(1, sizeof(*u));
	if (!u) {
		transfer_give(s);
		return -ENOMEM;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = -errno;
		transfer_give(s);
		free(u);
		return rc;
	}
	u->s = s;
	u->file = *f;
	nar_hash_text(f->file_sha256, u->file_text);
	u->rfd = p[0];
	u->wfd = p[1];
	rc = -pthread_create(&u->thread, NULL, upload_thread, u);
	if (rc < 0) {
		close(p[0]);
		close(p[1]);
		transfer_give(s);
		free(u);
		return rc;
	}
	*out = u;
	return 0;
}

void serve_nar_upload_push(struct serve_nar_upload *u, const char *data, size_t len)
{
	if (u->wfd >= 0 && write_all(u->wfd, (const uint8_t *)data, len) < 0) {
		close(u->wfd);
		u->wfd = -1;
	}
}

int serve_nar_upload_finish(struct serve_nar_upload *u, struct nar_loaded *out,
			    struct store_orphans *orphans, char *msg, size_t msglen)
{
	int rc;

	if (u->wfd >= 0)
		close(u->wfd);
	pthread_join(u->thread, NULL);
	rc = u->rc;
	if (rc == 0 && out) {
		*out = u->loaded;
		/* The root's target pointed into u->loaded. */
		if (out->root.kind == NODE_SYMLINK)
			out->root.target = out->target;
	}
	if (rc == 0 && orphans)
		*orphans = u->orphans;
	else
		serve_reclaim(u->s, &u->orphans);
	if (rc < 0 && msg)
		snprintf(msg, msglen, "%s", u->msg);
	transfer_give(u->s);
	free(u);
	return rc;
}

void serve_nar_upload_abort(struct serve_nar_upload *u)
{
	/* EOF before the expected size: the ingester fails, nothing is kept. */
	serve_nar_upload_finish(u, NULL, NULL, NULL, 0);
}

void serve_reclaim(struct server *s, struct store_orphans *o)
{
	uint64_t removed = 0;
	int rc = o->n || o->n_dirs ? store_reclaim(s->st, o, STORE_RECLAIM_WAIT_MS, &removed) : 0;

	if (rc < 0 && rc != -ENOTSUP)
		log_warn("an upload that was never registered left %zu blobs and %zu directories "
			 "(%s); `storefs verify --repair` or `storefs gc` removes them",
			 o->n, o->n_dirs,
			 rc == -EBUSY ? "other writers kept the store busy" : sf_errmsg(rc));
	sf_err_clear();
	store_orphans_release(o);
}
