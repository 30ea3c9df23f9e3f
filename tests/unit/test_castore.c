/* test_castore.c - digests, Directory encode/decode/validate against the
 * vectors of tests/data/vectors.json (docs/castore.md §1-4) (both size formulas). */
#include "harness.h"

#include "castore/dir_service.h"
#include "castore/directory.h"
#include "common/encoding.h"

#include <stdlib.h>

TEST(blob_vectors)
{
	const cJSON *blobs = vectors_get("blobs", NULL), *b;

	CHECK(blobs && cJSON_GetArraySize(blobs) >= 8);
	cJSON_ArrayForEach(b, blobs)
	{
		const char *content = vstr(b, "content_hex");
		const char *hex = vstr(b, "blake3_hex");
		const char *text = vstr(b, "blake3_b64");
		struct b3_digest d, parsed;
		char hexout[B3_HEX_LEN + 1], textout[B3_TEXT_LEN + 1];
		size_t len = 0;
		uint8_t *data = content[0] ? hex_alloc(content, &len) : NULL;

		if (!strcmp(vstr(b, "name"), "BLOB_B")) {
			/* 0x00..0xFE repeated 4096 times; the JSON elides it. */
			len = 255 * 4096;
			free(data);
			data = malloc(len);
			CHECK(data);
			for (size_t i = 0; i < len; i++)
				data[i] = (uint8_t)(i % 255);
		}
		b3_digest_of(data, len, &d);
		free(data);
		b3_digest_to_hex(&d, hexout);
		CHECK_STR(hexout, hex);
		b3_digest_to_text(&d, textout);
		CHECK_STR(textout, text);
		CHECK_OK(b3_digest_from_text(text, strlen(text), &parsed));
		CHECK(b3_digest_eq(&parsed, &d));
		CHECK_OK(b3_digest_from_hex(hex, strlen(hex), &parsed));
		CHECK(b3_digest_eq(&parsed, &d));
	}
}

TEST(digest_text_rejects)
{
	struct b3_digest d;
	const char *good = "blake3-rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=";
	char bad[64];

	CHECK_ERR(b3_digest_from_text(good, strlen(good) - 1, &d), -EINVAL);
	CHECK_ERR(b3_digest_from_text("b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=", 47, &d),
		  -EINVAL);
	strcpy(bad, good);
	bad[49] = 'J'; /* non-zero trailing bits before the padding */
	CHECK_ERR(b3_digest_from_text(bad, strlen(bad), &d), -EINVAL);
	strcpy(bad, good);
	bad[10] = '*';
	CHECK_ERR(b3_digest_from_text(bad, strlen(bad), &d), -EINVAL);
	CHECK_ERR(b3_digest_from_hex("af13", 4, &d), -EINVAL);
	CHECK_ERR(b3_digest_from_bytes(good, 31, &d), -EINVAL);
	CHECK(b3_digest_eq(
	    &b3_empty_digest,
	    &(struct b3_digest){{0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d,
				 0xea, 0x36, 0xdc, 0xc9, 0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1,
				 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f, 0x32, 0x62}}));
}

/* Builds the Directory fixtures of vectors.json with formula `f`. */
struct fixtures {
	struct directory *with_keep, *complicated, *a, *b, *c, *d;
	struct b3_digest dg_keep, dg_a, dg_b;
};

static struct node file_node(const char *name, const struct b3_digest *dg, uint64_t size)
{
	return (struct node){.kind = NODE_FILE,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .digest = *dg,
			     .size = size};
}

static struct node dir_node(const char *name, const struct directory *child,
			    const struct b3_digest *dg, enum dir_size_formula f)
{
	struct node n = {.kind = NODE_DIRECTORY,
			 .name = (const uint8_t *)name,
			 .name_len = strlen(name),
			 .digest = *dg};

	directory_size(child, f, &n.size);
	return n;
}

static int build(struct directory **out, const struct node *nodes, size_t n)
{
	struct directory_builder *b;
	int rc = directory_builder_new(&b);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = directory_builder_add(b, &nodes[i]);
	if (rc < 0) {
		directory_builder_free(b);
		return rc;
	}
	return directory_builder_finish(b, out);
}

static void fixtures_free(struct fixtures *fx)
{
	directory_free(fx->with_keep), directory_free(fx->complicated);
	directory_free(fx->a), directory_free(fx->b), directory_free(fx->c);
	directory_free(fx->d);
}

