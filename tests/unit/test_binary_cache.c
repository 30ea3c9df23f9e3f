/* test_binary_cache.c - the binary cache backend: decompression, transport
 * and the fetch-through PathInfo service, against file:// caches built by
 * hand in a temporary directory. */
#include "harness.h"

#include "backends/binary_cache/bc_internal.h"
#include "backends/binary_cache/binary_cache.h"
#include "backends/memory/memory.h"
#include "backends/registry.h"
#include "store/nix_hash.h"
#include "store/signing.h"

#include <bzlib.h>
#include <fcntl.h>
#include <ftw.h>
#include <lzma.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* The signature vector of vectors.json (a throwaway key). */
#define SK                                                                                         \
	"test-cache-1:VuugjxHIejcnsERzSQvYThOot+k5wZY5mqyPmkizG5+VY7huWJuxBiMGweZUMWfY313Qr/"      \
	"0N9piZq2HsO6tVFQ=="
#define PK	 "test-cache-1:lWO4blibsQYjBsHmVDFn2N9d0K/9DfaYmath7DurVRU="
#define PK_OTHER "test-cache-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define ENTRY(h, n, c, data, len)                                                                  \
	.hash = h, .name = n, .compression = c, .contents = data, .contents_len = len

struct buf {
	uint8_t *data;
	size_t len, cap;
};

/* Grows geometrically: the 4 MiB samples are built a line at a time, and
 * ASan's realloc always copies, which made that quadratic (minutes). */
static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void nar_str(struct buf *b, const void *s, size_t n)
{
	uint8_t len[8], pad[8] = {0};

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (8 * i));
	buf_add(b, len, 8);
	buf_add(b, s, n);
	buf_add(b, pad, (8 - n % 8) % 8);
}

#define NS(b, s) nar_str(b, s, strlen(s))

/* The NAR of one regular file. */
static struct buf nar_of_file(const char *contents, size_t n, bool exec)
{
	struct buf b = {0};

	NS(&b, "nix-archive-1"), NS(&b, "("), NS(&b, "type"), NS(&b, "regular");
	if (exec)
		NS(&b, "executable"), NS(&b, "");
	NS(&b, "contents"), nar_str(&b, contents, n), NS(&b, ")");
	return b;
}

static struct buf compress_buf(const char *kind, const struct buf *in)
{
	struct buf out = {0};
	size_t cap = in->len + in->len / 2 + 65536;

	out.data = malloc(cap);
	out.cap = cap;
	if (!strcmp(kind, "xz")) {
		size_t pos = 0;

		if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, in->data, in->len, out.data,
					    &pos, cap) == LZMA_OK)
			out.len = pos;
	} else if (!strcmp(kind, "zstd")) {
		size_t r = ZSTD_compress(out.data, cap, in->data, in->len, 3);

		out.len = ZSTD_isError(r) ? 0 : r;
	} else if (!strcmp(kind, "bzip2")) {
		unsigned n = (unsigned)cap;

		if (BZ2_bzBuffToBuffCompress((char *)out.data, &n, (char *)in->data,
					     (unsigned)in->len, 9, 0, 0) == BZ_OK)
			out.len = n;
	} else {
		memcpy(out.data, in->data, in->len);
		out.len = in->len;
	}
	return out;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -EIO;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* One path put into a hand-made cache. */
struct entry {
	const char *hash; /* 32 nix32 chars */
	const char *name;
	const char *compression; /* "none", "xz", "zstd", "bzip2", or another label */
	const char *contents;
	size_t contents_len;
	bool unsigned_;
	bool ca;		/* make it content-addressed (hash ignored) */
	const char *url;	/* override the URL line */
	const char *store_path; /* override the StorePath line */
	bool bad_nar_hash;
	size_t truncate_to; /* cut the NAR file (0: no) */
};

struct cache {
	char dir[64];
	char url[80];
};

