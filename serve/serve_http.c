/* serve_http.c - request routing of `storefs serve` on libmicrohttpd:
 * nix-cache-info, narinfo and NAR downloads, NAR and narinfo uploads. */
#include "serve/serve.h"

#include "common/err.h"
#include "common/log.h"
#include "store/narinfo.h"
#include "store/nixbase32.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAR_HASH_CHARS 52 /* nix32 of 32 bytes */
#define AUTH_NEEDED                                                                                \
	"uploads need the upload token (Authorization: Bearer TOKEN, or Basic with TOKEN as "      \
	"the password)\n"
#define NAR_BLOCK (64u << 10)

enum req_kind { REQ_PLAIN, REQ_NAR_PUT, REQ_NARINFO_PUT };

/* Per-request state of an upload, kept across MHD's calls. */
struct request {
	enum req_kind kind;
	struct serve_nar_upload *up;	       /* REQ_NAR_PUT, until finished */
	struct serve_upload file;	       /* REQ_NAR_PUT: the file announced */
	uint8_t digest[STORE_PATH_DIGEST_LEN]; /* REQ_NARINFO_PUT: from the URL */
	char *body;			       /* REQ_NARINFO_PUT */
	size_t len, cap;
	bool too_big;
	bool over; /* REQ_PLAIN on a connection over a limit: 503 */
};

/* --- responses --- */

static enum MHD_Result queue(struct MHD_Connection *c, const char *method, const char *url,
			     unsigned status, struct MHD_Response *r, uint64_t len)
{
	enum MHD_Result ok;

	if (!r)
		return MHD_NO;
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	log_info("%s %s %u %" PRIu64, method, url, status, len);
	return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *c, const char *method, const char *url,
				 unsigned status, const char *type, const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

	if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return queue(c, method, url, status, r, len);
}

__attribute__((format(printf, 5, 6))) static enum MHD_Result
send_error(struct MHD_Connection *c, const char *method, const char *url, unsigned status,
	   const char *fmt, ...);

static enum MHD_Result send_error(struct MHD_Connection *c, const char *method, const char *url,
				  unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = sizeof(msg) - 2;
	msg[n++] = '\n';
	msg[n] = '\0';
	if (status >= 500)
		log_warn("%s %s: %s", method, url, msg);
	return send_text(c, method, url, status, "text/plain; charset=utf-8", msg, (size_t)n);
}

/* MHD never reads the body of a HEAD response. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A 200 to a HEAD request for a body of `size` bytes not at hand. */
static enum MHD_Result send_head(struct MHD_Connection *c, const char *method, const char *url,
				 const char *type, uint64_t size)
{
	struct MHD_Response *r = MHD_create_response_from_callback(size, 1, no_body, NULL, NULL);

	if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return queue(c, method, url, MHD_HTTP_OK, r, size);
}

/* The status for a service error `rc`. */
static unsigned status_of(int rc)
{
	return rc == -ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* --- URLs --- */

/* "/<32 nix32 chars>.narinfo" -> the store path digest. */
static bool parse_narinfo_url(const char *url, uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	return strlen(url) == 1 + STORE_PATH_HASH_CHARS + 8 && url[0] == '/' &&
	       !strcmp(url + 1 + STORE_PATH_HASH_CHARS, ".narinfo") &&
	       nixbase32_decode(url + 1, STORE_PATH_HASH_CHARS, digest, STORE_PATH_DIGEST_LEN) == 0;
}

/* "/nar/<52 nix32 chars>.nar[<ext>]" -> the NAR SHA-256 and the extension
 * after ".nar" ("" if none). */
static bool parse_nar_url(const char *url, uint8_t sha256[32], const char **ext)
{
	if (strncmp(url, "/nar/", 5) || strlen(url) < 5 + NAR_HASH_CHARS + 4 ||
	    strncmp(url + 5 + NAR_HASH_CHARS, ".nar", 4))
		return false;
	*ext = url + 5 + NAR_HASH_CHARS + 4;
	return nixbase32_decode(url + 5, NAR_HASH_CHARS, sha256, 32) == 0;
}

/* The compression a NAR file's extension names ("" for none, as Nix
 * names them: docs/narinfo.md §1); false for any other. */
static bool ext_compression(const char *ext, enum nar_compression *out)
{
	static const struct {
		const char *ext;
		enum nar_compression c;
	} known[] = {{"", NAR_COMP_NONE},
		     {".xz", NAR_COMP_XZ},
		     {".zst", NAR_COMP_ZSTD},
		     {".bz2", NAR_COMP_BZIP2}};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(ext, known[i].ext)) {
			*out = known[i].c;
			return true;
		}
	return false;
}