static int fixtures_build(struct fixtures *fx, enum dir_size_formula f)
{
	const char *target = "/nix/store/somewhereelse";
	struct node keep[1], compl [3], b[1], c[2], d[2];
	int rc;

	*fx = (struct fixtures){0};
	keep[0] = file_node(".keep", &b3_empty_digest, 0);
	if ((rc = build(&fx->with_keep, keep, 1)) || (rc = build(&fx->a, NULL, 0)))
		return rc;
	directory_digest(fx->with_keep, &fx->dg_keep);
	directory_digest(fx->a, &fx->dg_a);
	compl [0] = dir_node("keep", fx->with_keep, &fx->dg_keep, f);
	compl [1] = file_node(".keep", &b3_empty_digest, 0);
	compl [2] = (struct node){.kind = NODE_SYMLINK,
				  .name = (const uint8_t *)"aa",
				  .name_len = 2,
				  .target = (const uint8_t *)target,
				  .target_len = strlen(target)};
	b[0] = dir_node("a", fx->a, &fx->dg_a, f);
	c[0] = dir_node("a", fx->a, &fx->dg_a, f);
	c[1] = dir_node("a'", fx->a, &fx->dg_a, f);
	if ((rc = build(&fx->complicated, compl, 3)) || (rc = build(&fx->b, b, 1)) ||
	    (rc = build(&fx->c, c, 2)))
		return rc;
	directory_digest(fx->b, &fx->dg_b);
	d[0] = dir_node("a", fx->a, &fx->dg_a, f);
	d[1] = dir_node("b", fx->b, &fx->dg_b, f);
	return build(&fx->d, d, 2);
}

static const struct directory *fixture_named(const struct fixtures *fx, const char *name)
{
	if (!strcmp(name, "DIRECTORY_WITH_KEEP"))
		return fx->with_keep;
	if (!strcmp(name, "DIRECTORY_COMPLICATED"))
		return fx->complicated;
	if (!strcmp(name, "DIRECTORY_A"))
		return fx->a;
	if (!strcmp(name, "DIRECTORY_B"))
		return fx->b;
	if (!strcmp(name, "DIRECTORY_C"))
		return fx->c;
	return !strcmp(name, "DIRECTORY_D") ? fx->d : NULL;
}

static void check_vector_set(const char *set, enum dir_size_formula f)
{
	const cJSON *list = vectors_get("directories", set), *v;
	struct fixtures fx;

	CHECK(list && cJSON_GetArraySize(list) == 6);
	CHECK_OK(fixtures_build(&fx, f));
	cJSON_ArrayForEach(v, list)
	{
		const char *name = cJSON_GetObjectItem(v, "name")->valuestring;
		const char *enc_hex = cJSON_GetObjectItem(v, "encoding_hex")->valuestring;
		const char *b3 = cJSON_GetObjectItem(v, "blake3_hex")->valuestring;
		const struct directory *built = fixture_named(&fx, name);
		struct directory *decoded = NULL;
		struct b3_digest dg;
		char hex[B3_HEX_LEN + 1];
		uint8_t *want, *got;
		size_t want_len = 0, got_len;
		uint64_t size;

		want = enc_hex[0] ? hex_alloc(enc_hex, &want_len) : calloc(1, 1);
		CHECK_MSG(built && want, "fixture %s", name);
		/* Our builder + protobuf-c produce exactly the canonical bytes. */
		CHECK_OK(directory_encode(built, &got, &got_len));
		CHECK_EQ(got_len, want_len);
		CHECK_MSG(!got_len || !memcmp(got, want, got_len), "%s: encoding differs", name);
		free(got);
		CHECK_OK(directory_digest(built, &dg));
		b3_digest_to_hex(&dg, hex);
		CHECK_STR(hex, b3);
		CHECK_OK(directory_size(built, f, &size));
		CHECK_EQ(size, cJSON_GetObjectItem(v, "size")->valuedouble);
		/* Decoding and re-encoding is the identity on canonical bytes. */
		CHECK_OK(directory_decode(want, want_len, &decoded));
		CHECK_OK(directory_encode(decoded, &got, &got_len));
		CHECK_EQ(got_len, want_len);
		CHECK_MSG(!got_len || !memcmp(got, want, got_len), "%s: re-encoding differs", name);
		free(got), free(want);
		directory_free(decoded);
	}
	fixtures_free(&fx);
}

TEST(directory_vectors_spec)
{
	check_vector_set("spec", DIR_SIZE_SPEC);
}

TEST(directory_vectors_native)
{
	check_vector_set("native", DIR_SIZE_NATIVE);
}

