/* ca_verify.c - a path's CA against its store path and its content. */
#include "store/ca_verify.h"

#include "common/err.h"
#include "store/nar.h"
#include "store/nix_hash.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (256u << 10)

/* "sha256:<nix32>" of a digest, as Nix prints hashes in this message. */
static void hash_text(enum nix_hash_algo algo, const uint8_t *digest, char out[NIX_HASH_TEXT_MAX])
{
	struct nix_hash h = {.algo = algo};

	memcpy(h.digest, digest, nix_hash_len(algo));
	nix_hash_print(&h, NIX_HASH_NIX32, out);
}

static int mismatch(const struct path_info *pi, enum nix_hash_algo algo, const uint8_t *got)
{
	char full[STORE_PATH_FULL_MAX], want[NIX_HASH_TEXT_MAX], have[NIX_HASH_TEXT_MAX];

	store_path_full(&pi->path, full);
	hash_text(algo, pi->ca_digest, want);
	hash_text(algo, got, have);
	return sf_err(-EIO, "ca hash mismatch importing path '%s'; specified: %s got: %s", full,
		      want, have);
}

/* Step 1: the CA with the references and the name gives the path. */
static int check_path(const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX], other[STORE_PATH_FULL_MAX], ca[NIX_CA_TEXT_MAX];
	struct store_path *refs = malloc((pi->n_refs ? pi->n_refs : 1) * sizeof(*refs));
	struct store_path sp;
	size_t n = 0;
	bool self = false;
	int rc;

	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < pi->n_refs; i++) {
		if (store_path_cmp(&pi->refs[i], &pi->path) == 0)
			self = true;
		else
			refs[n++] = pi->refs[i];
	}
	store_path_full(&pi->path, full);
	rc = ca_print(pi->ca_type, pi->ca_digest, pi->ca_digest_len, ca);
	if (rc == 0)
		rc = ca_store_path(pi->ca_type, pi->ca_digest, pi->ca_digest_len, pi->path.name,
				   refs, n, self, &sp);
	free(refs);
	if (rc < 0)
		return sf_err(-EINVAL, "'%s' has an impossible CA: %s", full, sf_errmsg(rc));
	if (store_path_cmp(&sp, &pi->path) == 0)
		return 0;
	store_path_full(&sp, other);
	return sf_err(-EINVAL, "'%s' claims to be content-addressed but its CA '%s' gives '%s'",
		      full, ca, other);
}

static bool self_referencing(const struct path_info *pi)
{
	for (size_t i = 0; i < pi->n_refs; i++)
		if (store_path_cmp(&pi->refs[i], &pi->path) == 0)
			return true;
	return false;
}

int ca_verify_claims(const struct path_info *pi)
{
	int rc;

	if (!pi->has_ca)
		return 0;
	rc = check_path(pi);
	/* A self-referencing path's CA is a hash modulo its own hash part,
	 * not its NAR hash: only its content can tell (ca_verify). */
	if (rc == 0 && pi->ca_type == CA_NAR_SHA256 && !self_referencing(pi) &&
	    memcmp(pi->ca_digest, pi->nar_sha256, 32))
		rc = mismatch(pi, NIX_HASH_SHA256, pi->nar_sha256);
	return rc;
}

/* --- hashing the content --- */

/* The hash of a self-referencing path's NAR (docs/store-paths.md §4): every occurrence
 * of the path's 32-character hash part is hashed as 32 NUL bytes, and
 * "|<offset>" of each occurrence is hashed after the NAR. Occurrences may
 * span writes, so the last 31 bytes are held back until more arrive. */
struct modulo_sink {
	struct nix_hasher *h;
	char part[STORE_PATH_HASH_CHARS];
	uint8_t *buf; /* held-back bytes, then the new ones */
	size_t held, cap;
	uint64_t pos; /* bytes hashed so far */
	uint64_t *matches;
	size_t n, mcap;
};