static int cache_init(struct cache *c)
{
	char nar[96];

	snprintf(c->dir, sizeof(c->dir), "/tmp/storefs-bc.XXXXXX");
	if (!mkdtemp(c->dir))
		return -EIO;
	snprintf(c->url, sizeof(c->url), "file://%s", c->dir);
	snprintf(nar, sizeof(nar), "%s/nar", c->dir);
	return mkdir(nar, 0755) == 0 ? 0 : -EIO;
}

static const char *ext_of(const char *comp)
{
	if (!strcmp(comp, "xz"))
		return ".xz";
	if (!strcmp(comp, "zstd"))
		return ".zst";
	if (!strcmp(comp, "bzip2"))
		return ".bz2";
	return "";
}

static int sig_line(const char *fp, char *out, size_t len)
{
	struct nix_secret_key sk;
	struct path_signature sig;
	char *text;
	int rc = signing_secret_key_parse(SK, strlen(SK), &sk);

	if (rc == 0)
		rc = signing_sign(&sk, fp, strlen(fp), &sig);
	if (rc < 0)
		return rc;
	rc = signing_sig_format(&sig, &text);
	free(sig.name);
	if (rc == 0) {
		snprintf(out, len, "Sig: %s\n", text);
		free(text);
	}
	return rc;
}

/* Writes the NAR file and the narinfo of `e`; `sp_out` gets its path. */
/* The store path of entry `e` whose NAR has SHA-256 `h` (and its CA
 * string into `ca` for a content-addressed one). */
static int entry_path(const struct entry *e, const uint8_t h[32], struct store_path *sp, char *ca)
{
	char base[256];
	int rc;

	if (e->ca) {
		rc = store_path_make_fixed(true, "sha256", h, 32, e->name, sp);
		return rc ? rc : ca_print(CA_NAR_SHA256, h, 32, ca);
	}
	snprintf(base, sizeof(base), "%s-%s", e->hash, e->name);
	return store_path_parse_basename(base, strlen(base), sp);
}

static int cache_put(const struct cache *c, const struct entry *e, struct store_path *sp_out)
{
	struct buf nar = nar_of_file(e->contents, e->contents_len, false), file;
	struct nix_hash h = {.algo = NIX_HASH_SHA256};
	char hashtext[NIX_HASH_TEXT_MAX], ca[NIX_CA_TEXT_MAX] = "", base[256], full[512];
	char path[512], url[256], sig[256] = "", fp[1024], *ni;
	struct store_path sp;
	int rc = nix_hash_buf(NIX_HASH_SHA256, nar.data, nar.len, h.digest);

	if (rc == 0)
		rc = entry_path(e, h.digest, &sp, ca);
	if (rc < 0) {
		free(nar.data);
		return rc;
	}
	store_path_basename(&sp, base);
	store_path_full(&sp, full);
	nix_hash_print(&h, NIX_HASH_NIX32, hashtext);
	if (e->bad_nar_hash)
		h.digest[0] ^= 1, nix_hash_print(&h, NIX_HASH_NIX32, hashtext);
	snprintf(url, sizeof(url), "nar/%.32s%s.nar%s", base, e->compression,
		 ext_of(e->compression));
	file = compress_buf(e->compression, &nar);
	snprintf(path, sizeof(path), "%s/%s", c->dir, url);
	rc = write_file(path, file.data, e->truncate_to ? e->truncate_to : file.len);
	snprintf(fp, sizeof(fp), "1;%s;%s;%zu;", full, hashtext, nar.len);
	if (rc == 0 && !e->unsigned_)
		rc = sig_line(fp, sig, sizeof(sig));
	if (rc == 0 &&
	    asprintf(&ni,
		     "StorePath: %s\nURL: %s\nCompression: %s\nNarHash: %s\n"
		     "NarSize: %zu\nReferences: \n%s%s%s%s",
		     e->store_path ? e->store_path : full, e->url ? e->url : url, e->compression,
		     hashtext, nar.len, sig, *ca ? "CA: " : "", ca, *ca ? "\n" : "") < 0)
		rc = -ENOMEM;
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/%.32s.narinfo", c->dir, base);
		rc = write_file(path, ni, strlen(ni));
		free(ni);
	}
	free(nar.data);
	free(file.data);
	*sp_out = sp;
	return rc;
}

