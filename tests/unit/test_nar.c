/* test_nar.c - NAR rendering and strict streaming ingestion against the
 * NAR vectors of vectors.json and every refusal of docs/nar.md §4, over a
 * small test-local in-memory blob and Directory service. */
#include "harness.h"

#include "common/encoding.h"
#include "store/nar_ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* --- a tiny in-memory blob service --- */

struct tblob {
	struct b3_digest digest;
	uint8_t *data;
	size_t len;
};

struct tblobs {
	struct blob_service svc;
	struct tblob *v;
	size_t n, cap;
	size_t max_write; /* the largest single write seen */
	int size_lie;	  /* added to the size readers report */
};

struct twriter {
	struct blob_writer w;
	struct tblobs *s;
	uint8_t *data;
	size_t len, cap;
};

struct treader {
	struct blob_reader r;
	const uint8_t *data;
	size_t len; /* the true length */
};

static struct tblob *tblobs_find(struct tblobs *s, const struct b3_digest *d)
{
	for (size_t i = 0; i < s->n; i++)
		if (b3_digest_eq(&s->v[i].digest, d))
			return &s->v[i];
	return NULL;
}

static int tblobs_stat(struct blob_service *svc, const struct b3_digest *d, uint64_t *size)
{
	struct tblob *b = tblobs_find((struct tblobs *)svc, d);

	if (!b)
		return -ENOENT;
	*size = b->len;
	return 0;
}

static int treader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct treader *t = (struct treader *)r;
	size_t left = off < t->len ? (size_t)(t->len - off) : 0;

	*n = len < left ? len : left;
	if (*n)
		memcpy(buf, t->data + off, *n);
	return 0;
}

static void treader_close(struct blob_reader *r)
{
	free(r);
}

static const struct blob_reader_ops treader_ops = {.pread = treader_pread, .close = treader_close};

static int tblobs_open_read(struct blob_service *svc, const struct b3_digest *d,
			    struct blob_reader **out)
{
	struct tblobs *s = (struct tblobs *)svc;
	struct tblob *b = tblobs_find(s, d);
	struct treader *t;

	if (!b)
		return -ENOENT;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->r =
	    (struct blob_reader){&treader_ops, b->len + (uint64_t)(int64_t)s->size_lie, -1, false};
	t->data = b->data, t->len = b->len;
	*out = &t->r;
	return 0;
}

static int twriter_write(struct blob_writer *w, const void *buf, size_t len)
{
	struct twriter *t = (struct twriter *)w;

	if (len > t->s->max_write)
		t->s->max_write = len;
	if (!len)
		return 0;
	if (t->len + len > t->cap) {
		size_t cap = (t->len + len) * 2;
		uint8_t *p = realloc(t->data, cap);

		if (!p)
			return -ENOMEM;
		t->data = p, t->cap = cap;
	}
	memcpy(t->data + t->len, buf, len);
	t->len += len;
	return 0;
}

static void twriter_abort(struct blob_writer *w)
{
	struct twriter *t = (struct twriter *)w;

	free(t->data);
	free(t);
}

static int twriter_commit(struct blob_writer *w, const struct b3_digest *expect,
			  struct b3_digest *out, bool *created)
{
	struct twriter *t = (struct twriter *)w;
	struct tblobs *s = t->s;
	struct b3_digest d;

	b3_digest_of(t->data, t->len, &d);
	if ((expect && !b3_digest_eq(expect, &d)) || (!tblobs_find(s, &d) && s->n == s->cap)) {
		twriter_abort(w);
		return -EIO;
	}
	if (created)
		*created = !tblobs_find(s, &d);
	if (!tblobs_find(s, &d)) {
		s->v[s->n++] = (struct tblob){d, t->data, t->len};
		t->data = NULL;
	}
	*out = d;
	twriter_abort(w);
	return 0;
}

static const struct blob_writer_ops twriter_ops = {twriter_write, twriter_commit, twriter_abort};

static int tblobs_open_write(struct blob_service *svc, struct blob_writer **out)
{
	struct twriter *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->w.ops = &twriter_ops;
	t->s = (struct tblobs *)svc;
	*out = &t->w;
	return 0;
}

static void tblobs_free(struct blob_service *svc)
{
	struct tblobs *s = (struct tblobs *)svc;

	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].data);
	free(s->v);
	free(s);
}

static const struct blob_service_ops tblobs_ops = {
    .stat = tblobs_stat,
    .open_read = tblobs_open_read,
    .open_write = tblobs_open_write,
    .free = tblobs_free,
};

/* --- a tiny in-memory Directory service --- */

struct tdir {
	struct b3_digest digest;
	uint8_t *enc;
	size_t len;
};

struct tdirs {
	struct dir_service svc;
	struct tdir *v;
	size_t n, cap;
	size_t batches; /* put_batch calls */
};

static struct tdir *tdirs_find(struct tdirs *s, const struct b3_digest *d)
{
	for (size_t i = 0; i < s->n; i++)
		if (b3_digest_eq(&s->v[i].digest, d))
			return &s->v[i];
	return NULL;
}

static int tdirs_get(struct dir_service *svc, const struct b3_digest *d, struct directory **out)
{
	struct tdir *t = tdirs_find((struct tdirs *)svc, d);

	return t ? directory_decode(t->enc, t->len, out) : -ENOENT;
}

static int tdirs_put_batch(struct dir_service *svc, struct directory *const *dirs,
			   const struct b3_digest *digests, size_t n)
{
	struct tdirs *s = (struct tdirs *)svc;
	int rc;

	s->batches++;
	for (size_t i = 0; i < n; i++) {
		if (tdirs_find(s, &digests[i]))
			continue;
		if (s->n == s->cap)
			return -ENOSPC;
		rc = directory_encode(dirs[i], &s->v[s->n].enc, &s->v[s->n].len);
		if (rc < 0)
			return rc;
		s->v[s->n++].digest = digests[i];
	}
	return 0;
}