TEST(directory_empty_digest_is_empty_blob)
{
	struct directory *d;
	struct b3_digest dg;

	CHECK_OK(directory_decode((const uint8_t *)"", 0, &d));
	CHECK_EQ(d->count, 0);
	CHECK_OK(directory_digest(d, &dg));
	CHECK(b3_digest_eq(&dg, &b3_empty_digest));
	directory_free(d);
}

/* Hand-encodes a Directory with one entry list `field` (1,2,3) of entries
 * (name, optional 32-byte digest or target). */
struct raw {
	uint8_t buf[8192];
	size_t len;
};

static void raw_bytes(struct raw *r, const void *p, size_t n)
{
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void raw_varint(struct raw *r, uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		if (v)
			b |= 0x80;
		raw_bytes(r, &b, 1);
	} while (v);
}

static void raw_field(struct raw *r, unsigned field, const void *p, size_t n)
{
	raw_varint(r, field << 3 | 2);
	raw_varint(r, n);
	raw_bytes(r, p, n);
}

/* One entry in list `list` (1 dir, 2 file, 3 symlink). */
static void raw_entry(struct raw *r, unsigned list, const char *name, size_t name_len,
		      size_t digest_len, const char *target, size_t target_len)
{
	struct raw e = {.len = 0};
	uint8_t digest[64] = {0};

	raw_field(&e, 1, name, name_len);
	if (list == 3)
		raw_field(&e, 2, target, target_len);
	else
		raw_field(&e, 2, digest, digest_len);
	raw_field(r, list, e.buf, e.len);
}

static int decode_raw(const struct raw *r)
{
	struct directory *d = NULL;
	int rc = directory_decode(r->buf, r->len, &d);

	directory_free(d);
	return rc;
}