static int modulo_match(struct modulo_sink *m, uint64_t at)
{
	if (m->n == m->mcap) {
		size_t cap = m->mcap ? 2 * m->mcap : 16;
		uint64_t *v = reallocarray(m->matches, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->matches = v, m->mcap = cap;
	}
	m->matches[m->n++] = at;
	return 0;
}

static int modulo_write(void *ctx, const void *data, size_t len)
{
	struct modulo_sink *m = ctx;
	size_t total = m->held + len, keep, j = 0;
	uint8_t *p;
	int rc = 0;

	if (total > m->cap) {
		uint8_t *b = realloc(m->buf, total);

		if (!b)
			return -ENOMEM;
		m->buf = b, m->cap = total;
	}
	memcpy(m->buf + m->held, data, len);
	while (rc == 0 && (p = memmem(m->buf + j, total - j, m->part, sizeof(m->part)))) {
		j = (size_t)(p - m->buf);
		rc = modulo_match(m, m->pos + j);
		memset(p, 0, sizeof(m->part));
		j += sizeof(m->part);
	}
	keep = total < sizeof(m->part) ? total : sizeof(m->part) - 1;
	if (rc == 0)
		rc = nix_hasher_update(m->h, m->buf, total - keep);
	m->pos += total - keep;
	memmove(m->buf, m->buf + total - keep, keep);
	m->held = keep;
	return rc;
}

static int modulo_finish(struct modulo_sink *m)
{
	char at[24];
	int rc = nix_hasher_update(m->h, m->buf, m->held);

	for (size_t i = 0; rc == 0 && i < m->n; i++) {
		int n = snprintf(at, sizeof(at), "|%llu", (unsigned long long)m->matches[i]);

		rc = nix_hasher_update(m->h, at, (size_t)n);
	}
	return rc;
}

static int hash_write(void *ctx, const void *buf, size_t len)
{
	return nix_hasher_update(ctx, buf, len);
}

static int modulo_hash(struct blob_service *bs, struct dir_service *ds, const struct path_info *pi,
		       uint8_t out[32])
{
	char part[STORE_PATH_HASH_CHARS + 1];
	struct modulo_sink m = {0};
	int rc = nix_hasher_new(NIX_HASH_SHA256, &m.h);

	if (rc < 0)
		return rc;
	store_path_hash_part(pi->path.digest, part);
	memcpy(m.part, part, sizeof(m.part));
	rc = nar_render(bs, ds, &pi->root, modulo_write, &m, NULL);
	if (rc == 0)
		rc = modulo_finish(&m);
	if (rc == 0)
		rc = nix_hasher_final(m.h, out);
	nix_hasher_free(m.h);
	free(m.buf);
	free(m.matches);
	return rc;
}

/* Hashes the bytes of blob `root` (a file node) into `h`. */
static int hash_file(struct blob_service *bs, const struct node *root, struct nix_hasher *h)
{
	uint8_t *buf = malloc(READ_CHUNK);
	struct blob_reader *r = NULL;
	uint64_t off = 0;
	size_t n = 1;
	int rc = buf ? blob_service_open_read(bs, &root->digest, &r) : -ENOMEM;

	while (rc == 0 && n > 0) {
		rc = blob_reader_pread(r, buf, READ_CHUNK, off, &n);
		if (rc == 0)
			rc = nix_hasher_update(h, buf, n);
		off += rc == 0 ? n : 0;
	}
	if (rc == 0 && off != root->size)
		rc = sf_err(-EIO, "a blob has %llu bytes, its node says %llu",
			    (unsigned long long)off, (unsigned long long)root->size);
	blob_reader_close(r);
	free(buf);
	return rc;
}

/* The flat and text kinds hash one file; anything else cannot match. */
static int check_flat_root(const struct path_info *pi, bool text)
{
	char full[STORE_PATH_FULL_MAX];

	if (pi->root.kind == NODE_FILE && !pi->root.executable)
		return 0;
	store_path_full(&pi->path, full);
	return sf_err(-EIO,
		      "ca hash mismatch importing path '%s'; a %s CA needs a regular, "
		      "non-executable file, not %s",
		      full, text ? "text" : "flat",
		      pi->root.kind == NODE_FILE	? "an executable file"
		      : pi->root.kind == NODE_DIRECTORY ? "a directory"
							: "a symlink");
}

static int content_hash(struct blob_service *bs, struct dir_service *ds, const struct path_info *pi,
			enum nix_hash_algo algo, bool recursive, uint8_t *out)
{
	struct nix_hasher *h;
	int rc = nix_hasher_new(algo, &h);

	if (rc < 0)
		return rc;
	if (recursive)
		rc = nar_render(bs, ds, &pi->root, hash_write, h, NULL);
	else
		rc = hash_file(bs, &pi->root, h);
	if (rc == 0)
		rc = nix_hasher_final(h, out);
	nix_hasher_free(h);
	return rc;
}

int ca_verify(struct blob_service *bs, struct dir_service *ds, const struct path_info *pi)
{
	uint8_t got[NIX_HASH_MAX_LEN];
	enum nix_hash_algo algo;
	bool recursive, text;
	int rc;

	if (!pi->has_ca || (pi->ca_type == CA_NAR_SHA256 && !self_referencing(pi)))
		return ca_verify_claims(pi);
	rc = check_path(pi);
	if (rc == 0 && pi->ca_type == CA_NAR_SHA256) {
		rc = modulo_hash(bs, ds, pi, got);
		if (rc == 0 && memcmp(got, pi->ca_digest, 32))
			rc = mismatch(pi, NIX_HASH_SHA256, got);
		return rc;
	}
	if (rc == 0)
		rc = ca_hash_info(pi->ca_type, &algo, &recursive, &text);
	if (rc == 0 && !recursive)
		rc = check_flat_root(pi, text);
	if (rc == 0)
		rc = content_hash(bs, ds, pi, algo, recursive, got);
	if (rc == 0 && memcmp(got, pi->ca_digest, nix_hash_len(algo)))
		rc = mismatch(pi, algo, got);
	return rc;
}
