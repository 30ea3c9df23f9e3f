/* nix_hash.c - Nix hash algorithms, their text forms and CA strings. */
#include "store/nix_hash.h"

#include "common/encoding.h"
#include "common/err.h"
#include "store/nixbase32.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const algo_names[] = {
    [NIX_HASH_MD5] = "md5",
    [NIX_HASH_SHA1] = "sha1",
    [NIX_HASH_SHA256] = "sha256",
    [NIX_HASH_SHA512] = "sha512",
};

size_t nix_hash_len(enum nix_hash_algo algo)
{
	switch (algo) {
	case NIX_HASH_MD5:
		return 16;
	case NIX_HASH_SHA1:
		return 20;
	case NIX_HASH_SHA256:
		return 32;
	case NIX_HASH_SHA512:
		return 64;
	}
	return 0;
}

const char *nix_hash_algo_name(enum nix_hash_algo algo)
{
	return (unsigned)algo <= NIX_HASH_SHA512 ? algo_names[algo] : "unknown";
}

int nix_hash_algo_parse(const char *s, size_t len, enum nix_hash_algo *out)
{
	for (unsigned a = NIX_HASH_MD5; a <= NIX_HASH_SHA512; a++) {
		if (strlen(algo_names[a]) == len && !memcmp(s, algo_names[a], len)) {
			*out = (enum nix_hash_algo)a;
			return 0;
		}
	}
	return sf_err(-EINVAL, "unknown hash algorithm '%.*s'", (int)(len > 40 ? 40 : len), s);
}

static const EVP_MD *algo_md(enum nix_hash_algo algo)
{
	switch (algo) {
	case NIX_HASH_MD5:
		return EVP_md5();
	case NIX_HASH_SHA1:
		return EVP_sha1();
	case NIX_HASH_SHA256:
		return EVP_sha256();
	case NIX_HASH_SHA512:
		return EVP_sha512();
	}
	return NULL;
}

struct nix_hasher {
	EVP_MD_CTX *ctx;
};

int nix_hasher_new(enum nix_hash_algo algo, struct nix_hasher **out)
{
	const EVP_MD *md = algo_md(algo);
	struct nix_hasher *h;

	if (!md)
		return sf_err(-EINVAL, "unknown hash algorithm %d", (int)algo);
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx) {
		free(h);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
		nix_hasher_free(h);
		return sf_err(-EIO, "cannot initialise '%s' digest", nix_hash_algo_name(algo));
	}
	*out = h;
	return 0;
}

int nix_hasher_update(struct nix_hasher *h, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
		return sf_err(-EIO, "digest update failed");
	return 0;
}

int nix_hasher_final(struct nix_hasher *h, uint8_t *out)
{
	if (EVP_DigestFinal_ex(h->ctx, out, NULL) != 1)
		return sf_err(-EIO, "digest finalisation failed");
	return 0;
}