/* --- decompression --- */

struct mem_src {
	const uint8_t *data;
	size_t len, pos, chunk;
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *n)
{
	struct mem_src *m = ctx;
	size_t k = m->len - m->pos;

	if (k > len)
		k = len;
	if (k > m->chunk)
		k = m->chunk;
	memcpy(buf, m->data + m->pos, k);
	m->pos += k;
	*n = k;
	return 0;
}

/* Decompresses `in` labelled `kind` through small reads into `out`. */
static int decomp_all(enum nar_compression kind, const struct buf *in, struct buf *out)
{
	struct mem_src src = {in->data, in->len, 0, 777};
	struct nar_decomp *d;
	uint8_t tmp[1000];
	size_t n;
	int rc = nar_decomp_new(kind, mem_read, &src, &d);

	while (rc == 0) {
		rc = nar_decomp_read(d, tmp, sizeof(tmp), &n);
		if (rc == 0 && n == 0)
			break;
		if (rc == 0)
			buf_add(out, tmp, n);
	}
	nar_decomp_free(d);
	return rc;
}

static struct buf sample_data(size_t len)
{
	struct buf b = {0};
	char line[64];

	while (b.len < len) {
		int n = snprintf(line, sizeof(line), "line %zu of the sample %zu\n", b.len,
				 (b.len * 2654435761u) % 1000);

		buf_add(&b, line, (size_t)n);
	}
	return b;
}

static void check_decomp_kind(const char *label, enum nar_compression kind)
{
	struct buf data = sample_data(300000), packed = compress_buf(label, &data), out = {0};
	struct buf cut = packed, extra = {0};

	CHECK_MSG(packed.len > 0, "compressing %s failed", label);
	CHECK_OK(decomp_all(kind, &packed, &out));
	CHECK_EQ(out.len, data.len);
	CHECK_MEM(out.data, data.data, data.len);
	free(out.data), out = (struct buf){0};
	if (kind != NAR_COMP_NONE) {
		cut.len = packed.len - 10;
		CHECK_ERR(decomp_all(kind, &cut, &out), -EIO);
		free(out.data), out = (struct buf){0};
		buf_add(&extra, packed.data, packed.len);
		buf_add(&extra, "garbage!", 8);
		CHECK_ERR(decomp_all(kind, &extra, &out), -EIO);
		free(out.data), out = (struct buf){0};
		cut.len = 0;
		CHECK_ERR(decomp_all(kind, &cut, &out), -EIO);
		free(out.data);
	}
	free(extra.data);
	free(data.data);
	free(packed.data);
}

TEST(bc_decompress_round_trips)
{
	check_decomp_kind("none", NAR_COMP_NONE);
	check_decomp_kind("xz", NAR_COMP_XZ);
	check_decomp_kind("zstd", NAR_COMP_ZSTD);
	check_decomp_kind("bzip2", NAR_COMP_BZIP2);
}

TEST(bc_decompress_rejects_wrong_label)
{
	struct buf data = sample_data(5000), xz = compress_buf("xz", &data), out = {0};

	CHECK_ERR(decomp_all(NAR_COMP_ZSTD, &xz, &out), -EIO);
	CHECK_ERR(decomp_all(NAR_COMP_BZIP2, &xz, &out), -EIO);
	CHECK_ERR(decomp_all(NAR_COMP_XZ, &data, &out), -EIO);
	free(out.data);
	free(data.data);
	free(xz.data);
}