static void tdirs_free(struct dir_service *svc)
{
	struct tdirs *s = (struct tdirs *)svc;

	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].enc);
	free(s->v);
	free(s);
}

static const struct dir_service_ops tdirs_ops = {
    .get = tdirs_get, .put_batch = tdirs_put_batch, .free = tdirs_free};

/* Both services, with room for `cap` objects each. */
struct tmem {
	struct tblobs *blobs;
	struct tdirs *dirs;
};

static int tmem_init(struct tmem *m, size_t cap)
{
	m->blobs = calloc(1, sizeof(*m->blobs));
	m->dirs = calloc(1, sizeof(*m->dirs));
	if (m->blobs)
		m->blobs->v = calloc(cap, sizeof(struct tblob));
	if (m->dirs)
		m->dirs->v = calloc(cap, sizeof(struct tdir));
	if (!m->blobs || !m->dirs || !m->blobs->v || !m->dirs->v) {
		free(m->blobs ? m->blobs->v : NULL), free(m->dirs ? m->dirs->v : NULL);
		free(m->blobs), free(m->dirs);
		return -ENOMEM;
	}
	m->blobs->svc.ops = &tblobs_ops, m->blobs->cap = cap;
	m->dirs->svc.ops = &tdirs_ops, m->dirs->cap = cap;
	return 0;
}

static void tmem_release(struct tmem *m)
{
	if (m->blobs)
		blob_service_free(&m->blobs->svc);
	if (m->dirs)
		dir_service_free(&m->dirs->svc);
	m->blobs = NULL, m->dirs = NULL;
}

/* --- building NARs by hand --- */

struct nb {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void nb_raw(struct nb *b, const void *s, size_t n)
{
	if (b->oom || !n)
		return;
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2 + 64;
		uint8_t *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void nb_u64(struct nb *b, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	nb_raw(b, le, 8);
}

static void nb_pad(struct nb *b, size_t n)
{
	static const uint8_t zeros[8];

	nb_raw(b, zeros, (8 - n % 8) % 8);
}

static void nb_str(struct nb *b, const void *s, size_t n)
{
	nb_u64(b, n);
	nb_raw(b, s, n);
	nb_pad(b, n);
}

/* Appends each NUL-terminated string argument as str(), up to a NULL. */
static void nb_tags(struct nb *b, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, b);
	while ((s = va_arg(ap, const char *)))
		nb_str(b, s, strlen(s));
	va_end(ap);
}

static void nb_free(struct nb *b)
{
	free(b->p);
	*b = (struct nb){0};
}

static void nb_file(struct nb *b, bool exec, const char *contents)
{
	nb_tags(b, "(", "type", "regular", NULL);
	if (exec)
		nb_tags(b, "executable", "", NULL);
	nb_tags(b, "contents", contents, ")", NULL);
}

static void nb_entry(struct nb *b, const char *name)
{
	nb_tags(b, "entry", "(", "name", name, "node", NULL);
}

/* --- reading, rendering --- */

struct mem_reader {
	const uint8_t *p;
	size_t len, pos, chunk;
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct mem_reader *r = ctx;
	size_t left = r->len - r->pos;

	*n = len < left ? len : left;
	if (*n > r->chunk)
		*n = r->chunk;
	if (*n)
		memcpy(buf, r->p + r->pos, *n);
	r->pos += *n;
	return 0;
}

struct sink {
	struct nb b;
	int fail_with; /* non-zero: every write fails with it */
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;

	if (s->fail_with)
		return s->fail_with;
	nb_raw(&s->b, buf, len);
	return s->b.oom ? -ENOMEM : (int)len; /* a count, which must not be taken as failure */
}

static int ingest_mem(struct tmem *m, enum dir_size_formula f, const uint8_t *p, size_t len,
		      size_t chunk, const struct nar_summary *expect, struct node *root,
		      uint8_t *target, struct nar_summary *sum)
{
	struct mem_reader r = {p, len, 0, chunk};

	return nar_ingest_expect(&m->blobs->svc, &m->dirs->svc, f, mem_read, &r, expect, root,
				 target, sum);
}

/* Ingests `b` into fresh services (then dropped) and returns the result. */
static int ingest_nb(struct nb *b)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct node root;
	struct tmem m;
	int rc;

	if (b->oom || tmem_init(&m, 256) < 0)
		return -ENOMEM;
	rc = ingest_mem(&m, DIR_SIZE_SPEC, b->p, b->len, 4096, NULL, &root, target, NULL);
	tmem_release(&m);
	return rc;
}

#define CHECK_REJECT(b, sub)                                                                       \
	do {                                                                                       \
		int r_ = ingest_nb(b);                                                             \
		nb_free(b);                                                                        \
		CHECK_ERR(r_, -EINVAL);                                                            \
		CHECK_MSG(strstr(sf_errmsg(-EINVAL), sub), "message '%s' lacks '%s'",              \
			  sf_errmsg(-EINVAL), sub);                                                \
	} while (0)

#define CHECK_ACCEPT(b)                                                                            \
	do {                                                                                       \
		int r_ = ingest_nb(b);                                                             \
		nb_free(b);                                                                        \
		CHECK_OK(r_);                                                                      \
	} while (0)

static const cJSON *nar_vector(const char *name)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, vectors_get("nar", NULL))
	{
		if (!strcmp(vstr(v, "name"), name))
			return v;
	}
	return NULL;
}

static const char *vector_names[] = {"NAR_CONTENTS_SYMLINK", "NAR_CONTENTS_HELLOWORLD",
				     "NAR_CONTENTS_COMPLICATED", "onebyteregular.nar",
				     "emptydirectory.nar"};

static uint8_t *vector_nar(const char *name, size_t *len)
{
	const cJSON *v = nar_vector(name);

	return v ? hex_alloc(vstr(v, "nar_hex"), len) : NULL;
}

