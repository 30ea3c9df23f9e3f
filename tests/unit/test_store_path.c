/* test_store_path.c - nixbase32, Nix hash strings, CA strings and store
 * paths against vectors.json ("nixbase32", "nar", "store_paths") and the
 * rejecting cases of docs/store-paths.md. */
#include "harness.h"

#include "common/encoding.h"
#include "store/ca_verify.h"
#include "store/nix_hash.h"
#include "store/nixbase32.h"
#include "store/store_path.h"

#include <stdio.h>
#include <stdlib.h>

TEST(nixbase32_vectors)
{
	const cJSON *vs = vectors_get("nixbase32", NULL), *v;

	CHECK(vs && cJSON_GetArraySize(vs) >= 14);
	cJSON_ArrayForEach(v, vs)
	{
		const char *hex = vstr(v, "bytes_hex"), *text = vstr(v, "nix32");
		size_t len = 0;
		uint8_t *bytes = hex[0] ? hex_alloc(hex, &len) : calloc(1, 1), back[64];
		char out[128];

		CHECK(bytes);
		CHECK_EQ(nixbase32_encoded_len(len), strlen(text));
		nixbase32_encode(bytes, len, out);
		CHECK_STR(out, text);
		CHECK_OK(nixbase32_decode(text, strlen(text), back, len));
		CHECK_MEM(back, bytes, len);
		free(bytes);
	}
}

/* The nix32 forms of the NAR hashes, and the hash utility over the NARs. */
TEST(nixbase32_nar_hashes)
{
	const cJSON *nars = vectors_get("nar", NULL), *n;
	int seen = 0;

	CHECK(nars);
	cJSON_ArrayForEach(n, nars)
	{
		static const struct {
			const char *key;
			enum nix_hash_algo algo;
		} algos[] = {{"sha256_hex", NIX_HASH_SHA256},
			     {"sha1_hex", NIX_HASH_SHA1},
			     {"md5_hex", NIX_HASH_MD5},
			     {"sha512_hex", NIX_HASH_SHA512}};
		size_t len = 0, hl = 0;
		uint8_t *nar = hex_alloc(vstr(n, "nar_hex"), &len), *want, got[64];
		char text[128];

		CHECK(nar && len == (size_t)cJSON_GetObjectItem(n, "len")->valueint);
		for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
			if (!vstr(n, algos[a].key)[0])
				continue;
			want = hex_alloc(vstr(n, algos[a].key), &hl);
			CHECK(want && hl == nix_hash_len(algos[a].algo));
			CHECK_OK(nix_hash_buf(algos[a].algo, nar, len, got));
			CHECK_MEM(got, want, hl);
			free(want);
		}
		CHECK_OK(nix_hash_buf(NIX_HASH_SHA256, nar, len, got));
		nixbase32_encode(got, 32, text);
		CHECK_STR(text, vstr(n, "sha256_nix32"));
		free(nar);
		seen++;
	}
	CHECK_EQ(seen, 7);
}

TEST(nixbase32_rejects)
{
	const char *good = "0c5b8vw40dy178xlpddw65q9gf1h2186jcc3p4swinwggbllv8mk";
	const char *bad_chars = "eoutEA.-";
	uint8_t out[32];
	char s[64];

	CHECK_OK(nixbase32_decode(good, 52, out, 32));
	for (const char *c = bad_chars; *c; c++) {
		strcpy(s, good);
		s[10] = *c;
		CHECK_ERR(nixbase32_decode(s, 52, out, 32), -EINVAL);
	}
	/* The first char of 52 carries 4 overflow bits: only 0 and 1 fit. */
	strcpy(s, good);
	s[0] = '2';
	CHECK_ERR(nixbase32_decode(s, 52, out, 32), -EINVAL);
	s[0] = 'z';
	CHECK_ERR(nixbase32_decode(s, 52, out, 32), -EINVAL);
	s[0] = '1';
	CHECK_OK(nixbase32_decode(s, 52, out, 32));
	CHECK_ERR(nixbase32_decode("80", 2, out, 1), -EINVAL);
	CHECK_ERR(nixbase32_decode("g0", 2, out, 1), -EINVAL);
	CHECK_OK(nixbase32_decode("70", 2, out, 1));
	CHECK_OK(nixbase32_decode("0z", 2, out, 1));
	CHECK_EQ(out[0], 0x1f);
	/* Wrong lengths. */
	CHECK_ERR(nixbase32_decode(good, 51, out, 32), -EINVAL);
	CHECK_ERR(nixbase32_decode(good, 52, out, 31), -EINVAL);
	CHECK_ERR(nixbase32_decode("0z0", 3, out, 1), -EINVAL);
	CHECK_ERR(nixbase32_decode("", 0, out, 1), -EINVAL);
}

