/* test_path_info.c - PathInfo encode/decode against vectors.json
 * "pathinfo", every validation rule of docs/castore.md §7, and the root_nodes
 * adapter over a PathInfo service. */
#include "harness.h"

#include "common/encoding.h"
#include "store/path_info.h"
#include "store/root_nodes_path_info.h"
#include "castore.pb-c.h"
#include "pathinfo.pb-c.h"

#include <stdio.h>
#include <stdlib.h>

static const char symlink_target[] = "/nix/store/somewhereelse";

/* PATH_INFO_SYMLINK of vectors.json. */
static int pi_symlink(const cJSON *v, struct path_info **out)
{
	const char *sp = vstr(v, "store_path");
	struct node n = {.kind = NODE_SYMLINK,
			 .target = (const uint8_t *)symlink_target,
			 .target_len = strlen(symlink_target)};
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	rc = store_path_parse_basename(sp, strlen(sp), &pi->path);
	if (rc == 0)
		rc = path_info_set_root(pi, &n);
	if (rc == 0)
		rc = hex_decode(vstr(v, "nar_sha256_hex"), 64, pi->nar_sha256, 32);
	pi->nar_size = (uint64_t)cJSON_GetObjectItem(v, "nar_size")->valuedouble;
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

TEST(path_info_vector)
{
	const cJSON *vs = vectors_get("pathinfo", NULL), *v;
	int n = 0;

	CHECK(vs);
	cJSON_ArrayForEach(v, vs)
	{
		struct path_info *pi, *back;
		uint8_t *enc, *want, *enc2;
		size_t len, wl = 0, len2;

		CHECK_STR(vstr(v, "name"), "PATH_INFO_SYMLINK");
		want = hex_alloc(vstr(v, "encoding_hex"), &wl);
		CHECK(want && wl == (size_t)cJSON_GetObjectItem(v, "len")->valueint);
		CHECK_OK(pi_symlink(v, &pi));
		CHECK_OK(path_info_validate(pi));
		CHECK_OK(path_info_encode(pi, &enc, &len));
		CHECK_EQ(len, wl);
		CHECK_MEM(enc, want, wl);
		CHECK_OK(path_info_decode(want, wl, &back));
		CHECK_STR(back->path.name, "dummy");
		CHECK(back->root.kind == NODE_SYMLINK);
		CHECK(back->root.target_len == strlen(symlink_target) &&
		      !memcmp(back->root.target, symlink_target, back->root.target_len));
		CHECK(back->root.name_len == 38 &&
		      !memcmp(back->root.name, vstr(v, "store_path"), 38));
		CHECK_EQ(back->nar_size, 136);
		CHECK_MEM(back->nar_sha256, pi->nar_sha256, 32);
		CHECK(!back->has_ca && !back->has_deriver && !back->n_refs && !back->n_sigs);
		CHECK_OK(path_info_encode(back, &enc2, &len2));
		CHECK(len2 == wl && !memcmp(enc2, want, wl));
		free(enc), free(enc2), free(want);
		path_info_free(pi), path_info_free(back);
		n++;
	}
	CHECK_EQ(n, 1);
}

static void sp_of(const char *base, struct store_path *sp)
{
	if (store_path_parse_basename(base, strlen(base), sp) < 0)
		abort();
}

/* A PathInfo with every field set. */
static int pi_full(struct path_info **out)
{
	struct node root = {.kind = NODE_DIRECTORY, .size = 3};
	struct store_path r1, r2;
	uint8_t sig[64];
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	sp_of("qkl7haww5rsfa8pp9g08jvdpi3r9v8af-hello-ref", &pi->path);
	memset(root.digest.bytes, 0xab, 32);
	sp_of("qkl7haww5rsfa8pp9g08jvdpi3r9v8af-hello-ref", &r1);
	sp_of("l9rn5vshcpbv9a2p97sdbsijinb3iyax-src", &r2);
	memset(sig, 7, sizeof(sig));
	rc = path_info_set_root(pi, &root);
	if (rc == 0)
		rc = path_info_add_ref(pi, &r1);
	if (rc == 0)
		rc = path_info_add_ref(pi, &r2);
	if (rc == 0)
		rc = path_info_add_ref(pi, &r1); /* a duplicate is ignored */
	if (rc == 0)
		rc = path_info_add_sig(pi, "test-cache-1", sig);
	pi->nar_size = 760;
	memset(pi->nar_sha256, 0x11, 32);
	pi->has_deriver = true;
	sp_of("bhjffh2nd90nkzj3s1lmycvbfw67wb16-hello-ref", &pi->deriver);
	pi->has_ca = true;
	pi->ca_type = CA_NAR_SHA1;
	pi->ca_digest_len = 20;
	memset(pi->ca_digest, 0x22, 20);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

TEST(path_info_roundtrip_all_fields)
{
	struct path_info *pi, *back;
	uint8_t *enc, *enc2;
	size_t len, len2;
	char base[STORE_PATH_MAX_BASENAME + 1];

	CHECK_OK(pi_full(&pi));
	CHECK_EQ(pi->n_refs, 2);
	store_path_basename(&pi->refs[0], base); /* sorted by basename */
	CHECK_STR(base, "l9rn5vshcpbv9a2p97sdbsijinb3iyax-src");
	CHECK_OK(path_info_encode(pi, &enc, &len));
	CHECK_OK(path_info_decode(enc, len, &back));
	CHECK_EQ(back->n_refs, 2);
	CHECK(!store_path_cmp(&back->refs[0], &pi->refs[0]) &&
	      !store_path_cmp(&back->refs[1], &pi->refs[1]));
	CHECK(back->has_deriver && !strcmp(back->deriver.name, "hello-ref"));
	CHECK(!memcmp(back->deriver.digest, pi->deriver.digest, 20));
	CHECK(back->n_sigs == 1 && !strcmp(back->sigs[0].name, "test-cache-1"));
	CHECK_MEM(back->sigs[0].data, pi->sigs[0].data, 64);
	CHECK(back->has_ca && back->ca_type == CA_NAR_SHA1 && back->ca_digest_len == 20);
	CHECK(back->root.kind == NODE_DIRECTORY && back->root.size == 3);
	CHECK(b3_digest_eq(&back->root.digest, &pi->root.digest));
	CHECK_OK(path_info_encode(back, &enc2, &len2));
	CHECK(len == len2 && !memcmp(enc, enc2, len));
	free(enc), free(enc2);
	path_info_free(pi), path_info_free(back);
}

/* CA type 0 (NAR_SHA256) is omitted on the wire but the CA message is not. */
TEST(path_info_ca_nar_sha256)
{
	struct path_info *pi, *back;
	uint8_t *enc;
	size_t len;

	CHECK_OK(pi_full(&pi));
	pi->ca_type = CA_NAR_SHA256;
	pi->ca_digest_len = 32;
	CHECK_OK(path_info_encode(pi, &enc, &len));
	CHECK_OK(path_info_decode(enc, len, &back));
	CHECK(back->has_ca && back->ca_type == CA_NAR_SHA256 && back->ca_digest_len == 32);
	free(enc);
	path_info_free(pi), path_info_free(back);
}

TEST(path_info_validate_in_memory)
{
	struct path_info *pi;
	uint8_t *enc = NULL;
	size_t len;

	CHECK_OK(pi_full(&pi));
	CHECK_OK(path_info_validate(pi));
	pi->ca_digest_len = 32; /* sha1 */
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	CHECK_ERR(path_info_encode(pi, &enc, &len), -EINVAL);
	pi->ca_digest_len = 20;
	pi->ca_type = (enum ca_hash)9;
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	pi->ca_type = CA_FLAT_SHA1;
	strcpy(pi->deriver.name, "a b");
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	strcpy(pi->deriver.name, "x");
	strcpy(pi->refs[0].name, ".");
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	strcpy(pi->refs[0].name, "src");
	pi->sigs[0].name[0] = '\0';
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	pi->sigs[0].name[0] = 't';
	strcpy(pi->path.name, "other"); /* root name no longer the store path */
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	strcpy(pi->path.name, "hello-ref");
	CHECK_OK(path_info_validate(pi));
	pi->root.kind = (enum node_kind)0;
	CHECK_ERR(path_info_validate(pi), -EINVAL);
	path_info_free(pi);
}

/* A valid PathInfo message built field by field, to break one rule at a
 * time. Pointers refer into the struct itself: do not copy it. */
struct mb {
	Snix__Store__V1__PathInfo pi;
	Snix__Castore__V1__Entry e;
	Snix__Castore__V1__SymlinkEntry se;
	Snix__Castore__V1__FileEntry fe;
	ProtobufCBinaryData refs[1];
	Snix__Store__V1__NARInfo ni;
	char *names[1];
	Snix__Store__V1__StorePath deriver;
	Snix__Store__V1__NARInfo__Signature sig, *sigs[1];
	Snix__Store__V1__NARInfo__CA ca;
	uint8_t zero[64], seven[64];
};

static char dummy_name[] = "00000000000000000000000000000000-dummy";
static char other_name[] = "00000000000000000000000000000001-dummy";

static void mb_init(struct mb *m)
{
	memset(m, 0, sizeof(*m));
	memset(m->seven, 7, sizeof(m->seven));
	snix__store__v1__path_info__init(&m->pi);
	snix__castore__v1__entry__init(&m->e);
	snix__castore__v1__symlink_entry__init(&m->se);
	snix__castore__v1__file_entry__init(&m->fe);
	snix__store__v1__narinfo__init(&m->ni);
	snix__store__v1__store_path__init(&m->deriver);
	snix__store__v1__narinfo__signature__init(&m->sig);
	snix__store__v1__narinfo__ca__init(&m->ca);
	m->se.name = (ProtobufCBinaryData){38, (uint8_t *)dummy_name};
	m->se.target = (ProtobufCBinaryData){24, (uint8_t *)symlink_target};
	m->e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY_SYMLINK, m->e.symlink = &m->se;
	m->refs[0] = (ProtobufCBinaryData){20, m->zero};
	m->names[0] = dummy_name;
	m->ni.n_reference_names = 1, m->ni.reference_names = m->names;
	m->ni.nar_size = 136;
	m->ni.nar_sha256 = (ProtobufCBinaryData){32, m->seven};
	m->deriver.name = "hello-ref", m->deriver.digest = (ProtobufCBinaryData){20, m->seven};
	m->ni.deriver = &m->deriver;
	m->sig.name = "k-1", m->sig.data = (ProtobufCBinaryData){64, m->seven};
	m->sigs[0] = &m->sig;
	m->ni.n_signatures = 1, m->ni.signatures = m->sigs;
	m->ca.type = SNIX__STORE__V1__NARINFO__CA__HASH__NAR_SHA256;
	m->ca.digest = (ProtobufCBinaryData){32, m->seven};
	m->ni.ca = &m->ca;
	m->pi.entry = &m->e;
	m->pi.n_references = 1, m->pi.references = m->refs;
	m->pi.narinfo = &m->ni;
}

/* Packs the message and decodes it; returns what path_info_decode did. */
static int mb_decode(const struct mb *m)
{
	size_t len = snix__store__v1__path_info__get_packed_size(&m->pi);
	uint8_t *buf = malloc(len + 1);
	struct path_info *pi = NULL;
	int rc;

	if (!buf)
		return -ENOMEM;
	snix__store__v1__path_info__pack(&m->pi, buf);
	rc = path_info_decode(buf, len, &pi);
	free(buf);
	path_info_free(pi);
	return rc;
}

TEST(path_info_rules_refs)
{
	struct mb m;

	mb_init(&m);
	CHECK_OK(mb_decode(&m));
	/* 1: narinfo present */
	m.pi.narinfo = NULL;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	/* 2: references are 20 bytes */
	mb_init(&m), m.refs[0].len = 19;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.refs[0].len = 21;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	/* 3: as many names as references */
	mb_init(&m), m.ni.n_reference_names = 0;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.pi.n_references = 0;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	/* 4: names are basenames with the reference's digest */
	mb_init(&m), m.names[0] = "/nix/store/00000000000000000000000000000000-dummy";
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.names[0] = "invalid";
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.names[0] = other_name;
	CHECK_ERR(mb_decode(&m), -EINVAL);
}

TEST(path_info_rules_root)
{
	struct mb m;

	/* 5: entry present and valid */
	mb_init(&m), m.pi.entry = NULL;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY__NOT_SET;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.se.target.len = 0;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m);
	m.fe.name = m.se.name, m.fe.digest = (ProtobufCBinaryData){31, m.seven};
	m.e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY_FILE, m.e.file = &m.fe;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	m.fe.digest.len = 32;
	CHECK_OK(mb_decode(&m));
	/* 6: the root name is a store path basename */
	mb_init(&m), m.se.name = (ProtobufCBinaryData){7, (uint8_t *)"invalid"};
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.se.name = (ProtobufCBinaryData){0, NULL};
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.se.name = (ProtobufCBinaryData){37, (uint8_t *)dummy_name + 1};
	CHECK_ERR(mb_decode(&m), -EINVAL);
}

TEST(path_info_rules_narinfo)
{
	struct mb m;

	/* 7: nar_sha256 is 32 bytes */
	mb_init(&m), m.ni.nar_sha256.len = 31;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.ni.nar_sha256.len = 0;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	/* 8: the deriver is a valid store path */
	mb_init(&m), m.deriver.name = "a b";
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.deriver.name = "";
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.deriver.digest.len = 19;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.deriver.name = "hello-ref.drv"; /* tolerated */
	CHECK_OK(mb_decode(&m));
	/* 9: signatures are 64 bytes */
	mb_init(&m), m.sig.data.len = 63;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	mb_init(&m), m.sig.data.len = 0;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	/* 10: the CA digest length matches its type, and the type is known */
	mb_init(&m), m.ca.type = SNIX__STORE__V1__NARINFO__CA__HASH__FLAT_SHA1;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	m.ca.digest.len = 20;
	CHECK_OK(mb_decode(&m));
	m.ca.type = SNIX__STORE__V1__NARINFO__CA__HASH__NAR_MD5;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	m.ca.digest.len = 16;
	CHECK_OK(mb_decode(&m));
	m.ca.type = SNIX__STORE__V1__NARINFO__CA__HASH__FLAT_SHA512;
	CHECK_ERR(mb_decode(&m), -EINVAL);
	m.ca.digest.len = 64;
	CHECK_OK(mb_decode(&m));
	m.ca.type = (Snix__Store__V1__NARInfo__CA__Hash)9;
	CHECK_ERR(mb_decode(&m), -EINVAL);
}

TEST(path_info_malformed)
{
	static const uint8_t junk[] = {0x0a, 0x44, 0x1a};
	struct path_info *pi;

	CHECK_ERR(path_info_decode(junk, sizeof(junk), &pi), -EINVAL);
	CHECK_ERR(path_info_decode(junk, 0, &pi), -EINVAL); /* empty: no narinfo */
}

/* A PathInfo service over an array, for the adapter tests. */
struct fake_ps {
	struct path_info_service base;
	struct path_info *items[4];
	size_t n;
	path_info_watch_fn watch_cb;
	void *watch_ctx;
	int fail_get; /* error get() returns, if non-zero */
};

static int fake_get(struct path_info_service *s, const uint8_t digest[STORE_PATH_DIGEST_LEN],
		    struct path_info **out)
{
	struct fake_ps *f = (struct fake_ps *)s;

	if (f->fail_get)
		return f->fail_get;
	for (size_t i = 0; i < f->n; i++) {
		uint8_t *enc;
		size_t len;
		int rc;

		if (memcmp(f->items[i]->path.digest, digest, STORE_PATH_DIGEST_LEN))
			continue;
		rc = path_info_encode(f->items[i], &enc, &len);
		if (rc == 0)
			rc = path_info_decode(enc, len, out);
		free(enc);
		return rc;
	}
	return -ENOENT;
}

static int fake_put(struct path_info_service *s, const struct path_info *pi,
		    enum path_info_put_result *res)
{
	return -ENOTSUP;
}

static int fake_list(struct path_info_service *s, uint64_t after, path_info_list_fn cb, void *ctx)
{
	struct fake_ps *f = (struct fake_ps *)s;

	for (uint64_t c = after + 1; c <= f->n; c++) {
		int rc = cb(ctx, f->items[c - 1], c * 10);

		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static int fake_watch(struct path_info_service *s, path_info_watch_fn cb, void *ctx)
{
	struct fake_ps *f = (struct fake_ps *)s;

	f->watch_cb = cb, f->watch_ctx = ctx;
	return 0;
}

static void fake_free(struct path_info_service *s)
{
}

static const struct path_info_service_ops fake_ops = {
    .get = fake_get, .put = fake_put, .list = fake_list, .watch = fake_watch, .free = fake_free};

struct seen {
	char names[4][STORE_PATH_MAX_BASENAME + 1];
	uint64_t cursors[4];
	size_t n;
};

static int seen_node(void *ctx, const struct node *n, uint64_t cursor)
{
	struct seen *s = ctx;

	if (s->n == 4)
		return 1;
	memcpy(s->names[s->n], n->name, n->name_len);
	s->names[s->n][n->name_len] = '\0';
	s->cursors[s->n++] = cursor;
	return 0;
}

static void seen_watch(void *ctx, const uint8_t *name, size_t len)
{
	struct seen *s = ctx;

	memcpy(s->names[s->n], name, len);
	s->names[s->n++][len] = '\0';
}

TEST(root_nodes_path_info_lookup)
{
	struct fake_ps f = {.base.ops = &fake_ops};
	struct root_nodes *rn;
	struct node n;
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	const char *full = "qkl7haww5rsfa8pp9g08jvdpi3r9v8af-hello-ref";
	const char *dummy = "00000000000000000000000000000000-dummy";

	CHECK_OK(pi_full(&f.items[0]));
	CHECK_OK(pi_symlink(cJSON_GetArrayItem(vectors_get("pathinfo", NULL), 0), &f.items[1]));
	f.n = 2;
	CHECK_OK(root_nodes_path_info_new(&f.base, &rn));
	CHECK_OK(root_nodes_lookup(rn, (const uint8_t *)full, strlen(full), &n, target));
	CHECK(n.kind == NODE_DIRECTORY && n.size == 3 && n.name == (const uint8_t *)full);
	CHECK_OK(root_nodes_lookup(rn, (const uint8_t *)dummy, strlen(dummy), &n, target));
	CHECK(n.kind == NODE_SYMLINK && n.target == target && n.target_len == 24);
	CHECK_MEM(target, symlink_target, 24);
	/* Right hash, wrong name; invalid names; absent paths. */
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)"00000000000000000000000000000000-dumm",
				    37, &n, target),
		  -ENOENT);
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)"00000000000000000000000000000000-dummyx",
				    39, &n, target),
		  -ENOENT);
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)"hello", 5, &n, target), -ENOENT);
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)"e0000000000000000000000000000000-dummy",
				    38, &n, target),
		  -ENOENT);
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)"10000000000000000000000000000000-dummy",
				    38, &n, target),
		  -ENOENT);
	f.fail_get = -EBADMSG;
	CHECK_ERR(root_nodes_lookup(rn, (const uint8_t *)dummy, strlen(dummy), &n, target), -EIO);
	root_nodes_free(rn);
	path_info_free(f.items[0]);
	path_info_free(f.items[1]);
}