static void sha_hex(const struct nar_summary *s, char out[65])
{
	hex_encode(s->sha256, 32, out);
}

/* Puts the tree of vector `name` into `m` and returns its root node. */
static int populate(struct tmem *m, enum dir_size_formula f, const char *name, struct node *root)
{
	static const char target[] = "/nix/store/somewhereelse";
	struct b3_digest empty, keep = {{0}};
	struct directory d;
	struct node n[3];
	int rc;

	*root = (struct node){
	    .kind = NODE_SYMLINK, .target = (const uint8_t *)target, .target_len = strlen(target)};
	if (!strcmp(name, "NAR_CONTENTS_SYMLINK"))
		return 0;
	*root = (struct node){.kind = NODE_FILE};
	if (!strcmp(name, "NAR_CONTENTS_HELLOWORLD")) {
		root->size = 12;
		return blob_service_put(&m->blobs->svc, "Hello World!", 12, &root->digest);
	}
	if (!strcmp(name, "onebyteregular.nar")) {
		root->size = 1;
		return blob_service_put(&m->blobs->svc, "\x01", 1, &root->digest);
	}
	root->kind = NODE_DIRECTORY;
	d = (struct directory){NULL, 0};
	if (!strcmp(name, "emptydirectory.nar"))
		return dir_service_put(&m->dirs->svc, &d, &root->digest);
	rc = blob_service_put(&m->blobs->svc, "", 0, &empty);
	n[0] = (struct node){
	    .kind = NODE_FILE, .name = (const uint8_t *)".keep", .name_len = 5, .digest = empty};
	d = (struct directory){n, 1};
	if (rc == 0)
		rc = dir_service_put(&m->dirs->svc, &d, &keep);
	n[1] = (struct node){.kind = NODE_SYMLINK,
			     .name = (const uint8_t *)"aa",
			     .name_len = 2,
			     .target = (const uint8_t *)target,
			     .target_len = strlen(target)};
	n[2] = (struct node){
	    .kind = NODE_DIRECTORY, .name = (const uint8_t *)"keep", .name_len = 4, .digest = keep};
	if (rc == 0)
		rc = directory_size(&d, f, &n[2].size);
	d = (struct directory){n, 3};
	if (rc == 0)
		rc = dir_service_put(&m->dirs->svc, &d, &root->digest);
	if (rc == 0)
		rc = directory_size(&d, f, &root->size);
	return rc;
}

/* --- rendering --- */

TEST(nar_render_vectors)
{
	for (int f = DIR_SIZE_SPEC; f <= DIR_SIZE_NATIVE; f++) {
		for (size_t i = 0; i < sizeof(vector_names) / sizeof(vector_names[0]); i++) {
			const cJSON *v = nar_vector(vector_names[i]);
			struct sink s = {0};
			struct nar_summary sum, sum2;
			struct node root;
			struct tmem m;
			char hex[65];
			size_t len = 0;
			uint8_t *want;
			int rc;

			CHECK(v);
			want = vector_nar(vector_names[i], &len);
			CHECK(want);
			CHECK_OK(tmem_init(&m, 16));
			rc = populate(&m, f, vector_names[i], &root);
			if (rc == 0)
				rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, sink_write, &s,
						&sum);
			/* write == NULL only hashes. */
			if (rc == 0)
				rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, NULL, NULL,
						&sum2);
			tmem_release(&m);
			CHECK_MSG(rc == 0 && s.b.len == len && !memcmp(s.b.p, want, len),
				  "%s: rc %d (%s), %zu bytes", vector_names[i], rc, sf_errmsg(rc),
				  s.b.len);
			free(want);
			nb_free(&s.b);
			sha_hex(&sum, hex);
			CHECK_STR(hex, vstr(v, "sha256_hex"));
			CHECK_EQ(sum.size, cJSON_GetObjectItem(v, "len")->valueint);
			CHECK_MEM(sum2.sha256, sum.sha256, 32);
			CHECK_EQ(sum2.size, sum.size);
		}
	}
}

/* The renderer template of vectors.json: HELLOWORLD's blob under a wrong size. */
TEST(nar_render_template_sizes)
{
	struct node n = {.kind = NODE_FILE};
	struct nar_summary sum;
	struct tmem m;
	int rc;

	CHECK_OK(tmem_init(&m, 4));
	rc = blob_service_put(&m.blobs->svc, "Hello World!", 12, &n.digest);
	n.size = 42;
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, &sum);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), "shorter"));
	n.size = 2;
	rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, &sum);
	tmem_release(&m);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), "longer"));
}

/* A reader whose size field lies: the bytes decide, in both directions. */
TEST(nar_render_lying_reader_size)
{
	struct node n = {.kind = NODE_FILE};
	struct tmem m;
	int rc;

	CHECK_OK(tmem_init(&m, 4));
	rc = blob_service_put(&m.blobs->svc, "Hello World!", 12, &n.digest);
	m.blobs->size_lie = 30, n.size = 42;
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, NULL);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), "shorter"));
	m.blobs->size_lie = -2, n.size = 10;
	rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, NULL);
	tmem_release(&m);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), "longer"));
}

TEST(nar_render_missing)
{
	struct node n = {.kind = NODE_FILE, .size = 3};
	char text[B3_TEXT_LEN + 1];
	struct tmem m;
	int rc;

	CHECK_OK(tmem_init(&m, 4));
	b3_digest_of("abc", 3, &n.digest);
	b3_digest_to_text(&n.digest, text);
	rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, NULL);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), text) && strstr(sf_errmsg(rc), "missing"));
	n.kind = NODE_DIRECTORY;
	rc = nar_render(&m.blobs->svc, &m.dirs->svc, &n, NULL, NULL, NULL);
	tmem_release(&m);
	CHECK_ERR(rc, -EIO);
	CHECK(strstr(sf_errmsg(rc), "directory 'blake3-") && strstr(sf_errmsg(rc), "is missing"));
}

