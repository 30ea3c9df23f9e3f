/* nar_ingest.c - one-pass, constant-memory NAR parser feeding castore. */
#include "store/nar_ingest.h"

#include "common/encoding.h"
#include "common/err.h"
#include "common/io.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Input is read (and file contents are written to blobs) in chunks of this size. */
#define NAR_INGEST_BUF (128 * 1024)

/* Room for a shortened, escaped name or tag in a message. */
#define SHOW_LEN 80

struct parser {
	struct blob_service *bs;
	struct dir_service *ds;
	enum dir_size_formula f;
	nar_read_fn read;
	void *ctx;
	const struct nar_summary *expect;
	struct nar_limits lim;
	uint64_t dirs; /* directories begun so far */
	EVP_MD_CTX *sha;
	struct dir_putter *putter; /* created with the first Directory */
	uint8_t *buf;
	size_t pos, len; /* unconsumed input is buf[pos..len) */
	uint64_t off;	 /* NAR offset of buf[pos] */
	uint64_t filled; /* bytes read from the input so far */
	bool eof;
	uint8_t target[CASTORE_MAX_TARGET_LEN]; /* the last symlink target */
	uint8_t name[CASTORE_MAX_NAME_LEN];	/* the name being checked */
};

struct tag {
	char s[NAR_MAX_TAG + 1];
	size_t len;
};

/* One directory being built; lives in the parse_directory() frame. */
struct dir_level {
	struct directory_builder *b;
	uint8_t prev[CASTORE_MAX_NAME_LEN]; /* the previous entry's name */
	size_t prev_len;		    /* 0 before the first entry */
};

static int parse_obj(struct parser *p, unsigned int depth, struct node *out);

/* Escapes `s` for a message, shortening it to fit `out` (SHOW_LEN bytes). */
static const char *show(const void *s, size_t len, char *out)
{
	const uint8_t *b = s;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 8 > SHOW_LEN) {
			memcpy(out + o, "...", 4);
			return out;
		}
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			out[o++] = (char)b[i];
		else
			o += (size_t)snprintf(out + o, SHOW_LEN - o, "\\x%02x", b[i]);
	}
	out[o] = '\0';
	return out;
}

/* --- input --- */

static int p_fill(struct parser *p)
{
	size_t n = 0;
	int rc;

	if (p->pos < p->len || p->eof)
		return 0;
	rc = p->read(p->ctx, p->buf, NAR_INGEST_BUF, &n);
	if (rc < 0)
		return rc;
	if (n > NAR_INGEST_BUF)
		return sf_err(-EIO, "NAR reader returned %zu bytes for a %d-byte buffer", n,
			      NAR_INGEST_BUF);
	p->pos = 0, p->len = n, p->eof = n == 0;
	p->filled += n;
	if (p->expect && p->filled > p->expect->size)
		return sf_err(-EIO, "NAR is longer than the expected %llu bytes",
			      (unsigned long long)p->expect->size);
	if (p->lim.max_size && p->filled > p->lim.max_size)
		return sf_err(-EFBIG, "NAR is larger than the limit of %llu bytes",
			      (unsigned long long)p->lim.max_size);
	if (n && EVP_DigestUpdate(p->sha, p->buf, n) != 1)
		return sf_err(-EIO, "SHA-256 update failed");
	return 0;
}

static int p_truncated(struct parser *p)
{
	return sf_err(-EINVAL, "NAR is truncated at byte %llu", (unsigned long long)p->off);
}

/* Makes input available; -EINVAL at EOF. *avail is the number of bytes. */
static int p_avail(struct parser *p, size_t *avail)
{
	int rc = p_fill(p);

	if (rc < 0)
		return rc;
	if (p->pos == p->len)
		return p_truncated(p);
	*avail = p->len - p->pos;
	return 0;
}

static void p_consume(struct parser *p, size_t n)
{
	p->pos += n;
	p->off += n;
}