TEST(directory_rejects)
{
	struct raw r;
	char long_name[300];

	memset(long_name, 'x', sizeof(long_name));
	/* wrong order within a list */
	r.len = 0, raw_entry(&r, 2, "b", 1, 32, NULL, 0), raw_entry(&r, 2, "a", 1, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	/* bytewise order: "B" < "a", so "a" before "B" is wrong */
	r.len = 0, raw_entry(&r, 1, "a", 1, 32, NULL, 0), raw_entry(&r, 1, "B", 1, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	/* duplicate within a list, and across lists */
	r.len = 0, raw_entry(&r, 2, "a", 1, 32, NULL, 0), raw_entry(&r, 2, "a", 1, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 1, "a", 1, 32, NULL, 0), raw_entry(&r, 3, "a", 1, 0, "t", 1);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	/* names: empty, ".", "..", 256 bytes, NUL, slash */
	r.len = 0, raw_entry(&r, 2, "", 0, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 2, ".", 1, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 1, "..", 2, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 2, long_name, 256, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 2, long_name, 255, 32, NULL, 0);
	CHECK_OK(decode_raw(&r));
	r.len = 0, raw_entry(&r, 2, "a\0b", 3, 32, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 3, "a/b", 3, 0, "t", 1);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	/* digests of 31 and 33 bytes */
	r.len = 0, raw_entry(&r, 1, "d", 1, 31, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 2, "f", 1, 33, NULL, 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	/* symlink targets: empty, NUL, 4096 bytes (4095 is fine) */
	r.len = 0, raw_entry(&r, 3, "l", 1, 0, "", 0);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	r.len = 0, raw_entry(&r, 3, "l", 1, 0, "a\0b", 3);
	CHECK_ERR(decode_raw(&r), -EINVAL);
	{
		static char target[4096];

		memset(target, 't', sizeof(target));
		r.len = 0, raw_entry(&r, 3, "l", 1, 0, target, 4096);
		CHECK_ERR(decode_raw(&r), -EINVAL);
		r.len = 0, raw_entry(&r, 3, "l", 1, 0, target, 4095);
		CHECK_OK(decode_raw(&r));
	}
	/* garbage is a clean error */
	CHECK_ERR(directory_decode((const uint8_t *)"\xff\xff\xff", 3, &(struct directory *){0}),
		  -EINVAL);
}

TEST(directory_size_overflow)
{
	uint8_t digest[32] = {0};
	struct raw r = {.len = 0}, e1 = {.len = 0}, e2 = {.len = 0};

	raw_field(&e1, 1, "a", 1), raw_field(&e1, 2, digest, 32);
	raw_varint(&e1, 3 << 3), raw_varint(&e1, UINT64_MAX);
	raw_field(&e2, 1, "b", 1), raw_field(&e2, 2, digest, 32);
	raw_varint(&e2, 3 << 3), raw_varint(&e2, 5);
	raw_field(&r, 1, e1.buf, e1.len), raw_field(&r, 1, e2.buf, e2.len);
	CHECK_ERR(decode_raw(&r), -EOVERFLOW);
}

TEST(directory_find_and_builder_order)
{
	struct node n[3] = {
	    file_node("b", &b3_empty_digest, 0),
	    file_node("a", &b3_empty_digest, 0),
	    file_node("B", &b3_empty_digest, 0),
	};
	struct directory *d;

	CHECK_OK(build(&d, n, 3));
	CHECK_EQ(d->count, 3);
	CHECK(d->nodes[0].name[0] == 'B' && d->nodes[1].name[0] == 'a');
	CHECK(directory_find(d, (const uint8_t *)"a", 1) == &d->nodes[1]);
	CHECK(directory_find(d, (const uint8_t *)"c", 1) == NULL);
	directory_free(d);
	n[1] = n[0];
	CHECK_ERR(build(&d, n, 2), -EINVAL);
}

TEST(entry_vectors)
{
	const cJSON *list = vectors_get("entries", NULL), *v;

	CHECK(list && cJSON_GetArraySize(list) >= 4);
	cJSON_ArrayForEach(v, list)
	{
		const char *hex = cJSON_GetObjectItem(v, "encoding_hex")->valuestring;
		const char *url = cJSON_GetObjectItem(v, "base64url")->valuestring;
		size_t len, got_len;
		uint8_t *want = hex_alloc(hex, &len), *got, *arena;
		char b64[256];
		struct node n;

		CHECK(want);
		base64_encode(want, len, b64, BASE64_URL);
		CHECK_STR(b64, url);
		if (!strncmp(vstr(v, "node"), "directory {}", 12)) {
			/* Encoding-only vector: a directory node needs a digest. */
			CHECK_ERR(node_decode_entry(want, len, false, &n, &arena), -EINVAL);
			free(want);
			continue;
		}
		CHECK_OK(node_decode_entry(want, len, false, &n, &arena));
		CHECK_OK(node_encode_entry(&n, &got, &got_len));
		CHECK_EQ(got_len, len);
		CHECK_MEM(got, want, len);
		free(got), free(arena), free(want);
	}
}

/* Feeds `seq` (fixtures, by letter) to a dir_recv for root `root`: the
 * first failing accept's error, else dir_recv_finish's. */
static int recv_sequence(const struct fixtures *fx, const struct directory *root, const char *seq)
{
	const struct directory *by_letter[4] = {fx->a, fx->b, fx->c, fx->d};
	struct b3_digest dg, got;
	struct dir_recv *v;
	int rc = directory_digest(root, &dg);

	if (rc == 0)
		rc = dir_recv_new(&dg, &v);
	if (rc < 0)
		return rc;
	for (const char *p = seq; *p; p++) {
		rc = dir_recv_accept(v, by_letter[*p - 'A'], &got);
		if (rc < 0) {
			dir_recv_free(v);
			return rc;
		}
	}
	return dir_recv_finish(v);
}

/* A recursive Get's stream (castore.md §2.5), D -> {A, B}, B -> A. */
TEST(dir_recv_root_to_leaves)
{
	struct fixtures fx;

	CHECK_OK(fixtures_build(&fx, DIR_SIZE_SPEC));
	CHECK_OK(recv_sequence(&fx, fx.d, "DAB"));
	CHECK_OK(recv_sequence(&fx, fx.d, "DBA"));
	CHECK_OK(recv_sequence(&fx, fx.c, "CA"));
	CHECK_OK(recv_sequence(&fx, fx.a, "A"));
	CHECK_ERR(recv_sequence(&fx, fx.d, "DB"), -EIO);   /* A never sent */
	CHECK_ERR(recv_sequence(&fx, fx.d, "B"), -EIO);	   /* not the root first */
	CHECK_ERR(recv_sequence(&fx, fx.d, "DABA"), -EIO); /* A twice */
	CHECK_ERR(recv_sequence(&fx, fx.d, "DC"), -EIO);   /* nothing refers to C */
	CHECK_ERR(recv_sequence(&fx, fx.d, "DD"), -EIO);   /* the root twice */
	CHECK_ERR(recv_sequence(&fx, fx.d, ""), -ENOENT);  /* an unknown root */
	fixtures_free(&fx);
}