TEST(nar_render_sink_error)
{
	struct sink s = {.fail_with = -ENOSPC};
	struct node root;
	struct tmem m;
	int rc;

	CHECK_OK(tmem_init(&m, 8));
	rc = populate(&m, DIR_SIZE_SPEC, "NAR_CONTENTS_COMPLICATED", &root);
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, sink_write, &s, NULL);
	tmem_release(&m);
	CHECK_ERR(rc, -ENOSPC);
}

/* A chain of `levels` nested Directories "d/d/d..." (root included). */
static int put_chain(struct tmem *m, int levels, struct node *root)
{
	struct directory d = {NULL, 0};
	struct node child = {.kind = NODE_DIRECTORY, .name = (const uint8_t *)"d", .name_len = 1};
	int rc = dir_service_put(&m->dirs->svc, &d, &child.digest);

	for (int i = 1; i < levels && rc == 0; i++) {
		d = (struct directory){&child, 1};
		rc = directory_size(&d, DIR_SIZE_SPEC, &child.size);
		if (rc == 0)
			rc = dir_service_put(&m->dirs->svc, &d, &child.digest);
	}
	*root = (struct node){.kind = NODE_DIRECTORY, .digest = child.digest};
	return rc;
}

/* A NAR of `levels` nested directories "d/d/d..." (root included). */
static void nb_chain(struct nb *b, int levels)
{
	nb_tags(b, "nix-archive-1", NULL);
	for (int i = 0; i < levels; i++) {
		nb_tags(b, "(", "type", "directory", NULL);
		if (i + 1 < levels)
			nb_entry(b, "d");
	}
	for (int i = 0; i < levels; i++)
		nb_tags(b, ")", i + 1 < levels ? ")" : NULL, NULL);
}

TEST(nar_render_depth_limit)
{
	struct node root;
	struct tmem m;
	int rc;

	/* Depths 0..63 are fine; a node at depth 64 is not (modern Nix). */
	CHECK_OK(tmem_init(&m, 80));
	rc = put_chain(&m, NAR_MAX_DEPTH, &root);
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, NULL, NULL, NULL);
	CHECK_OK(rc);
	rc = put_chain(&m, NAR_MAX_DEPTH + 1, &root);
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, NULL, NULL, NULL);
	tmem_release(&m);
	CHECK_ERR(rc, -ELOOP);
	CHECK(strstr(sf_errmsg(rc), "depth"));
}

/* --- ingestion of the vectors --- */

TEST(nar_ingest_vectors)
{
	static const size_t chunks[] = {1, 5, 8, 4096, 1 << 20};

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		for (size_t i = 0; i < sizeof(vector_names) / sizeof(vector_names[0]); i++) {
			const cJSON *v = nar_vector(vector_names[i]);
			uint8_t target[CASTORE_MAX_TARGET_LEN];
			struct node root, want;
			struct nar_summary sum;
			struct tmem m, ref;
			size_t len = 0;
			uint8_t *nar = vector_nar(vector_names[i], &len);
			char hex[65];
			int rc;

			CHECK(v && nar);
			CHECK_OK(tmem_init(&m, 16));
			CHECK_OK(tmem_init(&ref, 16));
			rc = ingest_mem(&m, DIR_SIZE_SPEC, nar, len, chunks[c], NULL, &root, target,
					&sum);
			if (rc == 0)
				rc = populate(&ref, DIR_SIZE_SPEC, vector_names[i], &want);
			tmem_release(&m);
			tmem_release(&ref);
			free(nar);
			CHECK_MSG(rc == 0, "%s: %s", vector_names[i], sf_errmsg(rc));
			sha_hex(&sum, hex);
			CHECK_STR(hex, vstr(v, "sha256_hex"));
			CHECK_EQ(sum.size, len);
			CHECK_EQ(root.kind, want.kind);
			CHECK_EQ(root.name_len, 0);
			if (root.kind == NODE_SYMLINK) {
				CHECK(root.target == target);
				CHECK_EQ(root.target_len, want.target_len);
				CHECK_MEM(root.target, want.target, want.target_len);
			} else {
				CHECK(b3_digest_eq(&root.digest, &want.digest));
				CHECK_EQ(root.size, want.size);
				CHECK_EQ(root.executable, false);
			}
		}
	}
}

static int count_visit(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct b3_digest *seen = ctx;

	(void)d;
	for (int i = 0; i < 2; i++) {
		if (!memcmp(seen[i].bytes, (uint8_t[B3_LEN]){0}, B3_LEN)) {
			seen[i] = *digest;
			return 0;
		}
	}
	return -E2BIG;
}

TEST(nar_ingest_complicated)
{
	static const char *formula[] = {"spec", "native"};

	for (int f = DIR_SIZE_SPEC; f <= DIR_SIZE_NATIVE; f++) {
		const cJSON *dirs = vectors_get("directories", formula[f]), *v;
		struct b3_digest want_root = {{0}}, want_keep = {{0}}, seen[2] = {{{0}}};
		uint8_t target[CASTORE_MAX_TARGET_LEN];
		uint64_t want_size = 0, size;
		struct nar_summary sum;
		struct node root;
		struct tmem m;
		size_t len = 0;
		uint8_t *nar = vector_nar("NAR_CONTENTS_COMPLICATED", &len);
		int rc;

		CHECK(dirs && nar);
		cJSON_ArrayForEach(v, dirs)
		{
			const char *hex = vstr(v, "blake3_hex");

			if (!strcmp(vstr(v, "name"), "DIRECTORY_COMPLICATED")) {
				CHECK_OK(b3_digest_from_hex(hex, strlen(hex), &want_root));
				want_size = (uint64_t)cJSON_GetObjectItem(v, "size")->valuedouble;
			} else if (!strcmp(vstr(v, "name"), "DIRECTORY_WITH_KEEP")) {
				CHECK_OK(b3_digest_from_hex(hex, strlen(hex), &want_keep));
			}
		}
		CHECK_OK(tmem_init(&m, 16));
		rc = ingest_mem(&m, f, nar, len, 100, NULL, &root, target, &sum);
		free(nar);
		if (rc == 0)
			rc = dir_service_get_recursive(&m.dirs->svc, &root.digest, count_visit,
						       seen);
		if (rc == 0)
			rc = blob_service_stat(&m.blobs->svc, &b3_empty_digest, &size);
		if (rc == 0)
			CHECK_EQ(m.dirs->n, 2);
		if (rc == 0)
			CHECK_EQ(m.dirs->batches, 1);
		tmem_release(&m);
		CHECK_OK(rc);
		CHECK_EQ(size, 0);
		CHECK_EQ(root.kind, NODE_DIRECTORY);
		CHECK(b3_digest_eq(&root.digest, &want_root));
		CHECK_EQ(root.size, want_size);
		CHECK(b3_digest_eq(&seen[0], &want_root));
		CHECK(b3_digest_eq(&seen[1], &want_keep));
	}
}