/* --- GET and HEAD --- */

static enum MHD_Result get_cache_info(struct server *s, struct MHD_Connection *c,
				      const char *method, const char *url)
{
	char text[128];
	int n = snprintf(text, sizeof(text), "StoreDir: %s\nWantMassQuery: 1\nPriority: %u\n",
			 STORE_DIR, s->priority);

	return send_text(c, method, url, MHD_HTTP_OK, "text/x-nix-cache-info", text, (size_t)n);
}

static int narinfo_text(struct server *s, struct path_info *pi, char **text, size_t *len)
{
	struct nix_hash fh = {.algo = NIX_HASH_SHA256};
	char nar_url[5 + NAR_HASH_CHARS + 5];
	struct narinfo *ni;
	int rc = s->has_key ? signing_sign_path_info(&s->sk, pi) : 0;

	if (rc < 0)
		return rc;
	memcpy(fh.digest, pi->nar_sha256, 32);
	memcpy(nar_url, "nar/", 4);
	nixbase32_encode(pi->nar_sha256, 32, nar_url + 4);
	strcat(nar_url, ".nar");
	rc = narinfo_from_path_info(pi, nar_url, "none", &fh, true, pi->nar_size, &ni);
	if (rc < 0)
		return rc;
	rc = narinfo_write(ni, text, len);
	narinfo_free(ni);
	return rc;
}

static enum MHD_Result get_narinfo(struct server *s, struct MHD_Connection *c, const char *method,
				   const char *url, const uint8_t digest[STORE_PATH_DIGEST_LEN])
{
	struct path_info *pi;
	enum MHD_Result ok;
	char *text;
	size_t len;
	int rc = path_info_service_get(s->st->paths, digest, &pi);

	if (rc == -ENOENT)
		return send_error(c, method, url, MHD_HTTP_NOT_FOUND, "no such path");
	if (rc == 0) {
		rc = narinfo_text(s, pi, &text, &len);
		path_info_free(pi);
	}
	if (rc < 0)
		return send_error(c, method, url, status_of(rc), "%s", sf_errmsg(rc));
	ok = send_text(c, method, url, MHD_HTTP_OK, "text/x-nix-narinfo", text, len);
	free(text);
	return ok;
}

static bool parse_u64(const char *p, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*end = p;
	*out = v;
	return true;
}

/* A single "bytes=" range of a body of `size` bytes: 1 and the range, 0 to
 * send everything (no Range, or one this server ignores: several ranges,
 * other units, malformed), -1 if it cannot be satisfied. */
static int parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
	uint64_t a, b = UINT64_MAX;
	const char *p;

	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 0;
	p = h + 6;
	if (*p == '-') {
		if (!parse_u64(p + 1, &p, &b) || *p)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*len = b < size ? b : size;
		*start = size - *len;
		return 1;
	}
	if (!parse_u64(p, &p, &a) || *p++ != '-')
		return 0;
	if (*p && (!parse_u64(p, &p, &b) || *p || b < a))
		return 0;
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return 1;
}

