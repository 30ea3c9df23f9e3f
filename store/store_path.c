/* store_path.c - Nix store path names, parsing, printing and how
 * content-addressed store paths are computed (docs/store-paths.md). */
#include "store/store_path.h"

#include "common/encoding.h"
#include "common/err.h"
#include "store/nix_hash.h"
#include "store/nixbase32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char_ok(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       strchr("+-._?=", c) != NULL;
}

int store_path_name_check(const char *name, size_t len)
{
	if (len == 0)
		return sf_err(-EINVAL, "store path name is empty");
	if (len > STORE_PATH_MAX_NAME)
		return sf_err(-EINVAL, "store path name '%.40s...' is longer than %d characters",
			      name, STORE_PATH_MAX_NAME);
	for (size_t i = 0; i < len; i++) {
		if (!name[i] || !name_char_ok(name[i]))
			return sf_err(-EINVAL, "store path name '%.*s' has an illegal character",
				      (int)len, name);
	}
	if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return sf_err(-EINVAL, "store path name '%.*s' is not allowed", (int)len, name);
	if ((len >= 2 && !memcmp(name, ".-", 2)) || (len >= 3 && !memcmp(name, "..-", 3)))
		return sf_err(-EINVAL, "store path name '%.*s' must not start with '.-' or '..-'",
			      (int)len, name);
	return 0;
}

int store_path_parse_basename(const char *s, size_t len, struct store_path *out)
{
	struct store_path p = {0};
	int rc;

	if (len < STORE_PATH_HASH_CHARS + 2)
		return sf_err(-EINVAL, "store path '%.*s' is too short", (int)len, s);
	if (s[STORE_PATH_HASH_CHARS] != '-')
		return sf_err(-EINVAL, "store path '%.*s' has no '-' after the hash",
			      (int)(len > 80 ? 80 : len), s);
	if (nixbase32_decode(s, STORE_PATH_HASH_CHARS, p.digest, STORE_PATH_DIGEST_LEN) < 0)
		return sf_err(-EINVAL, "store path '%.*s' has an invalid hash part",
			      (int)(len > 80 ? 80 : len), s);
	len -= STORE_PATH_HASH_CHARS + 1;
	s += STORE_PATH_HASH_CHARS + 1;
	rc = store_path_name_check(s, len);
	if (rc < 0)
		return rc;
	memcpy(p.name, s, len);
	p.name[len] = '\0';
	*out = p;
	return 0;
}

int store_path_parse(const char *s, size_t len, bool allow_basename, struct store_path *out)
{
	const size_t pl = sizeof(STORE_DIR); /* includes the '/' after it */

	if (len >= pl && !memcmp(s, STORE_DIR "/", pl))
		return store_path_parse_basename(s + pl, len - pl, out);
	if (allow_basename && (len == 0 || s[0] != '/'))
		return store_path_parse_basename(s, len, out);
	return sf_err(-EINVAL, "path '%.*s' is not in %s", (int)(len > 200 ? 200 : len), s,
		      STORE_DIR);
}

void store_path_hash_part(const uint8_t digest[STORE_PATH_DIGEST_LEN], char *out)
{
	nixbase32_encode(digest, STORE_PATH_DIGEST_LEN, out);
}

void store_path_basename(const struct store_path *p, char *out)
{
	store_path_hash_part(p->digest, out);
	out[STORE_PATH_HASH_CHARS] = '-';
	strcpy(out + STORE_PATH_HASH_CHARS + 1, p->name);
}

void store_path_full(const struct store_path *p, char *out)
{
	memcpy(out, STORE_DIR "/", sizeof(STORE_DIR));
	store_path_basename(p, out + sizeof(STORE_DIR));
}

int store_path_cmp(const struct store_path *a, const struct store_path *b)
{
	char ha[STORE_PATH_HASH_CHARS + 1], hb[STORE_PATH_HASH_CHARS + 1];
	int c;

	store_path_hash_part(a->digest, ha);
	store_path_hash_part(b->digest, hb);
	c = strcmp(ha, hb);
	return c ? c : strcmp(a->name, b->name);
}

void hash_compress(const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
	memset(out, 0, outlen);
	for (size_t i = 0; outlen && i < len; i++)
		out[i % outlen] ^= in[i];
}

int store_path_fingerprint(const char *type, const uint8_t inner_sha256[32], const char *name,
			   char **out)
{
	char hex[65];
	char *fp;

	hex_encode(inner_sha256, 32, hex);
	if (asprintf(&fp, "%s:sha256:%s:%s:%s", type, hex, STORE_DIR, name) < 0)
		return -ENOMEM;
	*out = fp;
	return 0;
}

int store_path_from_fingerprint(const char *fp, size_t fp_len, const char *name,
				struct store_path *out)
{
	struct store_path p = {0};
	uint8_t h[32];
	size_t nl = strlen(name);
	int rc = store_path_name_check(name, nl);

	if (rc == 0)
		rc = nix_hash_buf(NIX_HASH_SHA256, fp, fp_len, h);
	if (rc < 0)
		return rc;
	hash_compress(h, sizeof(h), p.digest, STORE_PATH_DIGEST_LEN);
	memcpy(p.name, name, nl + 1);
	*out = p;
	return 0;
}