/* ingest -> render gives back the same bytes, both formulas. */
TEST(nar_ingest_render_roundtrip)
{
	for (int f = DIR_SIZE_SPEC; f <= DIR_SIZE_NATIVE; f++) {
		for (size_t i = 0; i < sizeof(vector_names) / sizeof(vector_names[0]); i++) {
			uint8_t target[CASTORE_MAX_TARGET_LEN];
			struct nar_summary in, out;
			struct sink s = {0};
			struct node root;
			struct tmem m;
			size_t len = 0;
			uint8_t *nar = vector_nar(vector_names[i], &len);
			int rc;

			CHECK(nar);
			CHECK_OK(tmem_init(&m, 16));
			rc = ingest_mem(&m, f, nar, len, 3, NULL, &root, target, &in);
			if (rc == 0)
				rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, sink_write, &s,
						&out);
			tmem_release(&m);
			CHECK_MSG(rc == 0 && s.b.len == len && !memcmp(s.b.p, nar, len),
				  "%s: rc %d (%s)", vector_names[i], rc, sf_errmsg(rc));
			free(nar);
			nb_free(&s.b);
			CHECK_MEM(in.sha256, out.sha256, 32);
			CHECK_EQ(in.size, out.size);
		}
	}
}

/* A bigger hand-built tree: executable files, odd lengths, nesting. */
TEST(nar_ingest_render_roundtrip_tree)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct nb b = {0};
	struct sink s = {0};
	struct node root;
	struct tmem m;
	int rc;

	nb_tags(&b, "nix-archive-1", "(", "type", "directory", NULL);
	nb_entry(&b, "-y");
	nb_file(&b, true, "#!/bin/sh\n");
	nb_tags(&b, ")", NULL);
	nb_entry(&b, "B");
	nb_tags(&b, "(", "type", "directory", NULL);
	nb_entry(&b, "empty");
	nb_tags(&b, "(", "type", "directory", ")", ")", NULL);
	nb_entry(&b, "same");
	nb_tags(&b, "(", "type", "directory", ")", ")", NULL);
	nb_tags(&b, ")", ")", NULL);
	nb_entry(&b, "a");
	nb_tags(&b, "(", "type", "symlink", "target", "../B", ")", ")", NULL);
	nb_entry(&b, "\xc3\xa9");
	nb_file(&b, false, "1234567");
	nb_tags(&b, ")", ")", NULL);
	CHECK(!b.oom);
	CHECK_OK(tmem_init(&m, 16));
	rc = ingest_mem(&m, DIR_SIZE_NATIVE, b.p, b.len, 7, NULL, &root, target, NULL);
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, sink_write, &s, NULL);
	tmem_release(&m);
	CHECK_MSG(rc == 0 && s.b.len == b.len && !memcmp(s.b.p, b.p, b.len), "rc %d (%s)", rc,
		  sf_errmsg(rc));
	nb_free(&b);
	nb_free(&s.b);
}

TEST(nar_ingest_expected_hash)
{
	const cJSON *v = nar_vector("NAR_CONTENTS_COMPLICATED"), *mm;
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct nar_summary expect = {{0}, 0}, sum;
	struct node root;
	struct tmem m;
	size_t len = 0, n = 0;
	uint8_t *nar = vector_nar("NAR_CONTENTS_COMPLICATED", &len);
	const char *hex = vstr(v, "sha256_hex");
	int rc;

	CHECK(nar);
	CHECK_OK(hex_decode(hex, strlen(hex), expect.sha256, 32));
	expect.size = len;
	CHECK_OK(tmem_init(&m, 16));
	rc = ingest_mem(&m, DIR_SIZE_SPEC, nar, len, 64, &expect, &root, target, &sum);
	CHECK_EQ(m.dirs->batches, rc == 0 ? 1 : 0);
	tmem_release(&m);
	CHECK_OK(rc);

	/* Every 32-byte mismatch vector, used as the expected SHA-256, is refused
	 * and stores no Directory. */
	cJSON_ArrayForEach(mm, vectors_get("nar_hash_mismatch_vectors", NULL))
	{
		const char *bad = vstr(mm, "hex");

		if (strlen(bad) != 64)
			continue;
		CHECK_OK(hex_decode(bad, 64, expect.sha256, 32));
		CHECK_OK(tmem_init(&m, 16));
		rc = ingest_mem(&m, DIR_SIZE_SPEC, nar, len, 64, &expect, &root, target, &sum);
		CHECK_EQ(m.dirs->batches, 0);
		CHECK_EQ(m.dirs->n, 0);
		tmem_release(&m);
		CHECK_ERR(rc, -EIO);
		CHECK(strstr(sf_errmsg(rc), "hash mismatch"));
		n++;
	}
	CHECK(n >= 1);

	/* Right hash, wrong size (larger: noticed at the end; smaller: noticed
	 * while reading). */
	CHECK_OK(hex_decode(hex, strlen(hex), expect.sha256, 32));
	for (int d = -8; d <= 8; d += 16) {
		expect.size = len + (size_t)d;
		CHECK_OK(tmem_init(&m, 16));
		rc = ingest_mem(&m, DIR_SIZE_SPEC, nar, len, 64, &expect, &root, target, &sum);
		CHECK_EQ(m.dirs->batches, 0);
		tmem_release(&m);
		CHECK_ERR(rc, -EIO);
		CHECK(strstr(sf_errmsg(rc), d > 0 ? "size mismatch" : "longer than"));
	}
	free(nar);
}