/* A 200 or 206 with the NAR of `pi` (taken over), rendered while sent. */
static enum MHD_Result send_nar(struct server *s, struct MHD_Connection *c, const char *method,
				const char *url, struct path_info *pi)
{
	const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	uint64_t size = pi->nar_size, start = 0, len = size;
	int kind = parse_range(range, size, &start, &len);
	struct serve_nar_stream *ns = NULL;
	struct MHD_Response *r;
	char cr[80];

	if (kind < 0) {
		path_info_free(pi);
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (r)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		return queue(c, method, url, MHD_HTTP_RANGE_NOT_SATISFIABLE, r, 0);
	}
	if (serve_nar_stream_new(s, pi, start, len, &ns) == -EBUSY)
		return send_error(c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "too many NAR transfers at once; try again");
	if (!ns)
		return MHD_NO;
	r = MHD_create_response_from_callback(len, NAR_BLOCK, serve_nar_stream_read, ns,
					      serve_nar_stream_free);
	if (!r) {
		serve_nar_stream_free(ns);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-nix-nar");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (kind > 0) {
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start,
			 start + len - 1, size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	return queue(c, method, url, kind > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r, len);
}

/* The registered path with this NAR, or -ENOENT. */
static int find_nar(struct server *s, const uint8_t sha256[32], struct path_info **out)
{
	uint8_t digest[STORE_PATH_DIGEST_LEN];
	struct path_info *pi;
	int rc = serve_index_lookup(&s->idx, s->st, sha256, digest);

	if (rc == 0)
		rc = path_info_service_get(s->st->paths, digest, &pi);
	if (rc < 0)
		return rc;
	if (memcmp(pi->nar_sha256, sha256, 32)) {
		/* The path was replaced since it was indexed. */
		path_info_free(pi);
		return -ENOENT;
	}
	*out = pi;
	return 0;
}

/* HEAD of a file uploaded and not yet registered, so that Nix does not
 * upload it again (docs/narinfo.md §6); a compressed one exists only so. */
static enum MHD_Result head_upload(struct server *s, struct MHD_Connection *c, const char *method,
				   const char *url, const uint8_t file_sha256[32], const char *ext)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	enum nar_compression comp = NAR_COMP_NONE;
	struct serve_upload up;

	if (ext_compression(ext, &comp) &&
	    serve_uploads_get(&s->up, file_sha256, &up, target) == 0 && up.comp == comp)
		return send_head(c, method, url, "application/x-nix-nar", up.file_size);
	return send_error(c, method, url, MHD_HTTP_NOT_FOUND, "no such NAR");
}

static enum MHD_Result get_nar(struct server *s, struct MHD_Connection *c, const char *method,
			       const char *url, const uint8_t sha256[32], bool head)
{
	struct path_info *pi;
	int rc = find_nar(s, sha256, &pi);

	if (rc == -ENOENT && head)
		return head_upload(s, c, method, url, sha256, "");
	if (rc == -ENOENT)
		return send_error(c, method, url, MHD_HTTP_NOT_FOUND, "no such NAR");
	if (rc == 0) {
		rc = serve_check_closure(s->st, &pi->root);
		if (rc < 0)
			path_info_free(pi);
	}
	if (rc < 0)
		return send_error(c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
				  sf_errmsg(rc));
	return send_nar(s, c, method, url, pi);
}

static enum MHD_Result handle_get(struct server *s, struct MHD_Connection *c, const char *method,
				  const char *url, bool head)
{
	uint8_t digest[STORE_PATH_DIGEST_LEN], sha256[32];
	const char *ext;

	if (!strcmp(url, "/nix-cache-info"))
		return get_cache_info(s, c, method, url);
	if (parse_narinfo_url(url, digest))
		return get_narinfo(s, c, method, url, digest);
	if (parse_nar_url(url, sha256, &ext) && !*ext)
		return get_nar(s, c, method, url, sha256, head);
	if (parse_nar_url(url, sha256, &ext) && head)
		return head_upload(s, c, method, url, sha256, ext);
	if (!strcmp(url, "/")) {
		static const char hello[] = "storefs binary cache\n";

		return send_text(c, method, url, MHD_HTTP_OK, "text/plain", hello,
				 sizeof(hello) - 1);
	}
	return send_error(c, method, url, MHD_HTTP_NOT_FOUND, "not found");
}