TEST(nix_hash_text_forms)
{
	const cJSON *nars = vectors_get("nar", NULL), *n, *src = NULL;
	struct nix_hash h, want = {.algo = NIX_HASH_SHA256};
	char text[NIX_HASH_TEXT_MAX], in[NIX_HASH_TEXT_MAX];

	cJSON_ArrayForEach(n, nars) if (!strncmp(vstr(n, "name"), "src", 3)) src = n;
	CHECK(src);
	CHECK_OK(hex_decode(vstr(src, "sha256_hex"), 64, want.digest, 32));
	const char *forms[] = {"nix32", "hex", "HEX", "base64", "sri"};
	for (size_t i = 0; i < 5; i++) {
		switch (i) {
		case 0:
			snprintf(in, sizeof(in), "sha256:%s", vstr(src, "sha256_nix32"));
			break;
		case 1:
		case 2:
			snprintf(in, sizeof(in), "sha256:%s", vstr(src, "sha256_hex"));
			for (char *p = in + 7; i == 2 && *p; p++)
				*p = (char)(*p >= 'a' ? *p - 32 : *p);
			break;
		case 3:
			snprintf(in, sizeof(in), "sha256:%s", vstr(src, "sha256_sri") + 7);
			break;
		case 4:
			snprintf(in, sizeof(in), "%s", vstr(src, "sha256_sri"));
			break;
		}
		CHECK_MSG(nix_hash_parse(in, strlen(in), &h) == 0, "form %s: %s", forms[i], in);
		CHECK(h.algo == NIX_HASH_SHA256);
		CHECK_MEM(h.digest, want.digest, 32);
	}
	nix_hash_print(&want, NIX_HASH_NIX32, text);
	CHECK(!strcmp(text + 7, vstr(src, "sha256_nix32")) && !strncmp(text, "sha256:", 7));
	nix_hash_print(&want, NIX_HASH_SRI, text);
	CHECK_STR(text, vstr(src, "sha256_sri"));
	nix_hash_print(&want, NIX_HASH_HEX, text);
	CHECK_STR(text + 7, vstr(src, "sha256_hex"));
	nix_hash_print(&want, NIX_HASH_BASE64, text);
	CHECK_STR(text + 7, vstr(src, "sha256_sri") + 7);
	/* Bare digests only when the algorithm is known. */
	CHECK_OK(nix_hash_parse_as(vstr(src, "sha256_nix32"), 52, NIX_HASH_SHA256, &h));
	CHECK_MEM(h.digest, want.digest, 32);
	CHECK_ERR(nix_hash_parse(vstr(src, "sha256_nix32"), 52, &h), -EINVAL);
}

TEST(nix_hash_rejects)
{
	const char *nix32 = "02f33bibsvlgqkkpm7kvxc7yd2j3402nhaw68xlfx4mm47s3q78f";
	struct nix_hash h;
	char s[128];

#define REJECT(str) CHECK_ERR(nix_hash_parse((str), strlen(str), &h), -EINVAL)
	snprintf(s, sizeof(s), "sha1:%s", nix32); /* right encoding, wrong algo length */
	REJECT(s);
	snprintf(s, sizeof(s), "sha257:%s", nix32);
	REJECT(s);
	snprintf(s, sizeof(s), "sha256:%.51s", nix32);
	REJECT(s);
	snprintf(s, sizeof(s), "sha256:%se", nix32);
	REJECT(s);
	REJECT("sha256-Dh089CG1ku5oR4YraAUgQ4rmD+t7nnrnxI9uveIawwk"); /* SRI without '=' */
	REJECT("sha256-Dh089CG1ku5oR4YraAUgQ4rmD+t7nnrnxI9uveIaww==");
	REJECT("sha256-02f33bibsvlgqkkpm7kvxc7yd2j3402nhaw68xlfx4mm47s3q78f");
	REJECT("sha256:0e1d3cf421b592ee6847862b680520438ae60feb7b9e7ae7c48f6ebde21ac30g");
	REJECT("sha256:");
	REJECT("");
#undef REJECT
	snprintf(s, sizeof(s), "sha1:%.32s", nix32);
	CHECK_ERR(nix_hash_parse_as(s, strlen(s), NIX_HASH_SHA256, &h), -EINVAL);
	CHECK_ERR(nix_hash_parse_as(nix32, 52, NIX_HASH_SHA1, &h), -EINVAL);
}