TEST(nar_ingest_from_fd)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct nar_summary sum;
	struct node root;
	struct tmem m;
	size_t len = 0;
	uint8_t *nar = vector_nar("NAR_CONTENTS_SYMLINK", &len);
	FILE *f = tmpfile();
	int rc;

	CHECK(nar && f);
	CHECK_EQ(fwrite(nar, 1, len, f), len);
	fflush(f);
	rewind(f);
	free(nar);
	CHECK_OK(tmem_init(&m, 4));
	rc = nar_ingest_fd(&m.blobs->svc, &m.dirs->svc, DIR_SIZE_SPEC, fileno(f), NULL, NULL, &root,
			   target, &sum);
	tmem_release(&m);
	fclose(f);
	CHECK_OK(rc);
	CHECK_EQ(root.kind, NODE_SYMLINK);
	CHECK_EQ(root.target_len, 24);
	CHECK_MEM(root.target, "/nix/store/somewhereelse", 24);
	CHECK_EQ(sum.size, 136);
	/* A read error is passed up. */
	CHECK_OK(tmem_init(&m, 4));
	rc = nar_ingest_fd(&m.blobs->svc, &m.dirs->svc, DIR_SIZE_SPEC, -1, NULL, NULL, &root,
			   target, &sum);
	tmem_release(&m);
	CHECK_ERR(rc, -EIO);
}

/* A 5 MiB file produced on the fly: the parser must stream it in chunks. */
#define BIG_LEN (5u << 20)

struct big_reader {
	struct nb head, tail;
	uint64_t pos, max_len;
};

static int big_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct big_reader *r = ctx;
	uint8_t *out = buf;
	uint64_t total = r->head.len + (uint64_t)BIG_LEN + r->tail.len;

	if (len > r->max_len)
		r->max_len = len;
	len = len > 10000 ? 10000 : len; /* short reads on purpose */
	*n = 0;
	while (*n < len && r->pos < total) {
		uint64_t p = r->pos;

		if (p < r->head.len)
			out[*n] = r->head.p[p];
		else if (p < r->head.len + BIG_LEN)
			out[*n] = (uint8_t)((p - r->head.len) % 251);
		else
			out[*n] = r->tail.p[p - r->head.len - BIG_LEN];
		(*n)++, r->pos++;
	}
	return 0;
}

TEST(nar_ingest_large_file)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct big_reader r = {0};
	struct b3_hasher h;
	struct b3_digest want;
	struct nar_summary sum, rsum;
	struct node root;
	struct tmem m;
	uint8_t chunk[4096];
	uint64_t nar_len;
	int rc;

	nb_tags(&r.head, "nix-archive-1", "(", "type", "regular", "executable", "", "contents",
		NULL);
	nb_u64(&r.head, BIG_LEN);
	nb_tags(&r.tail, ")", NULL); /* BIG_LEN is a multiple of 8: no padding */
	CHECK(!r.head.oom && !r.tail.oom);
	nar_len = r.head.len + (uint64_t)BIG_LEN + r.tail.len;
	b3_hasher_init(&h);
	for (uint64_t off = 0; off < BIG_LEN; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)((off + i) % 251);
		b3_hasher_update(&h, chunk, sizeof(chunk));
	}
	b3_hasher_final(&h, &want);
	CHECK_OK(tmem_init(&m, 4));
	rc = nar_ingest(&m.blobs->svc, &m.dirs->svc, DIR_SIZE_SPEC, big_read, &r, &root, target,
			&sum);
	if (rc == 0)
		rc = nar_render(&m.blobs->svc, &m.dirs->svc, &root, NULL, NULL, &rsum);
	CHECK_MSG(m.blobs->max_write <= 256 * 1024, "a blob write of %zu bytes",
		  m.blobs->max_write);
	tmem_release(&m);
	nb_free(&r.head);
	nb_free(&r.tail);
	CHECK_OK(rc);
	CHECK(r.max_len <= 256 * 1024);
	CHECK_EQ(root.kind, NODE_FILE);
	CHECK_EQ(root.executable, true);
	CHECK_EQ(root.size, BIG_LEN);
	CHECK(b3_digest_eq(&root.digest, &want));
	CHECK_EQ(sum.size, nar_len);
	CHECK_MEM(sum.sha256, rsum.sha256, 32);
	CHECK_EQ(sum.size, rsum.size);
}

/* --- strictness: every refusal of docs/nar.md §4 --- */

TEST(nar_reject_magic)
{
	struct nb b = {0};

	nb_tags(&b, "nix-archive-2", "(", "type", "regular", "contents", "", ")", NULL);
	CHECK_REJECT(&b, "doesn't look like a NAR");
	nb_tags(&b, "nix-archive-1-and-a-lot-more-than-32-bytes", NULL);
	CHECK_REJECT(&b, "doesn't look like a NAR");
	CHECK_REJECT(&b, "doesn't look like a NAR"); /* empty input */
	nb_raw(&b, "\x0d\0\0\0", 4);
	CHECK_REJECT(&b, "doesn't look like a NAR");
}

static void nb_dir_with(struct nb *b, const void *name, size_t len)
{
	nb_tags(b, "nix-archive-1", "(", "type", "directory", "entry", "(", "name", NULL);
	nb_str(b, name, len);
	nb_tags(b, "node", NULL);
	nb_file(b, false, "x");
	nb_tags(b, ")", ")", NULL);
}

