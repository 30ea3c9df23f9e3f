/* test_narinfo.c - .narinfo writer and parser (docs/narinfo.md §2-3) and Nix
 * Ed25519 signatures against vectors.json "signature" (docs/narinfo.md §5). */
#include "harness.h"

#include "common/encoding.h"
#include "store/narinfo.h"
#include "store/nixbase32.h"
#include "store/signing.h"

#include <stdio.h>
#include <stdlib.h>

#define HELLO_REF "qkl7haww5rsfa8pp9g08jvdpi3r9v8af-hello-ref"
#define SRC	  "l9rn5vshcpbv9a2p97sdbsijinb3iyax-src"
#define NAR32	  "0inqa26vxbly8yg9m5cn40dcfaqbf1vy99m93pm95n9412iidaqz"

/* The hello-ref path of vectors.json: 760-byte NAR, references src and
 * itself, deriver hello-ref.drv. */
static int hello_ref(struct path_info **out)
{
	struct node root = {.kind = NODE_DIRECTORY, .size = 2};
	struct store_path r;
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	rc = store_path_parse_basename(HELLO_REF, strlen(HELLO_REF), &pi->path);
	if (rc == 0)
		rc = path_info_set_root(pi, &root);
	if (rc == 0)
		rc = nixbase32_decode(NAR32, 52, pi->nar_sha256, 32);
	pi->nar_size = 760;
	for (int i = 0; rc == 0 && i < 2; i++) {
		const char *b = i ? SRC : HELLO_REF;

		rc = store_path_parse_basename(b, strlen(b), &r);
		if (rc == 0)
			rc = path_info_add_ref(pi, &r);
	}
	if (rc == 0)
		rc = store_path_parse_basename("bhjffh2nd90nkzj3s1lmycvbfw67wb16-hello-ref", 42,
					       &pi->deriver);
	pi->has_deriver = true;
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

static const cJSON *sigv(void)
{
	return vectors_get("signature", NULL);
}

TEST(signing_keys)
{
	const cJSON *v = sigv();
	struct nix_secret_key sk;
	struct nix_public_key pk, derived;
	const char *skf = vstr(v, "secret_key_file"), *pkf = vstr(v, "public_key_file");
	uint8_t seed[32], pub[32];
	char *text, with_nl[200];

	CHECK(v);
	CHECK_OK(signing_secret_key_parse(skf, strlen(skf), &sk));
	CHECK_STR(sk.name, vstr(v, "key_name"));
	CHECK_OK(hex_decode(vstr(v, "seed_hex"), 64, seed, 32));
	CHECK_OK(hex_decode(vstr(v, "public_key_hex"), 64, pub, 32));
	CHECK_MEM(sk.seed, seed, 32);
	CHECK_MEM(sk.public_key, pub, 32);
	CHECK_OK(signing_public_key_parse(pkf, strlen(pkf), &pk));
	CHECK_STR(pk.name, vstr(v, "key_name"));
	CHECK_MEM(pk.key, pub, 32);
	signing_public_key_of(&sk, &derived);
	CHECK_OK(signing_public_key_format(&derived, &text));
	CHECK_STR(text, pkf);
	free(text);
	snprintf(with_nl, sizeof(with_nl), "%s\n", pkf); /* as key files often end */
	CHECK_OK(signing_public_key_parse(with_nl, strlen(with_nl), &pk));
}

TEST(signing_key_rejects)
{
	const cJSON *v = sigv();
	const char *skf = vstr(v, "secret_key_file"), *pkf = vstr(v, "public_key_file");
	struct nix_secret_key sk;
	struct nix_public_key pk;
	char s[200];

	CHECK(v);
	CHECK_ERR(signing_public_key_parse(pkf + 12, strlen(pkf) - 12, &pk), -EINVAL); /* ":..." */
	CHECK_ERR(signing_public_key_parse(pkf + 13, strlen(pkf) - 13, &pk), -EINVAL); /* no name */
	CHECK_ERR(signing_public_key_parse(skf, strlen(skf), &pk), -EINVAL); /* 64 bytes */
	CHECK_ERR(signing_secret_key_parse(pkf, strlen(pkf), &sk), -EINVAL); /* 32 bytes */
	snprintf(s, sizeof(s), "test-cache-1:%s", "lWO4blibsQYjBsHmVDFn2N9d0K/9DfaYmath7DurVQ==");
	CHECK_ERR(signing_public_key_parse(s, strlen(s), &pk), -EINVAL); /* 31 bytes */
	snprintf(s, sizeof(s), "bad name:%s", pkf + 13);
	CHECK_ERR(signing_public_key_parse(s, strlen(s), &pk), -EINVAL);
	/* A secret key whose public half is not its own. */
	strcpy(s, skf);
	s[strlen(s) - 5] = s[strlen(s) - 5] == 'A' ? 'B' : 'A';
	CHECK_ERR(signing_secret_key_parse(s, strlen(s), &sk), -EINVAL);
}

TEST(signing_vector)
{
	const cJSON *v = sigv();
	const char *skf = vstr(v, "secret_key_file");
	struct nix_secret_key sk;
	struct path_info *pi;
	struct path_signature sig;
	uint8_t want[64];
	char *fp, *text, line[200];

	CHECK(v);
	CHECK_OK(signing_secret_key_parse(skf, strlen(skf), &sk));
	CHECK_OK(hello_ref(&pi));
	CHECK_OK(signing_fingerprint(pi, &fp));
	CHECK_STR(fp, vstr(v, "fingerprint"));
	CHECK_OK(signing_sign(&sk, fp, strlen(fp), &sig));
	free(fp);
	CHECK_OK(hex_decode(vstr(v, "signature_hex"), 128, want, 64));
	CHECK_MEM(sig.data, want, 64);
	CHECK_OK(signing_sig_format(&sig, &text));
	snprintf(line, sizeof(line), "Sig: %s", text);
	CHECK_STR(line, vstr(v, "sig_line"));
	free(text);
	free(sig.name);
	/* Signing a PathInfo twice adds the signature once. */
	CHECK_OK(signing_sign_path_info(&sk, pi));
	CHECK_OK(signing_sign_path_info(&sk, pi));
	CHECK_EQ(pi->n_sigs, 1);
	CHECK_MEM(pi->sigs[0].data, want, 64);
	path_info_free(pi);
}

TEST(signing_verify_rules)
{
	const cJSON *v = sigv();
	const char *pkf = vstr(v, "public_key_file"), *line = vstr(v, "sig_line");
	struct nix_public_key keys[2];
	struct path_info *pi;
	struct path_signature sig;
	const char *fp = vstr(v, "fingerprint");
	char tampered[400];
	size_t n = 9;

	CHECK(v);
	CHECK_OK(signing_public_key_parse(pkf, strlen(pkf), &keys[0]));
	CHECK_OK(signing_sig_parse(line + 5, strlen(line) - 5, &sig));
	CHECK_OK(signing_verify(&keys[0], fp, strlen(fp), sig.data));
	snprintf(tampered, sizeof(tampered), "%s", fp);
	tampered[strlen(tampered) - 1] ^= 1;
	CHECK_ERR(signing_verify(&keys[0], tampered, strlen(tampered), sig.data), -EBADMSG);
	CHECK_OK(hello_ref(&pi));
	CHECK_OK(path_info_add_sig(pi, sig.name, sig.data));
	free(sig.name);
	CHECK_OK(signing_verify_path_info(pi, keys, 1, &n));
	CHECK_EQ(n, 1);
	/* The fingerprint covers the NAR size. */
	pi->nar_size++;
	CHECK_OK(signing_verify_path_info(pi, keys, 1, &n));
	CHECK_EQ(n, 0);
	pi->nar_size--;
	/* Only keys of the signature's name count. */
	keys[1] = keys[0];
	strcpy(keys[0].name, "other-cache-1");
	CHECK_OK(signing_verify_path_info(pi, keys, 1, &n));
	CHECK_EQ(n, 0);
	CHECK_OK(signing_verify_path_info(pi, keys, 2, &n));
	CHECK_EQ(n, 1);
	keys[1].key[0] ^= 1; /* right name, wrong key */
	CHECK_OK(signing_verify_path_info(pi, keys, 2, &n));
	CHECK_EQ(n, 0);
	path_info_free(pi);
}

TEST(signing_sig_rejects)
{
	struct path_signature sig;
	const char *short_sig =
	    "k:D9eSWBb25Eyt4Q/sMApYpev+xrSCKSnY1/nbIXgCjFW6ZbohiimQDl3ywPPM3u907"
	    "Zzh/4nhlWmvYqliAwIP";
	const char *long_sig = "k:D9eSWBb25Eyt4Q/sMApYpev+xrSCKSnY1/nbIXgCjFW6ZbohiimQDl3ywPPM3u907"
			       "Zzh/4nhlWmvYqliAwIPBgAA";
	struct nix_public_key *keys;
	size_t n;

	CHECK_ERR(signing_sig_parse(short_sig, strlen(short_sig), &sig), -EINVAL);
	CHECK_ERR(signing_sig_parse(long_sig, strlen(long_sig), &sig), -EINVAL);
	CHECK_ERR(signing_sig_parse("D9eSWBb25Eyt4Q", 14, &sig), -EINVAL);
	CHECK_OK(signing_public_keys_parse(" a:lWO4blibsQYjBsHmVDFn2N9d0K/9DfaYmath7DurVRU=  "
					   "b:lWO4blibsQYjBsHmVDFn2N9d0K/9DfaYmath7DurVRU=",
					   &keys, &n));
	CHECK(n == 2 && !strcmp(keys[0].name, "a") && !strcmp(keys[1].name, "b"));
	free(keys);
	CHECK_ERR(signing_public_keys_parse("a:lWO4 b:x", &keys, &n), -EINVAL);
}

/* docs/narinfo.md §2, with the signature of vectors.json. */
static void expected_narinfo(char *out, size_t cap, const char *ca_line)
{
	snprintf(out, cap,
		 "StorePath: /nix/store/" HELLO_REF "\n"
		 "URL: nar/" NAR32 ".nar\n"
		 "Compression: none\n"
		 "FileHash: sha256:" NAR32 "\n"
		 "FileSize: 760\n"
		 "NarHash: sha256:" NAR32 "\n"
		 "NarSize: 760\n"
		 "References: " SRC " " HELLO_REF "\n"
		 "Deriver: bhjffh2nd90nkzj3s1lmycvbfw67wb16-hello-ref.drv\n"
		 "%s\n%s",
		 vstr(sigv(), "sig_line"), ca_line);
}

/* The narinfo of hello_ref(), signed with the vector's key. */
static int hello_narinfo(struct narinfo **out)
{
	const char *skf = vstr(sigv(), "secret_key_file");
	struct nix_secret_key sk;
	struct nix_hash fh = {.algo = NIX_HASH_SHA256};
	struct path_info *pi;
	int rc = signing_secret_key_parse(skf, strlen(skf), &sk);

	if (rc < 0)
		return rc;
	rc = hello_ref(&pi);
	if (rc < 0)
		return rc;
	memcpy(fh.digest, pi->nar_sha256, 32);
	rc = signing_sign_path_info(&sk, pi);
	if (rc == 0)
		rc = narinfo_from_path_info(pi, "nar/" NAR32 ".nar", "none", &fh, true, 760, out);
	path_info_free(pi);
	return rc;
}

TEST(narinfo_write_vector)
{
	struct narinfo *ni, *back;
	char want[2048], *text, *text2;
	size_t len, len2;

	CHECK_OK(hello_narinfo(&ni));
	CHECK_OK(narinfo_write(ni, &text, &len));
	expected_narinfo(want, sizeof(want), "");
	CHECK_STR(text, want);
	CHECK_EQ(len, strlen(want));
	CHECK_OK(narinfo_parse(text, len, &back));
	CHECK_OK(narinfo_write(back, &text2, &len2));
	CHECK_STR(text2, want);
	CHECK(back->has_file_hash && back->has_file_size && back->file_size == 760);
	CHECK_STR(back->compression, "none");
	CHECK_STR(back->deriver.name, "hello-ref.drv");
	free(text), free(text2);
	narinfo_free(back);
	/* With a CA, which comes last. */
	ni->has_ca = true;
	ni->ca_type = CA_NAR_SHA256;
	ni->ca_digest_len = 32;
	memcpy(ni->ca_digest, ni->nar_sha256, 32);
	CHECK_OK(narinfo_write(ni, &text, &len));
	expected_narinfo(want, sizeof(want), "CA: fixed:r:sha256:" NAR32 "\n");
	CHECK_STR(text, want);
	CHECK_OK(narinfo_parse(text, len, &back));
	CHECK(back->has_ca && back->ca_type == CA_NAR_SHA256);
	CHECK_MEM(back->ca_digest, ni->nar_sha256, 32);
	free(text);
	narinfo_free(back);
	narinfo_free(ni);
}

TEST(narinfo_to_path_info_roundtrip)
{
	const char *pkf = vstr(sigv(), "public_key_file");
	struct nix_public_key pk;
	struct narinfo *ni;
	struct path_info *pi;
	struct node root = {.kind = NODE_FILE, .size = 5};
	uint8_t *enc;
	size_t len, n = 0;

	CHECK_OK(hello_narinfo(&ni));
	CHECK_OK(narinfo_to_path_info(ni, &root, &pi));
	CHECK_STR(pi->deriver.name, "hello-ref");
	CHECK(pi->root.kind == NODE_FILE && pi->root.name_len == strlen(HELLO_REF));
	CHECK_EQ(pi->n_refs, 2);
	CHECK_OK(signing_public_key_parse(pkf, strlen(pkf), &pk));
	CHECK_OK(signing_verify_path_info(pi, &pk, 1, &n));
	CHECK_EQ(n, 1);
	CHECK_OK(path_info_encode(pi, &enc, &len));
	free(enc);
	path_info_free(pi);
	narinfo_free(ni);
}

TEST(narinfo_empty_references)
{
	struct path_info *pi;
	struct narinfo *ni, *back;
	char *text;
	size_t len;

	CHECK_OK(hello_ref(&pi));
	pi->n_refs = 0;
	pi->has_deriver = false;
	CHECK_OK(
	    narinfo_from_path_info(pi, "https://example.org/x.nar", "xz", NULL, false, 0, &ni));
	CHECK_OK(narinfo_write(ni, &text, &len));
	CHECK(strstr(text, "\nReferences: \n") != NULL);
	CHECK(!strstr(text, "FileHash") && !strstr(text, "FileSize") && !strstr(text, "Deriver"));
	CHECK_OK(narinfo_parse(text, len, &back));
	CHECK_EQ(back->n_refs, 0);
	CHECK_STR(back->url, "https://example.org/x.nar");
	free(text);
	narinfo_free(back);
	narinfo_free(ni);
	path_info_free(pi);
}

#define NI_HEAD "StorePath: /nix/store/" HELLO_REF "\nURL: nar/x.nar\n"
#define NI_NAR	"NarHash: sha256:" NAR32 "\nNarSize: 760\n"

static int parse_str(const char *s)
{
	struct narinfo *ni = NULL;
	int rc = narinfo_parse(s, strlen(s), &ni);

	narinfo_free(ni);
	return rc;
}

TEST(narinfo_parse_lenient)
{
	struct narinfo *ni;
	const char *s;

	/* Minimal: Compression defaults to bzip2, no References line at all. */
	s = NI_HEAD NI_NAR;
	CHECK_OK(narinfo_parse(s, strlen(s), &ni));
	CHECK_STR(ni->compression, "bzip2");
	CHECK(!ni->has_file_hash && !ni->has_file_size && !ni->has_deriver && !ni->system);
	narinfo_free(ni);
	/* Hex, SRI and base64 NarHash; unknown keys; unknown-deriver; an empty
	 * References line followed by another. */
	CHECK_OK(parse_str(
	    NI_HEAD
	    "NarHash: sha256:1fab16a30824d992ea1da9a6e477700b2bc71a2096959a9e479eaebe8d50d846\n"
	    "NarSize: 760\n"));
	CHECK_OK(parse_str(NI_HEAD "NarHash: sha256-H6sWowgk2ZLqHamm5HdwCyvHGiCWlZqeR56uvo1Q2EY=\n"
				   "NarSize: 760\n"));
	s = NI_HEAD "NarHash: sha256:H6sWowgk2ZLqHamm5HdwCyvHGiCWlZqeR56uvo1Q2EY=\nNarSize: 760\n"
		    "X-Custom: whatever\nDeriver: unknown-deriver\nReferences: \n"
		    "References: " SRC "  " HELLO_REF "\nSystem: x86_64-linux\n"
		    "FileHash: sha1:4dvfv9m97piwixicqhspqryhkf08b2sd\nCA: \n";
	CHECK_OK(narinfo_parse(s, strlen(s), &ni));
	CHECK_EQ(ni->n_refs, 2);
	CHECK(!ni->has_deriver && !ni->has_ca && ni->file_hash.algo == NIX_HASH_SHA1);
	CHECK_STR(ni->system, "x86_64-linux");
	uint8_t want[32];
	CHECK_OK(nixbase32_decode(NAR32, 52, want, 32));
	CHECK_MEM(ni->nar_sha256, want, 32);
	narinfo_free(ni);
}

TEST(narinfo_parse_rejects_framing)
{
	char s[1024];

	/* Final newline and LF only. */
	snprintf(s, sizeof(s), "%s", NI_HEAD NI_NAR);
	s[strlen(s) - 1] = '\0';
	CHECK_ERR(parse_str(s), -EINVAL);
	CHECK_ERR(parse_str("StorePath: /nix/store/" HELLO_REF "\r\nURL: nar/x.nar\r\n"
			    "NarHash: sha256:" NAR32 "\r\nNarSize: 760\r\n"),
		  -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "Compression: none\r\n"), -EINVAL);
	CHECK_ERR(parse_str(""), -EINVAL);
	/* Required keys. */
	CHECK_ERR(parse_str("URL: nar/x.nar\n" NI_NAR), -EINVAL);
	CHECK_ERR(parse_str("StorePath: /nix/store/" HELLO_REF "\n" NI_NAR), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "URL: \n" NI_NAR), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarSize: 760\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha256:" NAR32 "\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha256:" NAR32 "\nNarSize: 0\n"), -EINVAL);
}