/* --- PUT --- */

/* The request's Content-Length: 0, -ENOENT if absent, -EINVAL if bad. */
static int content_length(struct MHD_Connection *c, uint64_t *out)
{
	const char *h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *end;

	if (!h)
		return -ENOENT;
	return parse_u64(h, &end, out) && !*end ? 0 : -EINVAL;
}

static enum MHD_Result put_nar_begin(struct server *s, struct MHD_Connection *c, const char *method,
				     const char *url, const uint8_t sha256[32],
				     enum nar_compression comp, uint64_t len, void **con_cls)
{
	struct request *rq = calloc(1, sizeof(*rq));
	int rc = rq ? 0 : -ENOMEM;

	if (len > s->max_upload) {
		free(rq);
		return send_error(c, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
				  "the NAR is larger than --max-upload (%" PRIu64 " bytes)",
				  s->max_upload);
	}
	if (rc == 0) {
		memcpy(rq->file.file_sha256, sha256, 32);
		rq->file.comp = comp;
		rq->file.file_size = len;
		rc = serve_nar_upload_start(s, &rq->file, &rq->up);
	}
	if (rc == -EBUSY) {
		free(rq);
		return send_error(c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "too many NAR transfers at once; try again");
	}
	if (rc < 0) {
		free(rq);
		return send_error(c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "cannot start the upload: %s", strerror(-rc));
	}
	rq->kind = REQ_NAR_PUT;
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result put_narinfo_begin(struct MHD_Connection *c, const char *method,
					 const char *url, const uint8_t *digest, uint64_t len,
					 void **con_cls)
{
	struct request *rq;

	if (len > SERVE_NARINFO_MAX)
		return send_error(c, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
				  "a narinfo may have at most %u bytes", SERVE_NARINFO_MAX);
	rq = calloc(1, sizeof(*rq));
	if (rq)
		rq->body = malloc(len + 1);
	if (!rq || !rq->body) {
		free(rq);
		return MHD_NO;
	}
	rq->kind = REQ_NARINFO_PUT;
	rq->cap = len;
	memcpy(rq->digest, digest, STORE_PATH_DIGEST_LEN);
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result handle_put(struct server *s, struct MHD_Connection *c, const char *method,
				  const char *url, void **con_cls)
{
	uint8_t digest[STORE_PATH_DIGEST_LEN], sha256[32];
	enum nar_compression comp = NAR_COMP_NONE;
	const char *ext = "";
	bool is_nar = parse_nar_url(url, sha256, &ext);
	bool is_narinfo = !is_nar && parse_narinfo_url(url, digest);
	uint64_t len = 0;
	int rc;

	if (!is_nar && !is_narinfo)
		return send_error(c, method, url, MHD_HTTP_NOT_FOUND,
				  "uploads go to /nar/<nix32 file hash>.nar[.xz|.zst|.bz2] and "
				  "/<hash>.narinfo");
	if (is_nar && !ext_compression(ext, &comp))
		return send_error(c, method, url, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				  "NAR files '.nar%s' are not supported: only '.nar' (none), "
				  "'.nar.xz', '.nar.zst' and '.nar.bz2' are",
				  ext);
	rc = content_length(c, &len);
	if (rc == -ENOENT)
		return send_error(c, method, url, MHD_HTTP_LENGTH_REQUIRED,
				  "a Content-Length is required");
	if (rc < 0)
		return send_error(c, method, url, MHD_HTTP_BAD_REQUEST, "bad Content-Length");
	if (is_nar)
		return put_nar_begin(s, c, method, url, sha256, comp, len, con_cls);
	return put_narinfo_begin(c, method, url, digest, len, con_cls);
}

static enum MHD_Result put_nar_end(struct server *s, struct MHD_Connection *c, const char *method,
				   const char *url, struct request *rq)
{
	struct nar_loaded *l = malloc(sizeof(*l));
	struct store_orphans created = {0}, evicted = {0};
	char msg[256];
	int rc;

	if (!l)
		return MHD_NO;
	rc = serve_nar_upload_finish(rq->up, l, &created, msg, sizeof(msg));
	rq->up = NULL;
	if (rc == 0) {
		rc = serve_uploads_put(&s->up, &rq->file, l, &created, &evicted);
		snprintf(msg, sizeof(msg), "%s", strerror(-rc));
	}
	free(l);
	serve_reclaim(s, &created);
	/* An evicted upload will never be registered: its blobs go. */
	serve_reclaim(s, &evicted);
	if (rc == -EINVAL || rc == -EIO)
		return send_error(c, method, url, MHD_HTTP_BAD_REQUEST, "%s", msg);
	if (rc == -EFBIG)
		return send_error(c, method, url, MHD_HTTP_CONTENT_TOO_LARGE, "%s", msg);
	if (rc < 0)
		return send_error(c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", msg);
	return send_text(c, method, url, MHD_HTTP_OK, "text/plain", "", 0);
}

/* The upload a narinfo names: by its URL ("nar/<file hash>.nar<ext>", as
 * Nix writes it), else an uncompressed one by its NarHash. */
static int narinfo_upload(struct server *s, const struct narinfo *ni, struct serve_upload *up,
			  uint8_t target[CASTORE_MAX_TARGET_LEN])
{
	enum nar_compression comp = NAR_COMP_NONE, label;
	char url[8 + NAR_HASH_CHARS + 16];
	const char *ext = "";
	uint8_t file[32];
	int rc;

	if (snprintf(url, sizeof(url), "/%s", ni->url) < (int)sizeof(url) &&
	    parse_nar_url(url, file, &ext) && ext_compression(ext, &comp))
		rc = serve_uploads_get(&s->up, file, up, target);
	else
		rc = serve_uploads_get(&s->up, ni->nar_sha256, up, target);
	if (rc < 0)
		return rc;
	rc = nar_compression_parse(ni->compression, &label);
	if (rc == 0 && (label != up->comp || comp != up->comp))
		rc =
		    sf_err(-EINVAL, "the narinfo says Compression '%s', the NAR was uploaded as %s",
			   ni->compression, nar_compression_name(up->comp));
	return rc;
}

/* The root node of the NAR a narinfo names: uploaded (and then NarHash and
 * NarSize must be those of the uploaded NAR; `upload` gets its file hash),
 * or already stored (`upload` untouched). */
static int narinfo_root(struct server *s, const struct narinfo *ni, struct node *root,
			uint8_t target[CASTORE_MAX_TARGET_LEN], uint8_t upload[32])
{
	char hash[NAR_HASH_TEXT_LEN], got[NAR_HASH_TEXT_LEN];
	struct serve_upload up;
	struct path_info *pi;
	int rc = narinfo_upload(s, ni, &up, target);

	nar_hash_text(ni->nar_sha256, hash);
	if (rc == 0 && memcmp(up.sha256, ni->nar_sha256, 32)) {
		nar_hash_text(up.sha256, got);
		return sf_err(-EINVAL, "the narinfo's NarHash %s is not the uploaded NAR's (%s)",
			      hash, got);
	}
	if (rc == 0) {
		*root = up.root;
		memcpy(upload, up.file_sha256, 32);
	} else if (rc == -ENOENT && find_nar(s, ni->nar_sha256, &pi) == 0) {
		*root = pi->root;
		if (root->kind == NODE_SYMLINK) {
			memcpy(target, pi->root.target, pi->root.target_len);
			root->target = target;
		}
		up.nar_size = pi->nar_size;
		path_info_free(pi);
		rc = 0;
	}
	if (rc == -ENOENT)
		return sf_err(-EINVAL, "NAR '%s' has not been uploaded", hash);
	if (rc == 0 && up.nar_size != ni->nar_size)
		return sf_err(-EINVAL, "NAR '%s' has %" PRIu64 " bytes, the narinfo says %" PRIu64,
			      hash, up.nar_size, ni->nar_size);
	return rc;
}

/* Registers, holding the writer lock (no reclaim or collection runs): the
 * NAR's contents are checked to be still there, since an evicted upload
 * that created some of them may have taken them back. */
static int narinfo_commit(struct server *s, const struct path_info *pi)
{
	struct store_write *w;
	int rc = store_write_begin(s->st, &w);

	if (rc < 0)
		return rc;
	rc = serve_check_closure(s->st, &pi->root);
	if (rc == -EIO)
		rc = sf_err(-EINVAL, "%s: upload the NAR again", sf_errmsg(rc));
	if (rc == 0)
		rc = nar_load_register(s->st, pi, NULL);
	store_write_end(w);
	return rc;
}

static int narinfo_register(struct server *s, const struct request *rq)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN], upload[32] = {0}, none[32] = {0};
	struct path_info *pi = NULL;
	struct narinfo *ni;
	struct node root;
	int rc = narinfo_parse(rq->body, rq->len, &ni);

	if (rc < 0)
		return rc;
	if (memcmp(ni->path.digest, rq->digest, STORE_PATH_DIGEST_LEN))
		rc = sf_err(-EINVAL, "the narinfo's StorePath '%s' does not match the URL",
			    ni->path.name);
	if (rc == 0)
		rc = narinfo_root(s, ni, &root, target, upload);
	if (rc == 0)
		rc = narinfo_to_path_info(ni, &root, &pi);
	if (rc == 0)
		rc = narinfo_commit(s, pi);
	if (rc == 0 && memcmp(upload, none, 32))
		serve_uploads_settle(&s->up, upload);
	if (rc == 0)
		rc = serve_index_add(&s->idx, pi->nar_sha256, pi->path.digest);
	path_info_free(pi);
	narinfo_free(ni);
	return rc;
}

static enum MHD_Result put_narinfo_end(struct server *s, struct MHD_Connection *c,
				       const char *method, const char *url, struct request *rq)
{
	int rc;

	if (rq->too_big || rq->len != rq->cap)
		return send_error(c, method, url, MHD_HTTP_BAD_REQUEST,
				  "the body does not match its Content-Length");
	rc = narinfo_register(s, rq);
	/* A lie (a CA or NarHash that does not fit) is the client's fault. */
	if (rc == -EINVAL || rc == -ENOENT || rc == -EIO)
		return send_error(c, method, url, MHD_HTTP_BAD_REQUEST, "%s", sf_errmsg(rc));
	if (rc == -EEXIST)
		return send_error(c, method, url, MHD_HTTP_CONFLICT, "%s", sf_errmsg(rc));
	if (rc < 0)
		return send_error(c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
				  sf_errmsg(rc));
	return send_text(c, method, url, MHD_HTTP_OK, "text/plain", "", 0);
}

static enum MHD_Result handle_body(struct server *s, struct MHD_Connection *c, const char *method,
				   const char *url, struct request *rq, const char *data,
				   size_t *size)
{
	if (*size == 0)
		return rq->kind == REQ_NAR_PUT ? put_nar_end(s, c, method, url, rq)
					       : put_narinfo_end(s, c, method, url, rq);
	if (rq->kind == REQ_NAR_PUT) {
		serve_nar_upload_push(rq->up, data, *size);
	} else if (rq->len + *size > rq->cap) {
		rq->too_big = true;
	} else {
		memcpy(rq->body + rq->len, data, *size);
		rq->len += *size;
	}
	*size = 0;
	return MHD_YES;
}

/* --- the daemon --- */

static enum MHD_Result handle_plain(struct server *s, struct MHD_Connection *c, const char *method,
				    const char *url)
{
	if (!strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD))
		return handle_get(s, c, method, url, !strcmp(method, MHD_HTTP_METHOD_HEAD));
	return send_error(c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "method '%s' is not allowed",
			  method);
}

