/* signing.c - Ed25519 store path signatures with OpenSSL (docs/narinfo.md §5). */
#include "store/signing.h"

#include "common/encoding.h"
#include "common/err.h"
#include "store/nixbase32.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "name:base64" and decodes exactly `keylen` bytes into `key`. */
static int key_split(const char *s, size_t len, const char *what, char *name, uint8_t *key,
		     size_t keylen)
{
	const char *colon;
	size_t got = 0, nl;

	if (len && s[len - 1] == '\n')
		len--;
	colon = memchr(s, ':', len);
	nl = colon ? (size_t)(colon - s) : 0;
	if (!colon || nl == 0 || nl > SIGNING_MAX_KEY_NAME)
		return sf_err(-EINVAL, "%s has no valid 'name:' prefix", what);
	for (size_t i = 0; i < nl; i++) {
		if (!isgraph((unsigned char)s[i]))
			return sf_err(-EINVAL, "%s name '%.*s' has an illegal character", what,
				      (int)nl, s);
	}
	if (base64_decode(colon + 1, len - nl - 1, key, keylen, &got, BASE64_STD) < 0 ||
	    got != keylen)
		return sf_err(-EINVAL, "%s '%.*s' is not %zu bytes of base64", what, (int)nl, s,
			      keylen);
	memcpy(name, s, nl);
	name[nl] = '\0';
	return 0;
}

/* Derives the public key of an Ed25519 seed. */
static int public_of_seed(const uint8_t seed[32], uint8_t pk[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	size_t len = 32;
	int ok;

	if (!k)
		return sf_err(-EIO, "cannot load ed25519 key");
	ok = EVP_PKEY_get_raw_public_key(k, pk, &len) == 1 && len == 32;
	EVP_PKEY_free(k);
	return ok ? 0 : sf_err(-EIO, "cannot derive ed25519 public key");
}

int signing_secret_key_parse(const char *s, size_t len, struct nix_secret_key *out)
{
	struct nix_secret_key k;
	uint8_t raw[64], pk[32];
	int rc = key_split(s, len, "secret key", k.name, raw, sizeof(raw));

	if (rc == 0)
		rc = public_of_seed(raw, pk);
	if (rc == 0 && memcmp(pk, raw + 32, 32) != 0)
		rc = sf_err(-EINVAL, "secret key '%s' has a public half that does not match",
			    k.name);
	if (rc < 0)
		return rc;
	memcpy(k.seed, raw, 32);
	memcpy(k.public_key, raw + 32, 32);
	*out = k;
	return 0;
}

int signing_secret_key_load(const char *path, struct nix_secret_key *out)
{
	char buf[1024];
	size_t n;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f)
		return sf_err_sys(errno, "cannot open secret key file '%s'", path);
	n = fread(buf, 1, sizeof(buf), f);
	rc = ferror(f) ? sf_err(-EIO, "cannot read secret key file '%s'", path) : 0;
	fclose(f);
	if (rc == 0 && n == sizeof(buf))
		rc = sf_err(-EINVAL, "secret key file '%s' is too long", path);
	if (rc == 0)
		rc = signing_secret_key_parse(buf, n, out);
	return rc;
}

int signing_public_key_parse(const char *s, size_t len, struct nix_public_key *out)
{
	struct nix_public_key k;
	int rc = key_split(s, len, "public key", k.name, k.key, sizeof(k.key));

	if (rc < 0)
		return rc;
	*out = k;
	return 0;
}

void signing_public_key_of(const struct nix_secret_key *sk, struct nix_public_key *out)
{
	strcpy(out->name, sk->name);
	memcpy(out->key, sk->public_key, 32);
}

/* "name:base64(data)" into a malloc'd string. */
static int name_b64(const char *name, const uint8_t *data, size_t len, char **out)
{
	size_t nl = strlen(name), bl = base64_encoded_len(len, BASE64_STD);
	char *s = malloc(nl + 1 + bl + 1);

	if (!s)
		return -ENOMEM;
	memcpy(s, name, nl);
	s[nl] = ':';
	base64_encode(data, len, s + nl + 1, BASE64_STD);
	*out = s;
	return 0;
}

int signing_public_key_format(const struct nix_public_key *pk, char **out)
{
	return name_b64(pk->name, pk->key, sizeof(pk->key), out);
}

int signing_public_keys_parse(const char *list, struct nix_public_key **out, size_t *n)
{
	struct nix_public_key *keys = NULL;
	size_t count = 0;

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " \t\n");
		struct nix_public_key *k;
		int rc;

		if (len == 0) {
			p++;
			continue;
		}
		k = realloc(keys, (count + 1) * sizeof(*k));
		if (!k) {
			free(keys);
			return -ENOMEM;
		}
		keys = k;
		rc = signing_public_key_parse(p, len, &keys[count]);
		if (rc < 0) {
			free(keys);
			return rc;
		}
		count++;
		p += len;
	}
	*out = keys;
	*n = count;
	return 0;
}