TEST(nar_reject_names)
{
	static const struct {
		const char *name;
		size_t len;
	} bad[] = {{"", 0}, {".", 1}, {"..", 2}, {"a/b", 3}, {"/", 1}, {"a\0b", 3}, {"\0", 1}};
	uint8_t longname[CASTORE_MAX_NAME_LEN + 1];
	struct nb b = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nb_dir_with(&b, bad[i].name, bad[i].len);
		CHECK_REJECT(&b, "invalid file name");
	}
	memset(longname, 'n', sizeof(longname));
	nb_dir_with(&b, longname, CASTORE_MAX_NAME_LEN + 1);
	CHECK_REJECT(&b, "too long");
	nb_dir_with(&b, longname, CASTORE_MAX_NAME_LEN);
	CHECK_ACCEPT(&b);
	nb_dir_with(&b, "...", 3);
	CHECK_ACCEPT(&b);
}

static void nb_two_entries(struct nb *b, const char *first, const char *second)
{
	nb_tags(b, "nix-archive-1", "(", "type", "directory", NULL);
	nb_entry(b, first);
	nb_file(b, false, "1");
	nb_tags(b, ")", NULL);
	nb_entry(b, second);
	nb_file(b, false, "2");
	nb_tags(b, ")", ")", NULL);
}

TEST(nar_reject_order)
{
	struct nb b = {0};

	nb_two_entries(&b, "b", "a");
	CHECK_REJECT(&b, "not sorted");
	nb_two_entries(&b, "a", "B"); /* bytewise: 'B' < 'a' */
	CHECK_REJECT(&b, "not sorted");
	nb_two_entries(&b, "ab", "a");
	CHECK_REJECT(&b, "not sorted");
	nb_two_entries(&b, "a", "a");
	CHECK_REJECT(&b, "duplicate");
	nb_two_entries(&b, "\xc3\xa9", "~t"); /* 0xc3 > '~' */
	CHECK_REJECT(&b, "not sorted");
	nb_two_entries(&b, "B", "a");
	CHECK_ACCEPT(&b);
	nb_two_entries(&b, "a", "ab");
	CHECK_ACCEPT(&b);
	nb_two_entries(&b, "A", "a"); /* case-only difference: fine on Linux */
	CHECK_ACCEPT(&b);
}

TEST(nar_reject_regular_fields)
{
	struct nb b = {0};

	/* executable with a non-empty value */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "executable", "1", "contents", "", ")",
		NULL);
	CHECK_REJECT(&b, "non-empty value");
	/* executable after contents */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "contents", "", "executable", "", ")",
		NULL);
	CHECK_REJECT(&b, "expected ')'");
	/* two contents */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "contents", "a", "contents", "b", ")",
		NULL);
	CHECK_REJECT(&b, "expected ')'");
	/* no contents */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", ")", NULL);
	CHECK_REJECT(&b, "expected 'contents'");
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "executable", "", ")", NULL);
	CHECK_REJECT(&b, "expected 'contents'");
	/* executable twice */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "executable", "", "executable", "",
		"contents", "", ")", NULL);
	CHECK_REJECT(&b, "expected 'contents'");
	/* the accepted forms */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "executable", "", "contents", "", ")",
		NULL);
	CHECK_ACCEPT(&b);
}

TEST(nar_reject_structure)
{
	struct nb b = {0};

	/* entry without node */
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", "entry", "(", "name", "a", ")", ")",
		NULL);
	CHECK_REJECT(&b, "expected 'node'");
	/* node before name */
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", "entry", "(", "node", NULL);
	nb_file(&b, false, "");
	nb_tags(&b, ")", ")", NULL);
	CHECK_REJECT(&b, "expected 'name'");
	/* missing "(" / "type" */
	nb_tags(&b, "nix-archive-1", "type", "regular", "contents", "", ")", NULL);
	CHECK_REJECT(&b, "expected '('");
	nb_tags(&b, "nix-archive-1", "(", "regular", "contents", "", ")", NULL);
	CHECK_REJECT(&b, "expected 'type'");
	/* something else than entry in a directory */
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", "name", "a", ")", NULL);
	CHECK_REJECT(&b, "expected 'entry' or ')'");
	/* entry not closed */
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", NULL);
	nb_entry(&b, "a");
	nb_file(&b, false, "");
	nb_tags(&b, "entry", NULL);
	CHECK_REJECT(&b, "expected ')'");
	/* symlink fields */
	nb_tags(&b, "nix-archive-1", "(", "type", "symlink", "contents", "x", ")", NULL);
	CHECK_REJECT(&b, "expected 'target'");
	nb_tags(&b, "nix-archive-1", "(", "type", "symlink", "target", "x", "target", "y", ")",
		NULL);
	CHECK_REJECT(&b, "expected ')'");
}

static void nb_symlink(struct nb *b, const void *target, size_t len)
{
	nb_tags(b, "nix-archive-1", "(", "type", "symlink", "target", NULL);
	nb_str(b, target, len);
	nb_tags(b, ")", NULL);
}

TEST(nar_reject_symlink_target)
{
	uint8_t longtarget[CASTORE_MAX_TARGET_LEN + 1];
	struct nb b = {0};

	nb_symlink(&b, "", 0);
	CHECK_REJECT(&b, "empty");
	nb_symlink(&b, "a\0b", 3);
	CHECK_REJECT(&b, "NUL");
	memset(longtarget, 't', sizeof(longtarget));
	nb_symlink(&b, longtarget, sizeof(longtarget));
	CHECK_REJECT(&b, "too long");
	nb_symlink(&b, longtarget, CASTORE_MAX_TARGET_LEN);
	CHECK_ACCEPT(&b);
}