TEST(bc_decompress_concatenated_streams)
{
	struct buf a = sample_data(4000), b = sample_data(9000), both = {0}, out = {0};
	const char *kinds[] = {"xz", "zstd", "bzip2"};
	enum nar_compression ids[] = {NAR_COMP_XZ, NAR_COMP_ZSTD, NAR_COMP_BZIP2};

	for (int i = 0; i < 3; i++) {
		struct buf pa = compress_buf(kinds[i], &a), pb = compress_buf(kinds[i], &b);

		both.len = 0, out.len = 0;
		buf_add(&both, pa.data, pa.len);
		buf_add(&both, pb.data, pb.len);
		CHECK_OK(decomp_all(ids[i], &both, &out));
		CHECK_EQ(out.len, a.len + b.len);
		CHECK_MEM(out.data + a.len, b.data, b.len);
		free(pa.data);
		free(pb.data);
	}
	free(a.data), free(b.data), free(both.data), free(out.data);
}

/* `copies` times `unit` in one buffer. */
static struct buf repeat_buf(const void *unit, size_t len, size_t copies)
{
	struct buf b = {malloc(len * copies + 1), len * copies, len * copies + 1};

	for (size_t i = 0; i < copies; i++)
		memcpy(b.data + i * len, unit, len);
	return b;
}

/* Input that decodes to nothing, forever (here: 4 MiB of it) must fail, not
 * be read to its end: zstd skippable frames, empty bzip2 streams. */
TEST(bc_decompress_refuses_input_without_output)
{
	static uint8_t frame[65536];
	char empty_bz[64];
	unsigned bz_len = sizeof(empty_bz);
	struct buf in, out = {0};

	memcpy(frame, "\x50\x2a\x4d\x18", 4); /* a skippable frame, LE magic */
	frame[4] = 0xf8, frame[5] = 0xff, frame[6] = 0, frame[7] = 0; /* 65528 bytes */
	in = repeat_buf(frame, sizeof(frame), 64);
	CHECK_ERR(decomp_all(NAR_COMP_ZSTD, &in, &out), -EIO);
	free(in.data);
	CHECK_EQ(BZ2_bzBuffToBuffCompress(empty_bz, &bz_len, (char *)"", 0, 9, 0, 0), BZ_OK);
	in = repeat_buf(empty_bz, bz_len, 4 * 1024 * 1024 / bz_len);
	CHECK_ERR(decomp_all(NAR_COMP_BZIP2, &in, &out), -EIO);
	free(in.data);
	free(out.data);
}

TEST(bc_compression_labels)
{
	enum nar_compression c;

	CHECK_OK(nar_compression_parse(NULL, &c));
	CHECK_EQ(c, NAR_COMP_BZIP2);
	CHECK_OK(nar_compression_parse("", &c));
	CHECK_EQ(c, NAR_COMP_NONE);
	CHECK_OK(nar_compression_parse("zstd", &c));
	CHECK_EQ(c, NAR_COMP_ZSTD);
	CHECK_ERR(nar_compression_parse("gzip", &c), -EINVAL);
	CHECK_ERR(nar_compression_parse("XZ", &c), -EINVAL);
}

/* --- transport --- */

TEST(bc_transport_urls)
{
	char *data;
	size_t len;

	CHECK_OK(bc_url_check("file:///tmp/x"));
	CHECK_OK(bc_url_check("https://cache.example.org/sub"));
	CHECK_ERR(bc_url_check("file://tmp/x"), -EINVAL);
	CHECK_ERR(bc_url_check("ftp://host/x"), -EINVAL);
	CHECK_ERR(bc_url_check("http:///x"), -EINVAL);
	CHECK_ERR(bc_url_check("http://host/a b"), -EINVAL);
	CHECK_ERR(bc_fetch_all("file:///nonexistent/storefs/x", 100, 1000, &data, &len), -ENOENT);
}

TEST(bc_transport_file_limits)
{
	struct cache c;
	char path[128], url[160], *data;
	size_t len;

	CHECK_OK(cache_init(&c));
	snprintf(path, sizeof(path), "%s/f", c.dir);
	snprintf(url, sizeof(url), "file://%s", path);
	CHECK_OK(write_file(path, "0123456789", 10));
	CHECK_OK(bc_fetch_all(url, 10, 1000, &data, &len));
	CHECK_EQ(len, 10);
	CHECK_STR(data, "0123456789");
	free(data);
	CHECK_ERR(bc_fetch_all(url, 9, 1000, &data, &len), -EIO);
	rm_rf(c.dir);
}

