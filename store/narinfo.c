/* narinfo.c - .narinfo text: Nix's writer order and a strict parser
 * (docs/narinfo.md §2-3). */
#include "store/narinfo.h"

#include "common/err.h"
#include "store/nixbase32.h"
#include "store/signing.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void narinfo_free(struct narinfo *ni)
{
	if (!ni)
		return;
	free(ni->url);
	free(ni->compression);
	free(ni->system);
	free(ni->refs);
	for (size_t i = 0; i < ni->n_sigs; i++)
		free(ni->sigs[i].name);
	free(ni->sigs);
	free(ni);
}

/* --- parser --- */

struct np_state {
	struct narinfo *ni;
	size_t line;
	bool has_path, has_nar_hash, has_ca;
};

/* Reports a corrupt line. */
__attribute__((format(printf, 2, 3))) static int np_fail(const struct np_state *st, const char *fmt,
							 ...);

static int np_fail(const struct np_state *st, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sf_err(-EINVAL, "narinfo is corrupt at line %zu: %s", st->line, msg);
}

static int np_u64(const struct np_state *st, const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 20)
		return np_fail(st, "'%.*s' is not a number", (int)len, v);
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(v[i] - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return np_fail(st, "'%.*s' is not a number", (int)len, v);
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

static int np_strdup(const char *v, size_t len, char **out)
{
	char *s = strndup(v, len);

	if (!s)
		return -ENOMEM;
	free(*out);
	*out = s;
	return 0;
}

static int np_store_path(struct np_state *st, const char *v, size_t len)
{
	if (store_path_parse(v, len, false, &st->ni->path) < 0)
		return np_fail(st, "StorePath '%.*s' is invalid: %s", (int)len, v,
			       sf_errmsg(-EINVAL));
	st->has_path = true;
	return 0;
}

static int np_url(struct np_state *st, const char *v, size_t len)
{
	return np_strdup(v, len, &st->ni->url);
}

static int np_compression(struct np_state *st, const char *v, size_t len)
{
	return np_strdup(v, len, &st->ni->compression);
}

static int np_system(struct np_state *st, const char *v, size_t len)
{
	return np_strdup(v, len, &st->ni->system);
}

static int np_file_hash(struct np_state *st, const char *v, size_t len)
{
	if (nix_hash_parse(v, len, &st->ni->file_hash) < 0)
		return np_fail(st, "FileHash: %s", sf_errmsg(-EINVAL));
	st->ni->has_file_hash = true;
	return 0;
}

static int np_file_size(struct np_state *st, const char *v, size_t len)
{
	int rc = np_u64(st, v, len, &st->ni->file_size);

	st->ni->has_file_size = rc == 0;
	return rc;
}

static int np_nar_hash(struct np_state *st, const char *v, size_t len)
{
	struct nix_hash h;

	if (nix_hash_parse(v, len, &h) < 0)
		return np_fail(st, "NarHash: %s", sf_errmsg(-EINVAL));
	if (h.algo != NIX_HASH_SHA256)
		return np_fail(st, "NarHash '%.*s' is not sha256", (int)len, v);
	memcpy(st->ni->nar_sha256, h.digest, 32);
	st->has_nar_hash = true;
	return 0;
}

static int np_nar_size(struct np_state *st, const char *v, size_t len)
{
	return np_u64(st, v, len, &st->ni->nar_size);
}

static int np_ref_add(struct np_state *st, const char *v, size_t len)
{
	struct narinfo *ni = st->ni;
	struct store_path *r;

	r = realloc(ni->refs, (ni->n_refs + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	ni->refs = r;
	if (store_path_parse_basename(v, len, &r[ni->n_refs]) < 0)
		return np_fail(st, "reference '%.*s' is invalid: %s", (int)len, v,
			       sf_errmsg(-EINVAL));
	ni->n_refs++;
	return 0;
}

static int np_references(struct np_state *st, const char *v, size_t len)
{
	if (st->ni->n_refs)
		return np_fail(st, "References after a non-empty References line");
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		int rc;

		while (i + n < len && v[i + n] != ' ')
			n++;
		if (n) {
			rc = np_ref_add(st, v + i, n);
			if (rc < 0)
				return rc;
		}
		i += n + 1;
	}
	return 0;
}

static int np_deriver(struct np_state *st, const char *v, size_t len)
{
	if (len == 15 && !memcmp(v, "unknown-deriver", 15)) {
		st->ni->has_deriver = false;
		return 0;
	}
	if (store_path_parse_basename(v, len, &st->ni->deriver) < 0)
		return np_fail(st, "Deriver '%.*s' is invalid: %s", (int)len, v,
			       sf_errmsg(-EINVAL));
	st->ni->has_deriver = true;
	return 0;
}

static int np_sig(struct np_state *st, const char *v, size_t len)
{
	struct narinfo *ni = st->ni;
	struct path_signature sig, *s;

	if (signing_sig_parse(v, len, &sig) < 0)
		return np_fail(st, "Sig: %s", sf_errmsg(-EINVAL));
	for (size_t i = 0; i < ni->n_sigs; i++) {
		if (!strcmp(ni->sigs[i].name, sig.name) &&
		    !memcmp(ni->sigs[i].data, sig.data, 64)) {
			free(sig.name);
			return 0;
		}
	}
	s = realloc(ni->sigs, (ni->n_sigs + 1) * sizeof(*s));
	if (!s) {
		free(sig.name);
		return -ENOMEM;
	}
	ni->sigs = s;
	s[ni->n_sigs++] = sig;
	return 0;
}

static int np_ca(struct np_state *st, const char *v, size_t len)
{
	struct narinfo *ni = st->ni;

	if (st->has_ca)
		return np_fail(st, "second CA line");
	st->has_ca = true;
	if (len == 0)
		return 0;
	if (ca_parse(v, len, &ni->ca_type, ni->ca_digest, &ni->ca_digest_len) < 0)
		return np_fail(st, "CA: %s", sf_errmsg(-EINVAL));
	ni->has_ca = true;
	return 0;
}

static const struct {
	const char *key;
	int (*fn)(struct np_state *st, const char *v, size_t len);
} np_keys[] = {
    {"StorePath", np_store_path},
    {"URL", np_url},
    {"Compression", np_compression},
    {"FileHash", np_file_hash},
    {"FileSize", np_file_size},
    {"NarHash", np_nar_hash},
    {"NarSize", np_nar_size},
    {"References", np_references},
    {"Deriver", np_deriver},
    {"System", np_system},
    {"Sig", np_sig},
    {"CA", np_ca},
};

static int np_line(struct np_state *st, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t kl, vl;

	if (!colon || (size_t)(colon - line) + 1 >= len || colon[1] != ' ')
		return np_fail(st, "'%.*s' is not 'Key: value'", (int)(len > 80 ? 80 : len), line);
	kl = (size_t)(colon - line);
	vl = len - kl - 2;
	for (size_t i = 0; i < sizeof(np_keys) / sizeof(np_keys[0]); i++) {
		if (strlen(np_keys[i].key) == kl && !memcmp(np_keys[i].key, line, kl))
			return np_keys[i].fn(st, colon + 2, vl);
	}
	return 0; /* unknown keys are ignored, as Nix does */
}

static int np_lines(struct np_state *st, const char *text, size_t len)
{
	if (memchr(text, '\0', len))
		return sf_err(-EINVAL, "narinfo is corrupt: it contains a NUL byte");
	if (memchr(text, '\r', len))
		return sf_err(-EINVAL, "narinfo is corrupt: it contains a carriage return");
	if (len == 0 || text[len - 1] != '\n')
		return sf_err(-EINVAL, "narinfo is corrupt: no final newline");
	for (size_t pos = 0; pos < len;) {
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t ll = (size_t)(eol - (text + pos));
		int rc;

		st->line++;
		rc = np_line(st, text + pos, ll);
		if (rc < 0)
			return rc;
		pos += ll + 1;
	}
	return 0;
}

static int np_finish(struct np_state *st)
{
	struct narinfo *ni = st->ni;

	if (!st->has_path)
		return sf_err(-EINVAL, "narinfo is corrupt: no StorePath");
	if (!ni->url || !ni->url[0])
		return sf_err(-EINVAL, "narinfo is corrupt: no URL");
	if (!st->has_nar_hash)
		return sf_err(-EINVAL, "narinfo is corrupt: no NarHash");
	if (ni->nar_size == 0)
		return sf_err(-EINVAL, "narinfo is corrupt: no NarSize or NarSize 0");
	if (!ni->compression)
		return np_strdup("bzip2", 5, &ni->compression);
	return 0;
}

int narinfo_parse(const char *text, size_t len, struct narinfo **out)
{
	struct narinfo *ni = calloc(1, sizeof(*ni));
	struct np_state st = {.ni = ni};
	int rc;

	if (!ni)
		return -ENOMEM;
	rc = np_lines(&st, text, len);
	if (rc == 0)
		rc = np_finish(&st);
	if (rc < 0) {
		narinfo_free(ni);
		return rc;
	}
	*out = ni;
	return 0;
}

/* --- writer --- */

static void nw_refs(FILE *f, const struct narinfo *ni, struct store_path *sorted)
{
	char base[STORE_PATH_MAX_BASENAME + 1];

	if (ni->n_refs)
		memcpy(sorted, ni->refs, ni->n_refs * sizeof(*sorted));
	for (size_t i = 1; i < ni->n_refs; i++) {
		struct store_path t = sorted[i];
		size_t j = i;

		for (; j > 0 && store_path_cmp(&sorted[j - 1], &t) > 0; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = t;
	}
	fputs("References: ", f);
	for (size_t i = 0; i < ni->n_refs; i++) {
		store_path_basename(&sorted[i], base);
		fprintf(f, "%s%s", i ? " " : "", base);
	}
	fputc('\n', f);
}

static int nw_tail(FILE *f, const struct narinfo *ni)
{
	char base[STORE_PATH_MAX_BASENAME + 1], ca[NIX_CA_TEXT_MAX];
	int rc;

	if (ni->has_deriver) {
		store_path_basename(&ni->deriver, base);
		fprintf(f, "Deriver: %s\n", base);
	}
	if (ni->system)
		fprintf(f, "System: %s\n", ni->system);
	for (size_t i = 0; i < ni->n_sigs; i++) {
		char *sig;

		rc = signing_sig_format(&ni->sigs[i], &sig);
		if (rc < 0)
			return rc;
		fprintf(f, "Sig: %s\n", sig);
		free(sig);
	}
	if (ni->has_ca) {
		rc = ca_print(ni->ca_type, ni->ca_digest, ni->ca_digest_len, ca);
		if (rc < 0)
			return rc;
		fprintf(f, "CA: %s\n", ca);
	}
	return 0;
}

static int nw_body(FILE *f, const struct narinfo *ni, struct store_path *sorted)
{
	char full[STORE_PATH_FULL_MAX], hash[NIX_HASH_TEXT_MAX];
	struct nix_hash nh = {.algo = NIX_HASH_SHA256};

	store_path_full(&ni->path, full);
	fprintf(f, "StorePath: %s\nURL: %s\nCompression: %s\n", full, ni->url,
		ni->compression ? ni->compression : "bzip2");
	if (ni->has_file_hash) {
		nix_hash_print(&ni->file_hash, NIX_HASH_NIX32, hash);
		fprintf(f, "FileHash: %s\n", hash);
	}
	if (ni->has_file_size)
		fprintf(f, "FileSize: %" PRIu64 "\n", ni->file_size);
	memcpy(nh.digest, ni->nar_sha256, 32);
	nix_hash_print(&nh, NIX_HASH_NIX32, hash);
	fprintf(f, "NarHash: %s\nNarSize: %" PRIu64 "\n", hash, ni->nar_size);
	nw_refs(f, ni, sorted);
	return nw_tail(f, ni);
}

static int nw_check(const struct narinfo *ni)
{
	if (!ni->url || !ni->url[0] || strchr(ni->url, '\n'))
		return sf_err(-EINVAL, "narinfo URL is empty or has a newline");
	if (ni->compression && strchr(ni->compression, '\n'))
		return sf_err(-EINVAL, "narinfo compression has a newline");
	if (ni->system && strchr(ni->system, '\n'))
		return sf_err(-EINVAL, "narinfo system has a newline");
	return 0;
}

int narinfo_write(const struct narinfo *ni, char **out, size_t *out_len)
{
	struct store_path *sorted = malloc((ni->n_refs ? ni->n_refs : 1) * sizeof(*sorted));
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc = nw_check(ni);

	if (!sorted || rc < 0) {
		free(sorted);
		return sorted ? rc : -ENOMEM;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		free(sorted);
		return -ENOMEM;
	}
	rc = nw_body(f, ni, sorted);
	if (ferror(f) && rc == 0)
		rc = -ENOMEM;
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	free(sorted);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* --- conversions --- */

static int ni_copy_sigs(struct narinfo *ni, const struct path_info *pi)
{
	ni->sigs = calloc(pi->n_sigs ? pi->n_sigs : 1, sizeof(*ni->sigs));
	if (!ni->sigs)
		return -ENOMEM;
	for (size_t i = 0; i < pi->n_sigs; i++) {
		ni->sigs[i].name = strdup(pi->sigs[i].name);
		if (!ni->sigs[i].name)
			return -ENOMEM;
		memcpy(ni->sigs[i].data, pi->sigs[i].data, 64);
		ni->n_sigs++;
	}
	return 0;
}

static int ni_fill(struct narinfo *ni, const struct path_info *pi)
{
	size_t dl = strlen(pi->deriver.name);

	ni->path = pi->path;
	memcpy(ni->nar_sha256, pi->nar_sha256, 32);
	ni->nar_size = pi->nar_size;
	ni->refs = malloc((pi->n_refs ? pi->n_refs : 1) * sizeof(*ni->refs));
	if (!ni->refs)
		return -ENOMEM;
	if (pi->n_refs)
		memcpy(ni->refs, pi->refs, pi->n_refs * sizeof(*ni->refs));
	ni->n_refs = pi->n_refs;
	if (pi->has_deriver) {
		if (dl + 4 > STORE_PATH_MAX_NAME)
			return sf_err(-EINVAL, "deriver name '%s.drv' is too long",
				      pi->deriver.name);
		ni->deriver = pi->deriver;
		memcpy(ni->deriver.name + dl, ".drv", 5);
		ni->has_deriver = true;
	}
	ni->has_ca = pi->has_ca;
	ni->ca_type = pi->ca_type;
	ni->ca_digest_len = pi->ca_digest_len;
	memcpy(ni->ca_digest, pi->ca_digest, sizeof(ni->ca_digest));
	return ni_copy_sigs(ni, pi);
}

int narinfo_from_path_info(const struct path_info *pi, const char *url, const char *compression,
			   const struct nix_hash *file_hash, bool has_file_size, uint64_t file_size,
			   struct narinfo **out)
{
	struct narinfo *ni = calloc(1, sizeof(*ni));
	int rc;

	if (!ni)
		return -ENOMEM;
	ni->url = strdup(url);
	ni->compression = strdup(compression ? compression : "none");
	rc = ni->url && ni->compression ? ni_fill(ni, pi) : -ENOMEM;
	if (rc < 0) {
		narinfo_free(ni);
		return rc;
	}
	if (file_hash) {
		ni->file_hash = *file_hash;
		ni->has_file_hash = true;
	}
	ni->has_file_size = has_file_size;
	ni->file_size = file_size;
	*out = ni;
	return 0;
}

static int pi_fill(struct path_info *pi, const struct narinfo *ni, const struct node *root)
{
	size_t dl = strlen(ni->deriver.name);
	int rc;

	pi->path = ni->path;
	rc = path_info_set_root(pi, root);
	memcpy(pi->nar_sha256, ni->nar_sha256, 32);
	pi->nar_size = ni->nar_size;
	for (size_t i = 0; rc == 0 && i < ni->n_refs; i++)
		rc = path_info_add_ref(pi, &ni->refs[i]);
	for (size_t i = 0; rc == 0 && i < ni->n_sigs; i++)
		rc = path_info_add_sig(pi, ni->sigs[i].name, ni->sigs[i].data);
	if (rc < 0)
		return rc;
	if (ni->has_deriver) {
		pi->deriver = ni->deriver;
		if (dl > 4 && !strcmp(ni->deriver.name + dl - 4, ".drv"))
			pi->deriver.name[dl - 4] = '\0';
		pi->has_deriver = true;
	}
	pi->has_ca = ni->has_ca;
	pi->ca_type = ni->ca_type;
	pi->ca_digest_len = ni->ca_digest_len;
	memcpy(pi->ca_digest, ni->ca_digest, sizeof(pi->ca_digest));
	return path_info_validate(pi);
}

int narinfo_to_path_info(const struct narinfo *ni, const struct node *root, struct path_info **out)
{
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	rc = pi_fill(pi, ni, root);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}