TEST(nar_reject_tags_and_types)
{
	char tag[NAR_MAX_TAG + 2];
	struct nb b = {0};

	memset(tag, 'x', sizeof(tag) - 1);
	tag[NAR_MAX_TAG + 1] = '\0';
	nb_tags(&b, "nix-archive-1", "(", "type", tag, ")", NULL);
	CHECK_REJECT(&b, "tag at byte 56 is too long");
	tag[NAR_MAX_TAG] = '\0'; /* 32 bytes: read, then refused as a type */
	nb_tags(&b, "nix-archive-1", "(", "type", tag, ")", NULL);
	CHECK_REJECT(&b, "unknown file type");
	nb_tags(&b, "nix-archive-1", "(", "type", "fifo", ")", NULL);
	CHECK_REJECT(&b, "unknown file type 'fifo' at byte 56");
	nb_tags(&b, "nix-archive-1", "(", "type", "Regular", "contents", "", ")", NULL);
	CHECK_REJECT(&b, "unknown file type");
	/* a huge length must be refused before anything is allocated */
	nb_u64(&b, UINT64_MAX);
	CHECK_REJECT(&b, "doesn't look like a NAR");
	nb_tags(&b, "nix-archive-1", NULL);
	nb_u64(&b, UINT64_MAX);
	CHECK_REJECT(&b, "tag at byte 24 is too long");
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", "entry", "(", "name", NULL);
	nb_u64(&b, UINT64_MAX);
	CHECK_REJECT(&b, "too long");
}

TEST(nar_reject_depth)
{
	struct nb b = {0};

	nb_chain(&b, NAR_MAX_DEPTH); /* depths 0..63 */
	CHECK_ACCEPT(&b);
	nb_chain(&b, NAR_MAX_DEPTH + 1);
	CHECK_REJECT(&b, "maximum depth of 64");
	/* a file at depth 64 is refused too (every object counts) */
	nb_tags(&b, "nix-archive-1", NULL);
	for (int i = 0; i < NAR_MAX_DEPTH; i++) {
		nb_tags(&b, "(", "type", "directory", NULL);
		nb_entry(&b, "d");
	}
	nb_file(&b, false, "deep");
	for (int i = 0; i < NAR_MAX_DEPTH; i++)
		nb_tags(&b, ")", ")", NULL);
	CHECK_REJECT(&b, "maximum depth");
}

TEST(nar_reject_padding)
{
	struct nb b = {0};

	/* in a tag */
	nb_tags(&b, "nix-archive-1", NULL);
	nb_u64(&b, 1);
	nb_raw(&b, "(\0\0\0\0\0\0\1", 8);
	nb_tags(&b, "type", "regular", "contents", "", ")", NULL);
	CHECK_REJECT(&b, "non-zero padding at byte 33");
	/* after file contents */
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "contents", NULL);
	nb_u64(&b, 3);
	nb_raw(&b, "abc\0\0\0\0x", 8);
	nb_tags(&b, ")", NULL);
	CHECK_REJECT(&b, "non-zero padding");
	/* in a name */
	nb_tags(&b, "nix-archive-1", "(", "type", "directory", "entry", "(", "name", NULL);
	nb_u64(&b, 1);
	nb_raw(&b, "a\0\0\0\0\0\0 ", 8);
	nb_tags(&b, "node", NULL);
	nb_file(&b, false, "");
	nb_tags(&b, ")", ")", NULL);
	CHECK_REJECT(&b, "non-zero padding");
	/* in a symlink target */
	nb_tags(&b, "nix-archive-1", "(", "type", "symlink", "target", NULL);
	nb_u64(&b, 2);
	nb_raw(&b, "ab\0\0\0\0\0\x80", 8);
	nb_tags(&b, ")", NULL);
	CHECK_REJECT(&b, "non-zero padding");
}

/* Every strict prefix of a valid NAR is truncated; so is a short read mid-file. */
TEST(nar_reject_truncation)
{
	size_t len = 0;
	uint8_t *nar = vector_nar("NAR_CONTENTS_COMPLICATED", &len);
	struct nb b = {0};

	CHECK(nar);
	for (size_t cut = 0; cut < len; cut++) {
		int rc;

		nb_raw(&b, nar, cut);
		rc = ingest_nb(&b);
		nb_free(&b);
		CHECK_MSG(rc == -EINVAL, "prefix of %zu bytes: %d", cut, rc);
	}
	free(nar);
	nb_tags(&b, "nix-archive-1", "(", "type", "regular", "contents", NULL);
	nb_u64(&b, 1000);
	nb_raw(&b, "short", 5);
	CHECK_REJECT(&b, "truncated at byte 101");
}

TEST(nar_reject_trailing_bytes)
{
	size_t len = 0;
	uint8_t *nar = vector_nar("NAR_CONTENTS_HELLOWORLD", &len);
	struct nb b = {0};

	CHECK(nar);
	nb_raw(&b, nar, len);
	nb_raw(&b, "\0", 1);
	CHECK_REJECT(&b, "trailing bytes");
	nb_raw(&b, nar, len);
	nb_raw(&b, nar, len); /* two NARs back to back */
	CHECK_REJECT(&b, "trailing bytes after its end at byte 128");
	free(nar);
}

/* Read errors and service errors are passed up unchanged. */
static int failing_read(void *ctx, void *buf, size_t len, size_t *n)
{
	size_t *budget = ctx;

	if (*budget == 0)
		return sf_err(-ECONNRESET, "connection reset");
	*n = len < *budget ? len : *budget;
	memset(buf, 0, *n);
	*budget -= *n;
	return 0;
}

TEST(nar_ingest_read_error)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	size_t budget = 0;
	struct node root;
	struct tmem m;
	int rc;

	CHECK_OK(tmem_init(&m, 4));
	rc = nar_ingest(&m.blobs->svc, &m.dirs->svc, DIR_SIZE_SPEC, failing_read, &budget, &root,
			target, NULL);
	tmem_release(&m);
	CHECK_ERR(rc, -ECONNRESET);
}