/* Fills `digest` from the vector's hash field and tells what kind it is. */
static const char *sp_hash_field(const cJSON *v, bool *recursive, const char **algo)
{
	static const char *const keys[] = {"nar_sha256_hex", "modulo_nar_sha256_hex",
					   "nar_sha1_hex",   "file_sha256_hex",
					   "file_sha1_hex",  "text_sha256_hex"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!vstr(v, keys[i])[0])
			continue;
		*recursive = strstr(keys[i], "nar_") != NULL;
		*algo = strstr(keys[i], "sha1") ? "sha1" : "sha256";
		return vstr(v, keys[i]);
	}
	return NULL;
}

/* References of a vector as a malloc'd array of strings. */
static const char **sp_refs(const cJSON *v, size_t *n)
{
	const cJSON *refs = cJSON_GetObjectItem(v, "references"), *r;
	const char **out = calloc(8, sizeof(*out));

	*n = 0;
	if (out && refs)
		cJSON_ArrayForEach(r, refs) out[(*n)++] = r->valuestring;
	return out;
}

/* Computes the fingerprint of vector `v` with the API for its kind. */
static int sp_fingerprint(const cJSON *v, const uint8_t *digest, size_t dlen, char **fp)
{
	const char *kind = vstr(v, "kind"), *name = vstr(v, "name"), *algo = NULL;
	bool rec = false, self = cJSON_IsTrue(cJSON_GetObjectItem(v, "self_reference"));
	size_t nrefs;
	const char **refs = sp_refs(v, &nrefs);
	int rc = -EINVAL;

	sp_hash_field(v, &rec, &algo);
	if (!strcmp(kind, "source"))
		rc = store_path_fingerprint_source(digest, name, refs, nrefs, self, fp);
	else if (!strcmp(kind, "text"))
		rc = store_path_fingerprint_text(digest, name, refs, nrefs, fp);
	else if (!strcmp(kind, "fixed"))
		rc = store_path_fingerprint_fixed(rec, algo, digest, dlen, name, fp);
	free(refs);
	return rc;
}

static int sp_make(const cJSON *v, const uint8_t *digest, size_t dlen, struct store_path *sp)
{
	const char *kind = vstr(v, "kind"), *name = vstr(v, "name"), *algo = NULL;
	bool rec = false, self = cJSON_IsTrue(cJSON_GetObjectItem(v, "self_reference"));
	size_t nrefs;
	const char **refs = sp_refs(v, &nrefs);
	int rc = -EINVAL;

	sp_hash_field(v, &rec, &algo);
	if (!strcmp(kind, "source"))
		rc = store_path_make_source(digest, name, refs, nrefs, self, sp);
	else if (!strcmp(kind, "text"))
		rc = store_path_make_text(digest, name, refs, nrefs, sp);
	else if (!strcmp(kind, "fixed"))
		rc = store_path_make_fixed(rec, algo, digest, dlen, name, sp);
	free(refs);
	return rc;
}

/* The CA string of a vector names its own kind and hash. */
static void sp_check_ca(const cJSON *v, const uint8_t *digest, size_t dlen)
{
	const char *ca = vstr(v, "ca"), *algo = NULL;
	bool rec = false, is_rec = false, is_text = false;
	enum nix_hash_algo a = NIX_HASH_MD5;
	enum ca_hash type;
	uint8_t got[64];
	size_t glen = 0;
	char out[NIX_CA_TEXT_MAX];

	sp_hash_field(v, &rec, &algo);
	CHECK_OK(ca_parse(ca, strlen(ca), &type, got, &glen));
	CHECK_EQ(glen, dlen);
	CHECK_MEM(got, digest, dlen);
	CHECK_OK(ca_hash_info(type, &a, &is_rec, &is_text));
	CHECK_STR(nix_hash_algo_name(a), algo);
	CHECK_EQ(is_text, !strcmp(vstr(v, "kind"), "text"));
	CHECK_EQ(is_rec, !strcmp(vstr(v, "kind"), "source") || rec);
	CHECK_OK(ca_print(type, got, glen, out));
	CHECK_STR(out, ca);
}