/* docs/trust.md "Uploads": read-only unless --allow-uploads, and then
 * only with the token; decided before any of the body is read. */
static enum MHD_Result put_allowed(struct server *s, struct MHD_Connection *c, const char *method,
				   const char *url, void **con_cls)
{
	struct MHD_Response *r;
	unsigned status;

	if (!s->uploads)
		return send_error(c, method, url, MHD_HTTP_FORBIDDEN,
				  "uploads are disabled (storefs serve --allow-uploads "
				  "--upload-token-file FILE enables them)");
	status = serve_auth_check(s, c);
	if (status == MHD_HTTP_FORBIDDEN)
		return send_error(c, method, url, status, "wrong upload token");
	if (status == 0)
		return handle_put(s, c, method, url, con_cls);
	/* The challenge makes curl (Nix) send the netrc credentials. */
	r = MHD_create_response_from_buffer(sizeof(AUTH_NEEDED) - 1, (void *)AUTH_NEEDED,
					    MHD_RESPMEM_PERSISTENT);
	if (r &&
	    (MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				     "Basic realm=\"storefs\"") != MHD_YES ||
	     MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain") != MHD_YES)) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return queue(c, method, url, MHD_HTTP_UNAUTHORIZED, r, sizeof(AUTH_NEEDED) - 1);
}

/* --- connection limits (docs/limits.md "serve: connections") --- */

/* A connection's socket context: (its peer entry + 1) << 1 | CONN_OVER
 * (over a limit). */
#define CONN_OVER ((uintptr_t)1)
#define N_PEERS	  (SERVE_MAX_CONNECTIONS + SERVE_OVERFLOW)

static void peer_key(const struct sockaddr *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (!sa)
		return;
	key[0] = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

/* The entry of `key`, or a free one for it. A linear scan: there are at
 * most as many addresses as connections MHD accepts, so an entry is always
 * free, and a scan costs less than the accept it follows. */
static struct serve_peer *peer_entry(struct serve_conns *k, const uint8_t key[17])
{
	struct serve_peer *free_one = NULL;

	for (size_t i = 0; i < N_PEERS; i++) {
		struct serve_peer *p = &k->peer[i];

		if (p->n && !memcmp(p->addr, key, sizeof(p->addr)))
			return p;
		if (!p->n && !free_one)
			free_one = p;
	}
	if (free_one)
		memcpy(free_one->addr, key, sizeof(free_one->addr));
	return free_one;
}

static void conn_started(struct server *s, struct MHD_Connection *c, void **ctx)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct serve_conns *k = &s->conns;
	struct serve_peer *p;
	uint8_t key[17];
	uintptr_t v = CONN_OVER;

	peer_key(ci ? ci->client_addr : NULL, key);
	pthread_mutex_lock(&k->lock);
	p = peer_entry(k, key);
	if (p) {
		p->n++, k->total++;
		v = ((uintptr_t)(p - k->peer) + 1) << 1;
		if (k->total > SERVE_MAX_CONNECTIONS || p->n > SERVE_MAX_PER_IP)
			v |= CONN_OVER;
	}
	pthread_mutex_unlock(&k->lock);
	*ctx = (void *)v;
	/* It is answered as soon as it has sent its request: a client that
	 * sends none must not hold an overflow place for the idle timeout. */
	if (v & CONN_OVER)
		MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
					  (unsigned)SERVE_OVER_TIMEOUT_S);
}