TEST(narinfo_parse_rejects_values)
{
	char s[1024];

	/* Duplicates that Nix calls corrupt. */
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "CA: fixed:r:sha256:" NAR32 "\nCA: fixed:r:sha256:" NAR32
					   "\n"),
		  -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "References: " SRC "\nReferences: " HELLO_REF "\n"),
		  -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "References: " SRC "\nReferences: \n"), -EINVAL);
	/* Malformed values. */
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha256:" NAR32 "\nNarSize: 76O\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha256:" NAR32 "\nNarSize: 18446744073709551616\n"),
		  -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha256:" NAR32 "\nNarSize: -1\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: sha1:4dvfv9m97piwixicqhspqryhkf08b2sd\nNarSize: 7\n"),
		  -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD "NarHash: " NAR32 "\nNarSize: 7\n"), -EINVAL);
	CHECK_ERR(parse_str("StorePath: " HELLO_REF "\nURL: nar/x.nar\n" NI_NAR), -EINVAL);
	CHECK_ERR(parse_str("StorePath: /nix/store/" HELLO_REF "x y\nURL: u\n" NI_NAR), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "References: /nix/store/" SRC "\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "Deriver: hello.drv\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "CA: fixed:r:sha256:" NAR32 "x\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "Compression:none\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "FileSize: x\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "FileHash: sha256:abc\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "Sig: test-cache-1:D9eSWBb25Eyt4Q==\n"), -EINVAL);
	CHECK_ERR(parse_str(NI_HEAD NI_NAR "no colon here\n"), -EINVAL);
	/* A NUL byte inside. */
	struct narinfo *ni;
	memcpy(s, NI_HEAD "\0" NI_NAR, sizeof(NI_HEAD NI_NAR));
	CHECK_ERR(narinfo_parse(s, sizeof(NI_HEAD NI_NAR), &ni), -EINVAL);
}