TEST(root_nodes_path_info_list_watch)
{
	struct fake_ps f = {.base.ops = &fake_ops};
	struct root_nodes *rn;
	struct seen s = {0};
	const char *full = "qkl7haww5rsfa8pp9g08jvdpi3r9v8af-hello-ref";
	const char *dummy = "00000000000000000000000000000000-dummy";

	CHECK_OK(pi_full(&f.items[0]));
	CHECK_OK(pi_symlink(cJSON_GetArrayItem(vectors_get("pathinfo", NULL), 0), &f.items[1]));
	f.n = 2;
	CHECK_OK(root_nodes_path_info_new(&f.base, &rn));
	/* Listing forwards cursors and names nodes by basename. */
	CHECK_OK(root_nodes_list(rn, 0, seen_node, &s));
	CHECK_EQ(s.n, 2);
	CHECK_STR(s.names[0], full);
	CHECK_STR(s.names[1], dummy);
	CHECK(s.cursors[0] == 10 && s.cursors[1] == 20);
	s.n = 0;
	CHECK_OK(root_nodes_list(rn, 1, seen_node, &s));
	CHECK(s.n == 1 && s.cursors[0] == 20);
	/* Watching forwards basenames. */
	s.n = 0;
	CHECK_OK(root_nodes_watch(rn, seen_watch, &s));
	CHECK(f.watch_cb);
	f.watch_cb(f.watch_ctx, full);
	CHECK(s.n == 1 && !strcmp(s.names[0], full));
	root_nodes_free(rn);
	path_info_free(f.items[0]);
	path_info_free(f.items[1]);
}