static void conn_closed(struct server *s, void **ctx)
{
	uintptr_t v = (uintptr_t)*ctx;
	struct serve_conns *k = &s->conns;

	if (v >> 1) {
		pthread_mutex_lock(&k->lock);
		k->peer[(v >> 1) - 1].n--;
		k->total--;
		pthread_mutex_unlock(&k->lock);
	}
	*ctx = NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **ctx,
			      enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(cls, c, ctx);
	else
		conn_closed(cls, ctx);
}

static bool conn_over(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci && ((uintptr_t)ci->socket_context & CONN_OVER);
}

/* 503 and close: the client may retry once others have left. */
static enum MHD_Result send_busy(struct MHD_Connection *c, const char *method, const char *url)
{
	static const char msg[] = "too many connections; retry later\n";
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);

	if (r &&
	    (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain") != MHD_YES ||
	     MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES ||
	     MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") != MHD_YES)) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return queue(c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, r, sizeof(msg) - 1);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **con_cls)
{
	struct server *s = cls;
	struct request *rq = *con_cls;

	if (rq && rq->kind == REQ_PLAIN && *size) {
		/* A body nobody asked for (GET, POST): MHD sends nothing for a
		 * response queued before the body is read, so read and drop it
		 * (up to a narinfo's size, else close), then answer. */
		rq->len += *size;
		*size = 0;
		return rq->len > SERVE_NARINFO_MAX ? MHD_NO : MHD_YES;
	}
	if (rq && rq->kind == REQ_PLAIN)
		return rq->over ? send_busy(c, method, url) : handle_plain(s, c, method, url);
	if (rq)
		return handle_body(s, c, method, url, rq, data, size);
	if (!strcmp(method, MHD_HTTP_METHOD_PUT) && !conn_over(c))
		return put_allowed(s, c, method, url, con_cls);
	/* Answering on the first call, before MHD has seen that there is no
	 * body, would cost the connection its keep-alive. */
	rq = calloc(1, sizeof(*rq));
	if (!rq)
		return MHD_NO;
	rq->kind = REQ_PLAIN;
	rq->over = conn_over(c);
	*con_cls = rq;
	return MHD_YES;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	if (!rq)
		return;
	if (rq->up)
		serve_nar_upload_abort(rq->up);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static unsigned pool_size(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) * 2;

	return n < SERVE_THREADS_MIN   ? SERVE_THREADS_MIN
	       : n > SERVE_THREADS_MAX ? SERVE_THREADS_MAX
				       : (unsigned)n;
}

/* A pool of threads each polling its share of the connections, not a
 * thread per connection: idle clients (slowloris) then cost a socket
 * each, bounded per address and in total, and are dropped after the idle
 * timeout (docs/limits.md). */
int serve_start(struct server *s, int fd, bool verbose)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
			 (verbose ? MHD_USE_ERROR_LOG : 0);
	int rc = -pthread_mutex_init(&s->conns.lock, NULL);

	if (rc < 0)
		return rc;
	/* MHD's own limits are ours plus the overflow answered 503. */
	s->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, s, MHD_OPTION_NOTIFY_CONNECTION,
	    notify_connection, s, MHD_OPTION_THREAD_POOL_SIZE, pool_size(),
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)N_PEERS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)(SERVE_MAX_PER_IP + SERVE_OVERFLOW_PER_IP), MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)SERVE_IDLE_TIMEOUT_S, MHD_OPTION_END);
	if (!s->daemon) {
		pthread_mutex_destroy(&s->conns.lock);
		return sf_err(-EIO, "cannot start the HTTP server");
	}
	return 0;
}

void serve_stop(struct server *s)
{
	struct store_orphans pending;

	if (s->daemon) {
		MHD_stop_daemon(s->daemon);
		pthread_mutex_destroy(&s->conns.lock);
	}
	s->daemon = NULL;
	/* Uploads whose narinfo never came will not be registered now. */
	if (serve_uploads_drain(&s->up, &pending) == 0)
		serve_reclaim(s, &pending);
	store_orphans_release(&pending);
}
