/* serve_auth.c - who may upload to `storefs serve` (docs/trust.md "Uploads"):
 * the secret of --upload-token-file, sent as a Bearer token or as the
 * password of HTTP Basic auth (what Nix's curl sends from a netrc file). */
#include "serve/serve.h"

#include "common/encoding.h"
#include "common/err.h"
#include "common/secret_file.h"
#include "store/nix_hash.h"

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest Authorization header value considered (a Basic header holds the
 * base64 of "user:token"). */
#define AUTH_HEADER_MAX (2 * SECRET_FILE_MAX)

int serve_token_load(const char *file, uint8_t sha256[32])
{
	char *token;
	size_t len;
	int rc = secret_file_load(file, "upload token", &token, &len);

	if (rc < 0)
		return rc;
	rc = nix_hash_buf(NIX_HASH_SHA256, token, len, sha256);
	secret_free(token);
	return rc;
}

/* Compares digests, so neither the time nor the lengths compared depend on
 * the secret (CRYPTO_memcmp is constant-time for equal lengths). */
static bool token_matches(const struct server *s, const char *given, size_t len)
{
	uint8_t h[32];
	bool ok = nix_hash_buf(NIX_HASH_SHA256, given, len, h) == 0 &&
		  CRYPTO_memcmp(h, s->token_sha256, 32) == 0;

	OPENSSL_cleanse(h, sizeof(h));
	return ok;
}

/* "Basic base64(user:password)": the password must be the token. */
static bool basic_matches(const struct server *s, const char *b64)
{
	uint8_t raw[AUTH_HEADER_MAX];
	size_t n = 0;
	char *colon;
	bool ok;

	if (base64_decode(b64, strlen(b64), raw, sizeof(raw) - 1, &n, BASE64_STD) < 0) {
		sf_err_clear();
		return false;
	}
	raw[n] = '\0';
	colon = memchr(raw, ':', n);
	ok = colon && token_matches(s, colon + 1, n - (size_t)(colon + 1 - (char *)raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return ok;
}

unsigned serve_auth_check(const struct server *s, struct MHD_Connection *c)
{
	const char *h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!h || !*h)
		return MHD_HTTP_UNAUTHORIZED;
	if (strlen(h) > AUTH_HEADER_MAX)
		return MHD_HTTP_FORBIDDEN;
	if (!strncasecmp(h, "Bearer ", 7))
		return token_matches(s, h + 7, strlen(h + 7)) ? 0 : MHD_HTTP_FORBIDDEN;
	if (!strncasecmp(h, "Basic ", 6))
		return basic_matches(s, h + 6) ? 0 : MHD_HTTP_FORBIDDEN;
	return MHD_HTTP_UNAUTHORIZED;
}