static void sp_check_inputs(const cJSON *v, const uint8_t *digest, size_t dlen, const char *algo)
{
	const char *content = vstr(v, "content"), *inner = vstr(v, "inner_string");
	uint8_t h[32], *want;
	size_t wl = 0;

	if (content[0]) {
		CHECK_OK(nix_hash_buf(strcmp(algo, "sha1") ? NIX_HASH_SHA256 : NIX_HASH_SHA1,
				      content, strlen(content), h));
		CHECK_MEM(h, digest, dlen);
	}
	if (inner[0]) {
		want = hex_alloc(vstr(v, "inner_sha256_hex"), &wl);
		CHECK(want && wl == 32);
		CHECK_OK(nix_hash_buf(NIX_HASH_SHA256, inner, strlen(inner), h));
		CHECK_MEM(h, want, 32);
		free(want);
	}
}

TEST(store_path_vectors)
{
	const cJSON *vs = vectors_get("store_paths", NULL), *v;
	int n = 0, with_ca = 0;

	CHECK(vs && cJSON_GetArraySize(vs) == 9);
	cJSON_ArrayForEach(v, vs)
	{
		bool rec = false;
		const char *algo = NULL, *hex = sp_hash_field(v, &rec, &algo);
		const char *want = vstr(v, "path");
		size_t dlen = 0;
		uint8_t *digest = hex ? hex_alloc(hex, &dlen) : NULL;
		char *fp = NULL, full[STORE_PATH_FULL_MAX];
		struct store_path sp, sp2, parsed;

		CHECK_MSG(digest, "no hash in %s", vstr(v, "description"));
		sp_check_inputs(v, digest, dlen, algo);
		CHECK_OK(sp_fingerprint(v, digest, dlen, &fp));
		CHECK_STR(fp, vstr(v, "fingerprint"));
		CHECK_OK(store_path_from_fingerprint(fp, strlen(fp), vstr(v, "name"), &sp2));
		free(fp);
		CHECK_OK(sp_make(v, digest, dlen, &sp));
		store_path_full(&sp, full);
		CHECK_STR(full, want);
		CHECK(store_path_cmp(&sp, &sp2) == 0);
		CHECK_OK(store_path_parse(want, strlen(want), false, &parsed));
		CHECK(!memcmp(parsed.digest, sp.digest, 20) && !strcmp(parsed.name, sp.name));
		if (vstr(v, "ca")[0]) {
			sp_check_ca(v, digest, dlen);
			with_ca++;
		}
		free(digest);
		n++;
	}
	CHECK_EQ(n, 9);
	CHECK_EQ(with_ca, 5);
}

/* A recursive sha256 fixed output is the "source" kind. */
TEST(store_path_fixed_recursive_sha256)
{
	uint8_t d[32];
	struct store_path a, b;

	CHECK_OK(hex_decode("0e1d3cf421b592ee6847862b680520438ae60feb7b9e7ae7c48f6ebde21ac309", 64,
			    d, 32));
	CHECK_OK(store_path_make_fixed(true, "sha256", d, 32, "src", &a));
	CHECK_OK(store_path_make_source(d, "src", NULL, 0, false, &b));
	CHECK(store_path_cmp(&a, &b) == 0);
	CHECK_ERR(store_path_make_fixed(false, "sha256", d, 31, "src", &a), -EINVAL);
	CHECK_ERR(store_path_make_fixed(false, "sha3", d, 32, "src", &a), -EINVAL);
	/* Invalid references and names are refused. */
	const char *bad_ref[] = {"l9rn5vshcpbv9a2p97sdbsijinb3iyax-src"};
	CHECK_ERR(store_path_make_source(d, "x", bad_ref, 1, false, &a), -EINVAL);
	CHECK_ERR(store_path_make_text(d, "a b", NULL, 0, &a), -EINVAL);
}

TEST(store_path_name_rules)
{
	char name[300];

	memset(name, 'a', sizeof(name));
	CHECK_OK(store_path_name_check(name, 211));
	CHECK_ERR(store_path_name_check(name, 212), -EINVAL);
	CHECK_ERR(store_path_name_check(name, 0), -EINVAL);
	CHECK_OK(store_path_name_check("0-9a-zA-Z+-._?=", 15));
	CHECK_OK(store_path_name_check(".hidden", 7));
	CHECK_OK(store_path_name_check("...", 3));
	CHECK_OK(store_path_name_check("..x", 3));
	CHECK_OK(store_path_name_check("-", 1));
	static const char *const bad[] = {"a b", "x~y", ".", "..",   ".-x", "..-x", ".-",
					  "..-", "a/b", "ä", "a\nb", "a:b", "a%b",  "a*b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(store_path_name_check(bad[i], strlen(bad[i])) == -EINVAL,
			  "name '%s' was accepted", bad[i]);
	CHECK_ERR(store_path_name_check("a\0b", 3), -EINVAL);
}