/* Hashes a fingerprint made by `fp_rc`/`fp` into `out` and frees it. */
static int make_from(int fp_rc, char *fp, const char *name, struct store_path *out)
{
	int rc;

	if (fp_rc < 0)
		return fp_rc;
	rc = store_path_from_fingerprint(fp, strlen(fp), name, out);
	free(fp);
	return rc;
}

int store_path_make(const char *type, const uint8_t inner_sha256[32], const char *name,
		    struct store_path *out)
{
	char *fp = NULL;
	int rc = store_path_fingerprint(type, inner_sha256, name, &fp);

	return make_from(rc, fp, name, out);
}

static int ref_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "<kind>:<ref>...[:self]" with the references validated and sorted. */
static int type_with_refs(const char *kind, const char *const *refs, size_t nrefs, bool self_ref,
			  char **out)
{
	const char **sorted = nrefs ? malloc(nrefs * sizeof(*sorted)) : NULL;
	size_t len = strlen(kind) + (self_ref ? 5 : 0) + 1;
	struct store_path sp;
	char *t, *p;

	if (nrefs && !sorted)
		return -ENOMEM;
	for (size_t i = 0; i < nrefs; i++) {
		int rc = store_path_parse(refs[i], strlen(refs[i]), false, &sp);

		if (rc < 0) {
			free(sorted);
			return rc;
		}
		sorted[i] = refs[i];
		len += strlen(refs[i]) + 1;
	}
	if (nrefs)
		qsort(sorted, nrefs, sizeof(*sorted), ref_cmp);
	t = malloc(len);
	if (!t) {
		free(sorted);
		return -ENOMEM;
	}
	p = stpcpy(t, kind);
	for (size_t i = 0; i < nrefs; i++)
		p = stpcpy(stpcpy(p, ":"), sorted[i]);
	if (self_ref)
		strcpy(p, ":self");
	free(sorted);
	*out = t;
	return 0;
}

static int fingerprint_with_refs(const char *kind, const uint8_t sha256[32], const char *name,
				 const char *const *refs, size_t nrefs, bool self_ref, char **out)
{
	char *type = NULL;
	int rc = type_with_refs(kind, refs, nrefs, self_ref, &type);

	if (rc < 0)
		return rc;
	rc = store_path_fingerprint(type, sha256, name, out);
	free(type);
	return rc;
}

int store_path_fingerprint_source(const uint8_t nar_sha256[32], const char *name,
				  const char *const *refs, size_t nrefs, bool self_ref, char **out)
{
	return fingerprint_with_refs("source", nar_sha256, name, refs, nrefs, self_ref, out);
}

int store_path_fingerprint_text(const uint8_t sha256[32], const char *name, const char *const *refs,
				size_t nrefs, char **out)
{
	return fingerprint_with_refs("text", sha256, name, refs, nrefs, false, out);
}

int store_path_fingerprint_fixed(bool recursive, const char *algo, const uint8_t *digest,
				 size_t digest_len, const char *name, char **out)
{
	enum nix_hash_algo a;
	char hex[2 * NIX_HASH_MAX_LEN + 1], *inner;
	uint8_t inner_sha[32];
	int rc = nix_hash_algo_parse(algo, strlen(algo), &a);

	if (rc < 0)
		return rc;
	if (digest_len != nix_hash_len(a))
		return sf_err(-EINVAL, "%s digest has %zu bytes, expected %zu", algo, digest_len,
			      nix_hash_len(a));
	if (recursive && a == NIX_HASH_SHA256)
		return store_path_fingerprint_source(digest, name, NULL, 0, false, out);
	hex_encode(digest, digest_len, hex);
	if (asprintf(&inner, "fixed:out:%s%s:%s:", recursive ? "r:" : "", algo, hex) < 0)
		return -ENOMEM;
	rc = nix_hash_buf(NIX_HASH_SHA256, inner, strlen(inner), inner_sha);
	free(inner);
	if (rc < 0)
		return rc;
	return store_path_fingerprint("output:out", inner_sha, name, out);
}

int store_path_make_source(const uint8_t nar_sha256[32], const char *name, const char *const *refs,
			   size_t nrefs, bool self_ref, struct store_path *out)
{
	char *fp = NULL;
	int rc = store_path_fingerprint_source(nar_sha256, name, refs, nrefs, self_ref, &fp);

	return make_from(rc, fp, name, out);
}

int store_path_make_text(const uint8_t sha256[32], const char *name, const char *const *refs,
			 size_t nrefs, struct store_path *out)
{
	char *fp = NULL;
	int rc = store_path_fingerprint_text(sha256, name, refs, nrefs, &fp);

	return make_from(rc, fp, name, out);
}

int store_path_make_fixed(bool recursive, const char *algo, const uint8_t *digest,
			  size_t digest_len, const char *name, struct store_path *out)
{
	char *fp = NULL;
	int rc = store_path_fingerprint_fixed(recursive, algo, digest, digest_len, name, &fp);

	return make_from(rc, fp, name, out);
}