/* --- the service --- */

struct fixture {
	struct cache c;
	struct store *st;
};

static int fx_open(struct fixture *fx, const char *keys, unsigned flags)
{
	struct store *local;
	int rc = memory_store_new(DIR_SIZE_SPEC, &local);

	if (rc == 0)
		rc = binary_cache_store_open(fx->c.url, keys, flags, local, &fx->st);
	return rc;
}

static void fx_close(struct fixture *fx)
{
	store_free(fx->st);
	rm_rf(fx->c.dir);
}

static int read_blob(struct store *st, const struct node *n, struct buf *out)
{
	struct blob_reader *r;
	int rc = blob_service_open_read(st->blobs, &n->digest, &r);

	if (rc < 0)
		return rc;
	out->data = malloc(r->size + 1);
	out->len = r->size;
	rc = blob_reader_pread_full(r, out->data, r->size, 0);
	blob_reader_close(r);
	return rc;
}

static void check_fetch(const char *comp)
{
	struct entry e = {
	    ENTRY("0a0b0c0d0f0g0h0i0j0k0l0m0n0p0q0r", "hello", comp, "hello world\n", 12)};
	struct fixture fx = {0};
	struct binary_cache_stats stats;
	struct path_info *pi;
	struct store_path sp;
	struct buf got = {0};

	CHECK_OK(cache_init(&fx.c));
	CHECK_OK(cache_put(&fx.c, &e, &sp));
	CHECK_OK(fx_open(&fx, PK, 0));
	CHECK_OK(path_info_service_get(fx.st->paths, sp.digest, &pi));
	CHECK_STR(pi->path.name, "hello");
	CHECK_EQ(pi->root.kind, NODE_FILE);
	CHECK_EQ(pi->n_sigs, 1);
	CHECK_OK(read_blob(fx.st, &pi->root, &got));
	CHECK_EQ(got.len, 12);
	CHECK_MEM(got.data, "hello world\n", 12);
	path_info_free(pi);
	free(got.data);
	/* The second lookup is answered locally. */
	CHECK_OK(path_info_service_get(fx.st->paths, sp.digest, &pi));
	path_info_free(pi);
	binary_cache_stats(fx.st->paths, &stats);
	CHECK_EQ(stats.narinfo_fetches, 1);
	CHECK_EQ(stats.nar_fetches, 1);
	CHECK_EQ(stats.paths_added, 1);
	fx_close(&fx);
}

TEST(bc_fetch_each_compression)
{
	check_fetch("none");
	check_fetch("xz");
	check_fetch("zstd");
	check_fetch("bzip2");
}

static int count_one(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	(*(int *)ctx)++;
	return 0;
}

static int count_paths(struct store *st)
{
	int n = 0;

	return path_info_service_list(st->paths, 0, count_one, &n) == 0 ? n : -1;
}

/* Stores `e`, opens with `keys` and `flags`: get must return `code` (and
 * then nothing may be registered) or 0. */
static void check_get(const struct entry *e, const char *keys, unsigned flags, int code)
{
	struct fixture fx = {0};
	struct path_info *pi = NULL;
	struct store_path sp;

	CHECK_OK(cache_init(&fx.c));
	CHECK_OK(cache_put(&fx.c, e, &sp));
	CHECK_OK(fx_open(&fx, keys, flags));
	CHECK_ERR(path_info_service_get(fx.st->paths, sp.digest, &pi), code);
	CHECK_EQ(count_paths(fx.st), code == 0 ? 1 : 0);
	path_info_free(pi);
	fx_close(&fx);
}

#define HASH1 "1b1c1d1f1g1h1i1j1k1l1m1n1p1q1r1s"