static int p_read(struct parser *p, void *dst, size_t len)
{
	uint8_t *d = dst;
	size_t n = 0;
	int rc;

	while (len) {
		rc = p_avail(p, &n);
		if (rc < 0)
			return rc;
		n = n < len ? n : len;
		memcpy(d, p->buf + p->pos, n);
		p_consume(p, n);
		d += n, len -= n;
	}
	return 0;
}

static int p_u64(struct parser *p, uint64_t *v)
{
	uint8_t le[8];
	int rc = p_read(p, le, 8);

	if (rc < 0)
		return rc;
	*v = 0;
	for (int i = 7; i >= 0; i--)
		*v = (*v << 8) | le[i];
	return 0;
}

static int p_padding(struct parser *p, uint64_t len)
{
	static const uint8_t zeros[8];
	uint64_t at = p->off;
	size_t pad = (size_t)((8 - len % 8) % 8);
	uint8_t b[8];
	int rc = p_read(p, b, pad);

	if (rc < 0)
		return rc;
	if (memcmp(b, zeros, pad))
		return sf_err(-EINVAL, "NAR has non-zero padding at byte %llu",
			      (unsigned long long)at);
	return 0;
}

/* Reads a str() of at most `cap` bytes; `what` names it in messages. */
static int p_str(struct parser *p, void *dst, size_t cap, size_t *len, const char *what)
{
	uint64_t at = p->off, n;
	int rc = p_u64(p, &n);

	if (rc < 0)
		return rc;
	if (n > cap)
		return sf_err(-EINVAL, "%s at byte %llu is too long (%llu bytes, at most %zu)",
			      what, (unsigned long long)at, (unsigned long long)n, cap);
	rc = p_read(p, dst, (size_t)n);
	if (rc == 0)
		rc = p_padding(p, n);
	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

static int p_tag(struct parser *p, struct tag *t)
{
	int rc = p_str(p, t->s, NAR_MAX_TAG, &t->len, "tag");

	if (rc == 0)
		t->s[t->len] = '\0';
	return rc;
}

static bool tag_is(const struct tag *t, const char *s)
{
	return t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static int bad_tag(const struct tag *t, uint64_t at, const char *expected)
{
	char got[SHOW_LEN];

	return sf_err(-EINVAL, "expected %s at byte %llu, got '%s'", expected,
		      (unsigned long long)at, show(t->s, t->len, got));
}

static int p_expect(struct parser *p, const char *want)
{
	char quoted[NAR_MAX_TAG + 3];
	uint64_t at = p->off;
	struct tag t;
	int rc = p_tag(p, &t);

	if (rc < 0 || tag_is(&t, want))
		return rc;
	snprintf(quoted, sizeof(quoted), "'%s'", want);
	return bad_tag(&t, at, quoted);
}

/* --- objects --- */

/* Streams `size` content bytes into a new blob. */
static int parse_contents(struct parser *p, uint64_t size, struct b3_digest *out)
{
	struct blob_writer *w;
	uint64_t left = size;
	size_t n = 0;
	int rc = blob_service_open_write(p->bs, &w);

	if (rc < 0)
		return rc;
	while (left && rc == 0) {
		rc = p_avail(p, &n);
		if (rc < 0)
			break;
		n = n < left ? n : (size_t)left;
		rc = blob_writer_write(w, p->buf + p->pos, n);
		p_consume(p, n);
		left -= n;
	}
	if (rc == 0)
		rc = p_padding(p, size);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	return blob_writer_commit(w, NULL, out);
}

static int parse_regular(struct parser *p, struct node *out)
{
	struct node n = {.kind = NODE_FILE};
	uint64_t at = p->off, len;
	struct tag t;
	int rc = p_tag(p, &t);

	if (rc == 0 && tag_is(&t, "executable")) {
		at = p->off;
		rc = p_u64(p, &len);
		if (rc == 0 && len)
			return sf_err(-EINVAL,
				      "executable marker at byte %llu has a non-empty value",
				      (unsigned long long)at);
		n.executable = true;
		at = p->off;
		if (rc == 0)
			rc = p_tag(p, &t);
	}
	if (rc == 0 && !tag_is(&t, "contents"))
		return bad_tag(&t, at, "'contents'");
	if (rc == 0)
		rc = p_u64(p, &n.size);
	if (rc == 0)
		rc = parse_contents(p, n.size, &n.digest);
	if (rc == 0)
		rc = p_expect(p, ")");
	if (rc == 0)
		*out = n;
	return rc;
}

static int parse_symlink(struct parser *p, struct node *out)
{
	uint64_t at;
	size_t len;
	int rc = p_expect(p, "target");

	at = p->off;
	if (rc == 0)
		rc = p_str(p, p->target, sizeof(p->target), &len, "symlink target");
	if (rc < 0)
		return rc;
	if (len == 0)
		return sf_err(-EINVAL, "symlink target at byte %llu is empty",
			      (unsigned long long)at);
	if (memchr(p->target, '\0', len))
		return sf_err(-EINVAL, "symlink target at byte %llu contains a NUL byte",
			      (unsigned long long)at);
	rc = p_expect(p, ")");
	if (rc == 0)
		*out = (struct node){.kind = NODE_SYMLINK, .target = p->target, .target_len = len};
	return rc;
}

static int check_name(struct parser *p, struct dir_level *lv, size_t len, uint64_t at)
{
	const uint8_t *s = p->name;
	char a[SHOW_LEN], b[SHOW_LEN];
	int c;

	if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.') ||
	    memchr(s, '/', len) || memchr(s, '\0', len))
		return sf_err(-EINVAL, "NAR contains invalid file name '%s' at byte %llu",
			      show(s, len, a), (unsigned long long)at);
	if (lv->prev_len == 0)
		return 0;
	c = castore_name_cmp(lv->prev, lv->prev_len, s, len);
	if (c == 0)
		return sf_err(-EINVAL, "NAR directory has a duplicate entry '%s' at byte %llu",
			      show(s, len, a), (unsigned long long)at);
	if (c > 0)
		return sf_err(
		    -EINVAL, "NAR directory is not sorted: '%s' at byte %llu follows '%s'",
		    show(s, len, a), (unsigned long long)at, show(lv->prev, lv->prev_len, b));
	return 0;
}

/* entry ( name <name> node <obj> ), after "entry". */
static int parse_entry(struct parser *p, struct dir_level *lv, unsigned int depth)
{
	struct node child;
	uint64_t at;
	size_t len;
	int rc = p_expect(p, "(");

	if (rc == 0)
		rc = p_expect(p, "name");
	at = p->off;
	if (rc == 0)
		rc = p_str(p, p->name, sizeof(p->name), &len, "file name");
	if (rc == 0)
		rc = check_name(p, lv, len, at);
	if (rc < 0)
		return rc;
	memcpy(lv->prev, p->name, len);
	lv->prev_len = len;
	rc = p_expect(p, "node");
	if (rc == 0)
		rc = parse_obj(p, depth + 1, &child);
	if (rc < 0)
		return rc;
	child.name = lv->prev, child.name_len = lv->prev_len;
	rc = directory_builder_add(lv->b, &child);
	return rc ? rc : p_expect(p, ")");
}

/* Hands a finished Directory to the putter; consumes `b`. */
static int put_directory(struct parser *p, struct directory_builder *b, struct node *out)
{
	struct node n = {.kind = NODE_DIRECTORY};
	struct directory *d;
	int rc = directory_builder_finish(b, &d);

	if (rc < 0)
		return rc;
	rc = directory_size(d, p->f, &n.size);
	if (rc == 0 && !p->putter)
		rc = dir_putter_new(p->ds, p->f, &p->putter);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	rc = dir_putter_put(p->putter, d, &n.digest);
	if (rc == 0)
		*out = n;
	return rc;
}

static int parse_directory(struct parser *p, unsigned int depth, struct node *out)
{
	struct dir_level lv = {0};
	struct tag t;
	uint64_t at;
	int rc;

	if (p->lim.max_dirs && ++p->dirs > p->lim.max_dirs)
		return sf_err(-EFBIG,
			      "NAR has more than the limit of %llu directories (at byte %llu)",
			      (unsigned long long)p->lim.max_dirs, (unsigned long long)p->off);
	rc = directory_builder_new(&lv.b);

	while (rc == 0) {
		at = p->off;
		rc = p_tag(p, &t);
		if (rc < 0 || tag_is(&t, ")"))
			break;
		if (tag_is(&t, "entry"))
			rc = parse_entry(p, &lv, depth);
		else
			rc = bad_tag(&t, at, "'entry' or ')'");
	}
	if (rc < 0) {
		directory_builder_free(lv.b);
		return rc;
	}
	return put_directory(p, lv.b, out);
}

static int parse_obj(struct parser *p, unsigned int depth, struct node *out)
{
	char got[SHOW_LEN];
	struct tag t;
	uint64_t at = p->off;
	int rc;

	if (depth >= NAR_MAX_DEPTH)
		return sf_err(-EINVAL, "NAR nesting exceeds the maximum depth of %d at byte %llu",
			      NAR_MAX_DEPTH, (unsigned long long)at);
	rc = p_expect(p, "(");
	if (rc == 0)
		rc = p_expect(p, "type");
	at = p->off;
	if (rc == 0)
		rc = p_tag(p, &t);
	if (rc < 0)
		return rc;
	if (tag_is(&t, "regular"))
		return parse_regular(p, out);
	if (tag_is(&t, "directory"))
		return parse_directory(p, depth, out);
	if (tag_is(&t, "symlink"))
		return parse_symlink(p, out);
	return sf_err(-EINVAL, "unknown file type '%s' at byte %llu", show(t.s, t.len, got),
		      (unsigned long long)at);
}

/* --- the whole NAR --- */

static int parse_magic(struct parser *p)
{
	struct tag t;
	int rc = p_tag(p, &t);

	if (rc == -EINVAL || (rc == 0 && !tag_is(&t, "nix-archive-1")))
		return sf_err(-EINVAL, "input doesn't look like a NAR (no 'nix-archive-1' magic)");
	return rc;
}

/* We ingest exactly one NAR: unlike Nix, which stops reading at the final
 * ")", bytes after it mean a corrupt or mis-framed input and are refused. */
static int check_end(struct parser *p)
{
	int rc = p_fill(p);

	if (rc == 0 && p->pos < p->len)
		rc = sf_err(-EINVAL, "NAR has trailing bytes after its end at byte %llu",
			    (unsigned long long)p->off);
	return rc;
}

static int finish_hash(struct parser *p, struct nar_summary *sum)
{
	unsigned int len = 0;
	char want[65], got[65];

	if (EVP_DigestFinal_ex(p->sha, sum->sha256, &len) != 1 || len != 32)
		return sf_err(-EIO, "SHA-256 final failed");
	sum->size = p->off;
	if (!p->expect)
		return 0;
	if (p->expect->size != sum->size)
		return sf_err(-EIO, "NAR size mismatch: expected %llu bytes, got %llu",
			      (unsigned long long)p->expect->size, (unsigned long long)sum->size);
	if (memcmp(p->expect->sha256, sum->sha256, 32)) {
		hex_encode(p->expect->sha256, 32, want);
		hex_encode(sum->sha256, 32, got);
		return sf_err(-EIO, "NAR hash mismatch: expected sha256 '%s', got '%s'", want, got);
	}
	return 0;
}

/* Stores the Directory closure; only after the NAR hash was checked. */
static int close_putter(struct parser *p, const struct node *root)
{
	struct dir_putter *putter = p->putter;
	struct b3_digest d;
	int rc;

	p->putter = NULL; /* close frees it, success or not */
	rc = dir_putter_close(putter, &d);
	if (rc == 0 && !b3_digest_eq(&d, &root->digest))
		rc = sf_err(-EIO, "directory putter returned a different root digest");
	return rc;
}

static int parse_nar(struct parser *p, struct node *root, struct nar_summary *sum)
{
	int rc = parse_magic(p);

	if (rc == 0)
		rc = parse_obj(p, 0, root);
	if (rc == 0)
		rc = check_end(p);
	if (rc == 0)
		rc = finish_hash(p, sum);
	if (rc == 0 && root->kind == NODE_DIRECTORY)
		rc = close_putter(p, root);
	return rc;
}

static void parser_free(struct parser *p)
{
	if (p->putter)
		dir_putter_free(p->putter);
	EVP_MD_CTX_free(p->sha);
	free(p->buf);
	free(p);
}

static int parser_new(struct parser **out)
{
	struct parser *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->buf = malloc(NAR_INGEST_BUF);
	p->sha = EVP_MD_CTX_new();
	if (!p->buf || !p->sha) {
		parser_free(p);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(p->sha, EVP_sha256(), NULL) != 1) {
		parser_free(p);
		return sf_err(-EIO, "cannot initialise SHA-256");
	}
	*out = p;
	return 0;
}

int nar_ingest_limited(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
		       nar_read_fn read, void *ctx, const struct nar_summary *expect,
		       const struct nar_limits *lim, struct node *root_out,
		       uint8_t root_target[CASTORE_MAX_TARGET_LEN], struct nar_summary *sum_out)
{
	struct nar_summary sum;
	struct parser *p = NULL;
	struct node root;
	int rc = parser_new(&p);

	if (rc < 0)
		return rc;
	p->bs = bs, p->ds = ds, p->f = f, p->read = read, p->ctx = ctx, p->expect = expect;
	p->lim = lim ? *lim : NAR_DEFAULT_LIMITS;
	rc = parse_nar(p, &root, &sum);
	if (rc == 0 && root.kind == NODE_SYMLINK) {
		memcpy(root_target, root.target, root.target_len);
		root.target = root_target;
	}
	parser_free(p);
	if (rc < 0)
		return rc;
	*root_out = root;
	if (sum_out)
		*sum_out = sum;
	return 0;
}

int nar_ingest_expect(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
		      nar_read_fn read, void *ctx, const struct nar_summary *expect,
		      struct node *root_out, uint8_t root_target[CASTORE_MAX_TARGET_LEN],
		      struct nar_summary *sum_out)
{
	return nar_ingest_limited(bs, ds, f, read, ctx, expect, NULL, root_out, root_target,
				  sum_out);
}

int nar_ingest(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f,
	       nar_read_fn read, void *ctx, struct node *root_out,
	       uint8_t root_target[CASTORE_MAX_TARGET_LEN], struct nar_summary *sum_out)
{
	return nar_ingest_expect(bs, ds, f, read, ctx, NULL, root_out, root_target, sum_out);
}

static int fd_read(void *ctx, void *buf, size_t len, size_t *n)
{
	int fd = *(const int *)ctx;
	ssize_t r = read_retry(fd, buf, len);

	if (r < 0)
		return sf_err_sys((int)-r, "cannot read NAR from fd %d", fd);
	*n = (size_t)r;
	return 0;
}

int nar_ingest_fd(struct blob_service *bs, struct dir_service *ds, enum dir_size_formula f, int fd,
		  const struct nar_summary *expect, const struct nar_limits *lim,
		  struct node *root_out, uint8_t root_target[CASTORE_MAX_TARGET_LEN],
		  struct nar_summary *sum_out)
{
	return nar_ingest_limited(bs, ds, f, fd_read, &fd, expect, lim, root_out, root_target,
				  sum_out);
}