TEST(store_path_parse_rejects)
{
	const char *good = "l9rn5vshcpbv9a2p97sdbsijinb3iyax-src";
	struct store_path sp;
	char s[400], base[STORE_PATH_MAX_BASENAME + 1];

	CHECK_OK(store_path_parse_basename(good, strlen(good), &sp));
	store_path_basename(&sp, base);
	CHECK_STR(base, good);
	CHECK_OK(store_path_parse(good, strlen(good), true, &sp));
	CHECK_ERR(store_path_parse(good, strlen(good), false, &sp), -EINVAL);
	snprintf(s, sizeof(s), "/nix/store/%s/bin", good);
	CHECK_ERR(store_path_parse(s, strlen(s), false, &sp), -EINVAL);
	CHECK_OK(store_path_parse(s, strlen(s) - 4, false, &sp));
	snprintf(s, sizeof(s), "/nix/storf/%s", good);
	CHECK_ERR(store_path_parse(s, strlen(s), true, &sp), -EINVAL);
	CHECK_ERR(store_path_parse_basename(good + 1, strlen(good) - 1, &sp),
		  -EINVAL);					      /* short hash */
	CHECK_ERR(store_path_parse_basename(good, 33, &sp), -EINVAL); /* no name */
	CHECK_ERR(store_path_parse_basename(good, 32, &sp), -EINVAL);
	CHECK_ERR(store_path_parse_basename("", 0, &sp), -EINVAL);
	strcpy(s, good);
	s[32] = '_'; /* missing '-' */
	CHECK_ERR(store_path_parse_basename(s, strlen(s), &sp), -EINVAL);
	for (const char *c = "eoutL!"; *c; c++) {
		strcpy(s, good);
		s[5] = *c;
		CHECK_ERR(store_path_parse_basename(s, strlen(s), &sp), -EINVAL);
	}
	snprintf(s, sizeof(s), "%.33s.-x", good);
	CHECK_ERR(store_path_parse_basename(s, strlen(s), &sp), -EINVAL);
	memset(s + 33, 'n', 212);
	CHECK_ERR(store_path_parse_basename(s, 33 + 212, &sp), -EINVAL);
	CHECK_OK(store_path_parse_basename(s, 33 + 211, &sp));
	CHECK_EQ(strlen(sp.name), 211);
	store_path_full(&sp, s);
	CHECK_EQ(strlen(s), sizeof(STORE_DIR) + STORE_PATH_MAX_BASENAME);
}

TEST(store_path_hash_compress)
{
	uint8_t in[45], out[20];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	hash_compress(in, sizeof(in), out, sizeof(out));
	for (size_t i = 0; i < 20; i++) {
		uint8_t want = in[i] ^ in[i + 20] ^ (i + 40 < 45 ? in[i + 40] : 0);

		CHECK_EQ(out[i], want);
	}
}

TEST(ca_rejects)
{
	enum ca_hash t;
	uint8_t d[64];
	size_t dl;
	char out[NIX_CA_TEXT_MAX];
	static const char *const bad[] = {
	    "fixed:r:sha256",
	    "fixed:",
	    "text:sha1:dyx0ryw8s1srxlwfj4fkk9k5qln6swhb",
	    "text:r:sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59",
	    "fixed:sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j5",
	    "fixed:sha256-qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc=",
	    "nar:sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59",
	    "fixed:git:sha1:dyx0ryw8s1srxlwfj4fkk9k5qln6swhb",
	    ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(ca_parse(bad[i], strlen(bad[i]), &t, d, &dl) == -EINVAL,
			  "CA '%s' was accepted", bad[i]);
	CHECK_ERR(ca_print(CA_FLAT_SHA1, d, 32, out), -EINVAL);
	CHECK_ERR(ca_print((enum ca_hash)9, d, 32, out), -EINVAL);
	/* All nine kinds print and parse back. */
	for (int k = 0; k <= CA_FLAT_SHA512; k++) {
		enum nix_hash_algo a;

		CHECK_OK(ca_hash_info((enum ca_hash)k, &a, NULL, NULL));
		memset(d, k + 1, sizeof(d));
		CHECK_OK(ca_print((enum ca_hash)k, d, nix_hash_len(a), out));
		CHECK_OK(ca_parse(out, strlen(out), &t, d, &dl));
		CHECK_EQ(t, k);
		CHECK_EQ(dl, nix_hash_len(a));
	}
}

/* Kinds not in vectors.json, checked against nix-store 2.8
 * --print-fixed-path [--recursive] <algo> <hash of "abc"> foo. */
TEST(store_path_fixed_other_algos)
{
	static const struct {
		bool rec;
		enum nix_hash_algo algo;
		const char *path;
	} cases[] = {
	    {false, NIX_HASH_SHA512, "/nix/store/4rc5l3lrid1k7j821yy8sr6kx2ha6sjs-foo"},
	    {true, NIX_HASH_MD5, "/nix/store/cqa5cd0c2ivcm5l1c8cir9sjbwrqk8bn-foo"},
	    {true, NIX_HASH_SHA256, "/nix/store/8nz4xrxpk6mgia8bb9jxncpcikkm2xxv-foo"},
	};
	uint8_t d[64];
	char full[STORE_PATH_FULL_MAX];
	struct store_path sp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_OK(nix_hash_buf(cases[i].algo, "abc", 3, d));
		CHECK_OK(store_path_make_fixed(cases[i].rec, nix_hash_algo_name(cases[i].algo), d,
					       nix_hash_len(cases[i].algo), "foo", &sp));
		store_path_full(&sp, full);
		CHECK_STR(full, cases[i].path);
	}
}