TEST(bc_signatures)
{
	struct entry e = {ENTRY(HASH1, "signed", "xz", "data", 4)};
	struct entry u = {ENTRY(HASH1, "unsigned", "none", "data", 4), .unsigned_ = true};

	check_get(&e, PK, 0, 0);
	check_get(&e, PK_OTHER, 0, -EIO);
	check_get(&e, NULL, 0, -EIO);
	check_get(&e, PK_OTHER " " PK, 0, 0);
	check_get(&u, PK, 0, -EIO);
	check_get(&u, PK, BINARY_CACHE_NO_CHECK_SIGS, 0);
	check_get(&e, PK_OTHER, BINARY_CACHE_NO_CHECK_SIGS, 0);
}

TEST(bc_ca_path_needs_no_signature)
{
	struct entry e = {ENTRY(NULL, "ca-file", "zstd", "fixed\n", 6), .unsigned_ = true,
			  .ca = true};

	check_get(&e, NULL, 0, 0);
	check_get(&e, PK_OTHER, 0, 0);
}

TEST(bc_refuses_bad_nars)
{
	struct entry bad_hash = {ENTRY(HASH1, "p", "none", "contents", 8), .bad_nar_hash = true};
	struct entry cut = {ENTRY(HASH1, "p", "none", "contents", 8), .truncate_to = 50};
	struct entry cut_xz = {ENTRY(HASH1, "p", "xz", "contents", 8), .truncate_to = 40};
	struct entry cut_zstd = {ENTRY(HASH1, "p", "zstd", "contents", 8), .truncate_to = 20};
	struct entry other_comp = {ENTRY(HASH1, "p", "gzip", "contents", 8)};

	check_get(&bad_hash, PK, 0, -EIO);
	check_get(&cut, PK, 0, -EIO);
	check_get(&cut_xz, PK, 0, -EIO);
	check_get(&cut_zstd, PK, 0, -EIO);
	check_get(&other_comp, PK, 0, -EIO);
}

TEST(bc_refuses_bad_narinfos)
{
	struct entry other = {ENTRY(HASH1, "p", "none", "x", 1),
			      .store_path = "/nix/store/2b1c1d1f1g1h1i1j1k1l1m1n1p1q1r1s-p"};
	struct entry up = {ENTRY(HASH1, "p", "none", "x", 1), .url = "../outside.nar"};
	struct entry up2 = {ENTRY(HASH1, "p", "none", "x", 1), .url = "nar/../../x.nar"};
	struct entry abs = {ENTRY(HASH1, "p", "none", "x", 1), .url = "/etc/passwd"};
	struct entry fileurl = {ENTRY(HASH1, "p", "none", "x", 1), .url = "file:///etc/passwd"};
	struct entry missing = {ENTRY(HASH1, "p", "none", "x", 1), .url = "nar/missing.nar"};
	struct entry badpath = {ENTRY(HASH1, "p", "none", "x", 1), .store_path = "/nix/store/x"};

	check_get(&other, PK, 0, -EIO);
	check_get(&up, PK, 0, -EIO);
	check_get(&up2, PK, 0, -EIO);
	check_get(&abs, PK, 0, -EIO);
	check_get(&fileurl, PK, 0, -EIO);
	check_get(&missing, PK, 0, -EIO);
	check_get(&badpath, PK, 0, -EIO);
}

TEST(bc_bad_configuration)
{
	struct store *local, *st = NULL;

	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &local));
	CHECK_ERR(binary_cache_store_open("ftp://x/y", PK, 0, local, &st), -EINVAL);
	CHECK_ERR(binary_cache_store_open("file:///tmp", "nokey", 0, local, &st), -EINVAL);
	/* The caller still owns `local` after a failure. */
	CHECK_OK(binary_cache_store_open("file:///tmp/", PK, 0, local, &st));
	CHECK(strstr(st->location, "file:///tmp") != NULL);
	store_free(st);
}