int signing_sig_parse(const char *s, size_t len, struct path_signature *out)
{
	char name[SIGNING_MAX_KEY_NAME + 1];
	uint8_t data[SIGNING_SIG_LEN];
	char *n;
	int rc = key_split(s, len, "signature", name, data, sizeof(data));

	if (rc < 0)
		return rc;
	n = strdup(name);
	if (!n)
		return -ENOMEM;
	out->name = n;
	memcpy(out->data, data, sizeof(data));
	return 0;
}

int signing_sig_format(const struct path_signature *sig, char **out)
{
	return name_b64(sig->name, sig->data, SIGNING_SIG_LEN, out);
}

static int ref_full_cmp(const void *a, const void *b)
{
	return store_path_cmp(a, b);
}

int signing_fingerprint(const struct path_info *pi, char **out)
{
	struct store_path *refs = NULL;
	char full[STORE_PATH_FULL_MAX], nar[53];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc = 0;

	if (pi->n_refs) {
		refs = malloc(pi->n_refs * sizeof(*refs));
		if (!refs)
			return -ENOMEM;
		memcpy(refs, pi->refs, pi->n_refs * sizeof(*refs));
		qsort(refs, pi->n_refs, sizeof(*refs), ref_full_cmp);
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		free(refs);
		return -ENOMEM;
	}
	store_path_full(&pi->path, full);
	nixbase32_encode(pi->nar_sha256, 32, nar);
	fprintf(f, "1;%s;sha256:%s;%" PRIu64 ";", full, nar, pi->nar_size);
	for (size_t i = 0; i < pi->n_refs; i++) {
		store_path_full(&refs[i], full);
		fprintf(f, "%s%s", i ? "," : "", full);
	}
	if (ferror(f))
		rc = -ENOMEM;
	if (fclose(f) != 0)
		rc = -ENOMEM;
	free(refs);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

int signing_sign(const struct nix_secret_key *sk, const void *msg, size_t len,
		 struct path_signature *out)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk->seed, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sl = SIGNING_SIG_LEN;
	uint8_t sig[SIGNING_SIG_LEN];
	int rc = 0;

	if (!k || !ctx)
		rc = sf_err(-EIO, "cannot set up ed25519 signing");
	else if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
		 EVP_DigestSign(ctx, sig, &sl, msg, len) != 1 || sl != SIGNING_SIG_LEN)
		rc = sf_err(-EIO, "ed25519 signing with key '%s' failed", sk->name);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	if (rc < 0)
		return rc;
	out->name = strdup(sk->name);
	if (!out->name)
		return -ENOMEM;
	memcpy(out->data, sig, SIGNING_SIG_LEN);
	return 0;
}

int signing_sign_path_info(const struct nix_secret_key *sk, struct path_info *pi)
{
	struct path_signature sig;
	char *fp = NULL;
	int rc = signing_fingerprint(pi, &fp);

	if (rc < 0)
		return rc;
	rc = signing_sign(sk, fp, strlen(fp), &sig);
	free(fp);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < pi->n_sigs; i++) {
		if (!strcmp(pi->sigs[i].name, sig.name) &&
		    !memcmp(pi->sigs[i].data, sig.data, SIGNING_SIG_LEN)) {
			free(sig.name);
			return 0;
		}
	}
	rc = path_info_add_sig(pi, sig.name, sig.data);
	free(sig.name);
	return rc;
}

int signing_verify(const struct nix_public_key *pk, const void *msg, size_t len,
		   const uint8_t sig[SIGNING_SIG_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk->key, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = 0, ok;

	if (!k || !ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) != 1) {
		rc = sf_err(-EIO, "cannot set up ed25519 verification");
	} else {
		ok = EVP_DigestVerify(ctx, sig, SIGNING_SIG_LEN, msg, len);
		if (ok != 1)
			rc = sf_err(-EBADMSG, "signature by '%s' does not verify", pk->name);
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

int signing_verify_path_info(const struct path_info *pi, const struct nix_public_key *keys,
			     size_t n_keys, size_t *n_valid)
{
	char *fp = NULL;
	size_t valid = 0;
	int rc = signing_fingerprint(pi, &fp);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < pi->n_sigs; i++) {
		for (size_t k = 0; k < n_keys; k++) {
			if (strcmp(keys[k].name, pi->sigs[i].name) != 0)
				continue;
			rc = signing_verify(&keys[k], fp, strlen(fp), pi->sigs[i].data);
			if (rc == 0) {
				valid++;
				break;
			}
			if (rc != -EBADMSG)
				break;
			rc = 0;
		}
		if (rc < 0)
			break;
	}
	free(fp);
	if (rc < 0)
		return rc;
	*n_valid = valid;
	return 0;
}