void nix_hasher_free(struct nix_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int nix_hash_buf(enum nix_hash_algo algo, const void *data, size_t len, uint8_t *out)
{
	const EVP_MD *md = algo_md(algo);

	if (!md)
		return sf_err(-EINVAL, "unknown hash algorithm %d", (int)algo);
	if (EVP_Digest(data, len, out, NULL, md, NULL) != 1)
		return sf_err(-EIO, "cannot compute '%s' digest", nix_hash_algo_name(algo));
	return 0;
}

/* Decodes a bare digest of `algo`, telling the encodings apart by length. */
static int digest_decode(const char *s, size_t len, enum nix_hash_algo algo, uint8_t *out)
{
	size_t n = nix_hash_len(algo), got = 0;

	if (len == 2 * n)
		return hex_decode(s, len, out, n) < 0
			   ? sf_err(-EINVAL, "invalid hex digest '%.*s'", (int)len, s)
			   : 0;
	if (len == nixbase32_encoded_len(n))
		return nixbase32_decode(s, len, out, n);
	if (len == base64_encoded_len(n, BASE64_STD)) {
		if (base64_decode(s, len, out, n, &got, BASE64_STD) < 0 || got != n)
			return sf_err(-EINVAL, "invalid base64 digest '%.*s'", (int)len, s);
		return 0;
	}
	return sf_err(-EINVAL, "'%.*s' is not a %s digest (wrong length %zu)",
		      (int)(len > 140 ? 140 : len), s, nix_hash_algo_name(algo), len);
}

static int sri_decode(const char *b64, size_t len, enum nix_hash_algo algo, uint8_t *out)
{
	size_t n = nix_hash_len(algo), got = 0;

	if (len != base64_encoded_len(n, BASE64_STD) ||
	    base64_decode(b64, len, out, n, &got, BASE64_STD) < 0 || got != n)
		return sf_err(-EINVAL, "invalid SRI %s digest '%.*s'", nix_hash_algo_name(algo),
			      (int)(len > 100 ? 100 : len), b64);
	return 0;
}

/* Splits "<algo>:..." or "<algo>-..."; *sep is ':' or '-', 0 if neither. */
static int hash_split(const char *s, size_t len, enum nix_hash_algo *algo, char *sep, size_t *rest)
{
	size_t i = 0;

	while (i < len && s[i] != ':' && s[i] != '-')
		i++;
	*sep = 0;
	if (i == len)
		return 0;
	*sep = s[i];
	*rest = i + 1;
	return nix_hash_algo_parse(s, i, algo);
}

int nix_hash_parse(const char *s, size_t len, struct nix_hash *out)
{
	struct nix_hash h = {0};
	size_t rest = 0;
	char sep;
	int rc = hash_split(s, len, &h.algo, &sep, &rest);

	if (rc < 0)
		return rc;
	if (!sep)
		return sf_err(-EINVAL, "hash '%.*s' has no algorithm prefix",
			      (int)(len > 140 ? 140 : len), s);
	if (sep == '-')
		rc = sri_decode(s + rest, len - rest, h.algo, h.digest);
	else
		rc = digest_decode(s + rest, len - rest, h.algo, h.digest);
	if (rc < 0)
		return rc;
	*out = h;
	return 0;
}

int nix_hash_parse_as(const char *s, size_t len, enum nix_hash_algo algo, struct nix_hash *out)
{
	const char *name = nix_hash_algo_name(algo);
	size_t nl = strlen(name);
	struct nix_hash h = {.algo = algo};
	int rc;

	if (len > nl && !memcmp(s, name, nl) && (s[nl] == ':' || s[nl] == '-'))
		return nix_hash_parse(s, len, out);
	if (memchr(s, ':', len) || memchr(s, '-', len))
		return sf_err(-EINVAL, "hash '%.*s' is not a %s hash", (int)(len > 140 ? 140 : len),
			      s, name);
	rc = digest_decode(s, len, algo, h.digest);
	if (rc < 0)
		return rc;
	*out = h;
	return 0;
}

void nix_hash_print(const struct nix_hash *h, enum nix_hash_format fmt, char *out)
{
	const char *name = nix_hash_algo_name(h->algo);
	size_t n = nix_hash_len(h->algo), nl = strlen(name);

	memcpy(out, name, nl);
	out[nl] = fmt == NIX_HASH_SRI ? '-' : ':';
	out += nl + 1;
	switch (fmt) {
	case NIX_HASH_NIX32:
		nixbase32_encode(h->digest, n, out);
		break;
	case NIX_HASH_HEX:
		hex_encode(h->digest, n, out);
		break;
	case NIX_HASH_BASE64:
	case NIX_HASH_SRI:
		base64_encode(h->digest, n, out, BASE64_STD);
		break;
	}
}

/* CA types by enum value (docs/castore.md §6). */
static const struct {
	bool text, recursive;
	enum nix_hash_algo algo;
} ca_kinds[] = {
    [CA_NAR_SHA256] = {false, true, NIX_HASH_SHA256},
    [CA_NAR_SHA1] = {false, true, NIX_HASH_SHA1},
    [CA_NAR_SHA512] = {false, true, NIX_HASH_SHA512},
    [CA_NAR_MD5] = {false, true, NIX_HASH_MD5},
    [CA_TEXT_SHA256] = {true, false, NIX_HASH_SHA256},
    [CA_FLAT_SHA1] = {false, false, NIX_HASH_SHA1},
    [CA_FLAT_MD5] = {false, false, NIX_HASH_MD5},
    [CA_FLAT_SHA256] = {false, false, NIX_HASH_SHA256},
    [CA_FLAT_SHA512] = {false, false, NIX_HASH_SHA512},
};
#define CA_KINDS (sizeof(ca_kinds) / sizeof(ca_kinds[0]))

int ca_hash_info(enum ca_hash type, enum nix_hash_algo *algo, bool *recursive, bool *text)
{
	if ((unsigned)type >= CA_KINDS)
		return sf_err(-EINVAL, "unknown CA hash type %d", (int)type);
	if (algo)
		*algo = ca_kinds[type].algo;
	if (recursive)
		*recursive = ca_kinds[type].recursive;
	if (text)
		*text = ca_kinds[type].text;
	return 0;
}

int ca_hash_from_parts(bool text, bool recursive, enum nix_hash_algo algo, enum ca_hash *out)
{
	for (unsigned t = 0; t < CA_KINDS; t++) {
		if (ca_kinds[t].text == text && ca_kinds[t].recursive == recursive &&
		    ca_kinds[t].algo == algo) {
			*out = (enum ca_hash)t;
			return 0;
		}
	}
	return sf_err(-EINVAL, "no CA type for %s%s%s", text ? "text " : "",
		      recursive ? "recursive " : "", nix_hash_algo_name(algo));
}

static bool has_prefix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && !memcmp(s, p, n);
}