/* A failure is not remembered: once the cache is fixed, get succeeds. */
TEST(bc_retry_after_failure)
{
	struct entry e = {ENTRY(HASH1, "retry", "zstd", "again\n", 6), .truncate_to = 10};
	struct fixture fx = {0};
	struct binary_cache_stats stats;
	struct path_info *pi;
	struct store_path sp;

	CHECK_OK(cache_init(&fx.c));
	CHECK_OK(cache_put(&fx.c, &e, &sp));
	CHECK_OK(fx_open(&fx, PK, 0));
	CHECK_ERR(path_info_service_get(fx.st->paths, sp.digest, &pi), -EIO);
	CHECK_ERR(path_info_service_get(fx.st->paths, sp.digest, &pi), -EIO);
	CHECK_EQ(count_paths(fx.st), 0);
	e.truncate_to = 0;
	CHECK_OK(cache_put(&fx.c, &e, &sp));
	CHECK_OK(path_info_service_get(fx.st->paths, sp.digest, &pi));
	path_info_free(pi);
	CHECK_EQ(count_paths(fx.st), 1);
	binary_cache_stats(fx.st->paths, &stats);
	CHECK_EQ(stats.nar_fetches, 3);
	CHECK_EQ(stats.failures, 2);
	fx_close(&fx);
}

struct race {
	struct store *st;
	const uint8_t *digest;
	int rc;
};

static void *race_get(void *ctx)
{
	struct race *r = ctx;
	struct path_info *pi;

	r->rc = path_info_service_get(r->st->paths, r->digest, &pi);
	if (r->rc == 0)
		path_info_free(pi);
	return NULL;
}

TEST(bc_concurrent_gets_fetch_once)
{
	struct buf big = sample_data(4 << 20);
	struct entry e = {ENTRY(HASH1, "big", "xz", (const char *)big.data, big.len)};
	struct fixture fx = {0};
	struct binary_cache_stats stats;
	struct race r[8];
	pthread_t th[8];
	struct store_path sp;

	CHECK_OK(cache_init(&fx.c));
	CHECK_OK(cache_put(&fx.c, &e, &sp));
	CHECK_OK(fx_open(&fx, PK, 0));
	for (int i = 0; i < 8; i++) {
		r[i] = (struct race){fx.st, sp.digest, 1};
		CHECK(pthread_create(&th[i], NULL, race_get, &r[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_OK(r[i].rc);
	}
	binary_cache_stats(fx.st->paths, &stats);
	CHECK_EQ(stats.nar_fetches, 1);
	CHECK_EQ(stats.paths_added, 1);
	free(big.data);
	fx_close(&fx);
}

TEST(bc_nix_store_urls)
{
	struct cache c;
	struct store *st = NULL;
	char url[512];

	CHECK_OK(cache_init(&c));
	snprintf(url, sizeof(url),
		 "nix+http://127.0.0.1:9/sub/?trusted-public-keys=%s%%20%s&cache=%s/local",
		 PK_OTHER, PK, c.dir);
	CHECK_OK(store_open(url, STORE_OPEN_READONLY, &st));
	CHECK(strstr(st->location, "http://127.0.0.1:9/sub/") == st->location);
	store_free(st);
	snprintf(url, sizeof(url), "nix+https://h/?no-check-sigs=1&cache=%s/local", c.dir);
	CHECK_OK(store_open(url, 0, &st));
	store_free(st);
	snprintf(url, sizeof(url), "nix+http://h/?cache=%s/local&bogus=1", c.dir);
	CHECK_ERR(store_open(url, 0, &st), -EINVAL);
	snprintf(url, sizeof(url), "nix+http://h/?cache=%s/local&trusted-public-keys=%%zz", c.dir);
	CHECK_ERR(store_open(url, 0, &st), -EINVAL);
	snprintf(url, sizeof(url), "nix+http://h/?cache=%s/local&trusted-public-keys=bad", c.dir);
	CHECK_ERR(store_open(url, 0, &st), -EINVAL);
	CHECK_ERR(store_open("nix+ftp://h/", 0, &st), -EINVAL);
	CHECK_ERR(store_open("nix+http:///x", 0, &st), -EINVAL);
	rm_rf(c.dir);
}