/* Every CA of the vectors recomputes to its store path. */
TEST(ca_store_path_vectors)
{
	const cJSON *vs = vectors_get("store_paths", NULL), *v;
	int n = 0;

	cJSON_ArrayForEach(v, vs)
	{
		const char *ca = vstr(v, "ca");
		bool self = cJSON_IsTrue(cJSON_GetObjectItem(v, "self_reference"));
		struct store_path refs[4], sp;
		size_t nrefs = 0, dl = 0;
		const cJSON *r, *rs = cJSON_GetObjectItem(v, "references");
		uint8_t d[64];
		enum ca_hash t;
		char full[STORE_PATH_FULL_MAX];

		if (!ca[0])
			continue;
		if (rs)
			cJSON_ArrayForEach(r, rs) CHECK_OK(store_path_parse(
			    r->valuestring, strlen(r->valuestring), false, &refs[nrefs++]));
		CHECK_OK(ca_parse(ca, strlen(ca), &t, d, &dl));
		CHECK_OK(ca_store_path(t, d, dl, vstr(v, "name"), refs, nrefs, self, &sp));
		store_path_full(&sp, full);
		CHECK_STR(full, vstr(v, "path"));
		/* Fixed kinds other than NAR sha256 cannot have references. */
		if (t != CA_NAR_SHA256 && t != CA_TEXT_SHA256)
			CHECK_ERR(ca_store_path(t, d, dl, "x", &sp, 1, false, &sp), -EINVAL);
		CHECK_ERR(ca_store_path(t, d, dl - 1, "x", NULL, 0, false, &sp), -EINVAL);
		n++;
	}
	CHECK_EQ(n, 5);
}

/* The hello-ref vector as a PathInfo: its self reference is a reference. */
TEST(ca_path_info_check)
{
	const char *hex = "f456ec13efa0de426bb22a56ab2397e77bd928381a3f688b4fdad6417523b0bf";
	const char *self = "49v7ym3wsmkhn2dvgqd2j18d6qnvv2is-hello-ref";
	const char *src = "l9rn5vshcpbv9a2p97sdbsijinb3iyax-src";
	struct path_info *pi;
	struct store_path r;

	CHECK_OK(path_info_new(&pi));
	CHECK_OK(store_path_parse_basename(self, strlen(self), &pi->path));
	CHECK_OK(ca_verify_claims(pi)); /* no CA: nothing claimed */
	pi->has_ca = true, pi->ca_type = CA_NAR_SHA256, pi->ca_digest_len = 32;
	CHECK_OK(hex_decode(hex, 64, pi->ca_digest, 32));
	CHECK_OK(store_path_parse_basename(src, strlen(src), &r));
	CHECK_OK(path_info_add_ref(pi, &r));
	CHECK_ERR(ca_verify_claims(pi), -EINVAL); /* the self reference is missing */
	CHECK_OK(path_info_add_ref(pi, &pi->path));
	CHECK_OK(ca_verify_claims(pi));
	pi->ca_digest[0] ^= 1;
	CHECK_ERR(ca_verify_claims(pi), -EINVAL);
	path_info_free(pi);
}