int ca_parse(const char *s, size_t len, enum ca_hash *type, uint8_t digest[NIX_HASH_MAX_LEN],
	     size_t *digest_len)
{
	bool text = false, rec = false;
	size_t off;
	struct nix_hash h;
	enum ca_hash t = CA_NAR_SHA256;
	int rc;

	if (has_prefix(s, len, "text:")) {
		text = true, off = 5;
	} else if (has_prefix(s, len, "fixed:r:")) {
		rec = true, off = 8;
	} else if (has_prefix(s, len, "fixed:")) {
		off = 6;
	} else {
		return sf_err(-EINVAL, "CA '%.*s' is neither 'fixed:' nor 'text:'",
			      (int)(len > 140 ? 140 : len), s);
	}
	if (memchr(s + off, '-', len - off) || !memchr(s + off, ':', len - off))
		return sf_err(-EINVAL, "CA '%.*s' has no '<algo>:<hash>'",
			      (int)(len > 140 ? 140 : len), s);
	rc = nix_hash_parse(s + off, len - off, &h);
	if (rc == 0)
		rc = ca_hash_from_parts(text, rec, h.algo, &t);
	if (rc < 0)
		return rc;
	*type = t;
	*digest_len = nix_hash_len(h.algo);
	memcpy(digest, h.digest, *digest_len);
	return 0;
}

int ca_print(enum ca_hash type, const uint8_t *digest, size_t digest_len, char *out)
{
	enum nix_hash_algo algo = NIX_HASH_SHA256;
	bool rec = false, text = false;
	int rc = ca_hash_info(type, &algo, &rec, &text);
	size_t n;

	if (rc < 0)
		return rc;
	if (digest_len != nix_hash_len(algo))
		return sf_err(-EINVAL, "CA digest has %zu bytes, expected %zu for %s", digest_len,
			      nix_hash_len(algo), nix_hash_algo_name(algo));
	n = (size_t)sprintf(out, "%s:%s:",
			    text  ? "text"
			    : rec ? "fixed:r"
				  : "fixed",
			    nix_hash_algo_name(algo));
	nixbase32_encode(digest, digest_len, out + n);
	return 0;
}

/* Full paths of `refs` as a malloc'd array of strings in one block. */
static int refs_full(const struct store_path *refs, size_t nrefs, char ***out)
{
	char **v = malloc(nrefs * (sizeof(char *) + STORE_PATH_FULL_MAX) + 1);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < nrefs; i++) {
		v[i] = (char *)(v + nrefs) + i * STORE_PATH_FULL_MAX;
		store_path_full(&refs[i], v[i]);
	}
	*out = v;
	return 0;
}

int ca_store_path(enum ca_hash type, const uint8_t *digest, size_t digest_len, const char *name,
		  const struct store_path *refs, size_t nrefs, bool self_ref,
		  struct store_path *out)
{
	enum nix_hash_algo algo = NIX_HASH_SHA256;
	bool rec = false, text = false;
	char **full = NULL;
	int rc = ca_hash_info(type, &algo, &rec, &text);

	if (rc < 0)
		return rc;
	if (digest_len != nix_hash_len(algo))
		return sf_err(-EINVAL, "CA digest has %zu bytes, expected %zu", digest_len,
			      nix_hash_len(algo));
	if (type != CA_NAR_SHA256 && (self_ref || (!text && nrefs)))
		return sf_err(-EINVAL, "CA path '%s' of this kind cannot have references", name);
	if (type != CA_NAR_SHA256 && !text)
		return store_path_make_fixed(rec, nix_hash_algo_name(algo), digest, digest_len,
					     name, out);
	rc = refs_full(refs, nrefs, &full);
	if (rc < 0)
		return rc;
	if (text)
		rc = store_path_make_text(digest, name, (const char *const *)full, nrefs, out);
	else
		rc = store_path_make_source(digest, name, (const char *const *)full, nrefs,
					    self_ref, out);
	free(full);
	return rc;
}
