/* path_info.c - PathInfo in memory, its validation (docs/castore.md §7) and
 * its proto encoding (docs/castore.md §6). */
#include "store/path_info.h"

#include "common/err.h"
#include "store/nix_hash.h"
#include "castore.pb-c.h"
#include "pathinfo.pb-c.h"

#include <stdlib.h>
#include <string.h>

int path_info_new(struct path_info **out)
{
	struct path_info *pi = calloc(1, sizeof(*pi));

	if (!pi)
		return -ENOMEM;
	*out = pi;
	return 0;
}

void path_info_free(struct path_info *pi)
{
	if (!pi)
		return;
	free(pi->root_target);
	free(pi->refs);
	for (size_t i = 0; i < pi->n_sigs; i++)
		free(pi->sigs[i].name);
	free(pi->sigs);
	free(pi);
}

int path_info_set_root(struct path_info *pi, const struct node *root)
{
	uint8_t *target = NULL;

	if (root->kind == NODE_SYMLINK) {
		int rc = castore_target_check(root->target, root->target_len);

		if (rc < 0)
			return rc;
		target = malloc(root->target_len);
		if (!target)
			return -ENOMEM;
		memcpy(target, root->target, root->target_len);
	}
	free(pi->root_target);
	pi->root_target = target;
	pi->root = *root;
	pi->root.target = target;
	pi->root.target_len = target ? root->target_len : 0;
	store_path_basename(&pi->path, pi->root_name);
	pi->root.name = (const uint8_t *)pi->root_name;
	pi->root.name_len = strlen(pi->root_name);
	return 0;
}

/* Inserts at `pos`, keeping the array's order. */
static int refs_insert(struct path_info *pi, size_t pos, const struct store_path *ref)
{
	struct store_path *r = realloc(pi->refs, (pi->n_refs + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	memmove(r + pos + 1, r + pos, (pi->n_refs - pos) * sizeof(*r));
	r[pos] = *ref;
	pi->refs = r;
	pi->n_refs++;
	return 0;
}

int path_info_add_ref(struct path_info *pi, const struct store_path *ref)
{
	size_t pos = pi->n_refs;
	int rc = store_path_name_check(ref->name, strnlen(ref->name, sizeof(ref->name)));

	if (rc < 0)
		return rc;
	/* Keep Nix's set order; a duplicate is the same reference. */
	while (pos > 0 && (rc = store_path_cmp(&pi->refs[pos - 1], ref)) >= 0) {
		if (rc == 0)
			return 0;
		pos--;
	}
	return refs_insert(pi, pos, ref);
}

int path_info_add_sig(struct path_info *pi, const char *name, const uint8_t data[64])
{
	struct path_signature *s = realloc(pi->sigs, (pi->n_sigs + 1) * sizeof(*s));
	char *n;

	if (!s)
		return -ENOMEM;
	pi->sigs = s;
	n = strdup(name);
	if (!n)
		return -ENOMEM;
	s[pi->n_sigs].name = n;
	memcpy(s[pi->n_sigs].data, data, 64);
	pi->n_sigs++;
	return 0;
}

static int path_check(const struct store_path *p, const char *what)
{
	size_t len = strnlen(p->name, sizeof(p->name));

	if (len == sizeof(p->name))
		return sf_err(-EINVAL, "%s name is not terminated", what);
	return store_path_name_check(p->name, len);
}

/* docs/castore.md §7 rules 5 and 6: a valid root node named by the store path basename. */
static int root_check(const struct path_info *pi)
{
	char base[STORE_PATH_MAX_BASENAME + 1];
	int rc = path_check(&pi->path, "store path");

	if (rc < 0)
		return rc;
	rc = node_validate(&pi->root, true);
	if (rc < 0)
		return rc;
	store_path_basename(&pi->path, base);
	if (pi->root.name_len != strlen(base) || memcmp(pi->root.name, base, pi->root.name_len))
		return sf_err(-EINVAL, "root node name '%.*s' is not the store path '%s'",
			      (int)pi->root.name_len, pi->root.name, base);
	return 0;
}

static int ca_check(enum ca_hash type, size_t digest_len)
{
	enum nix_hash_algo algo = NIX_HASH_SHA256;
	int rc = ca_hash_info(type, &algo, NULL, NULL);

	if (rc < 0)
		return rc;
	if (digest_len != nix_hash_len(algo))
		return sf_err(-EINVAL, "CA digest has %zu bytes, expected %zu for %s", digest_len,
			      nix_hash_len(algo), nix_hash_algo_name(algo));
	return 0;
}

int path_info_validate(const struct path_info *pi)
{
	int rc = root_check(pi);

	for (size_t i = 0; rc == 0 && i < pi->n_refs; i++)
		rc = path_check(&pi->refs[i], "reference");
	if (rc == 0 && pi->has_deriver)
		rc = path_check(&pi->deriver, "deriver");
	for (size_t i = 0; rc == 0 && i < pi->n_sigs; i++) {
		if (!pi->sigs[i].name || !pi->sigs[i].name[0])
			rc = sf_err(-EINVAL, "signature %zu has no key name", i);
	}
	if (rc == 0 && pi->has_ca)
		rc = ca_check(pi->ca_type, pi->ca_digest_len);
	return rc;
}

/* What the NARInfo message points at while it is packed. */
struct narinfo_msg {
	Snix__Store__V1__NARInfo ni;
	Snix__Store__V1__StorePath deriver;
	Snix__Store__V1__NARInfo__CA ca;
	Snix__Store__V1__NARInfo__Signature *sig_msgs, **sigs;
	char **ref_names;
	ProtobufCBinaryData *ref_digests;
};

static void narinfo_msg_release(struct narinfo_msg *m)
{
	free(m->sig_msgs);
	free(m->sigs);
	free(m->ref_names);
	free(m->ref_digests);
}

static int narinfo_msg_refs(struct narinfo_msg *m, const struct path_info *pi, char *names)
{
	size_t n = pi->n_refs;

	m->ref_names = calloc(n ? n : 1, sizeof(*m->ref_names));
	m->ref_digests = calloc(n ? n : 1, sizeof(*m->ref_digests));
	if (!m->ref_names || !m->ref_digests)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		m->ref_names[i] = names + i * (STORE_PATH_MAX_BASENAME + 1);
		store_path_basename(&pi->refs[i], m->ref_names[i]);
		m->ref_digests[i] =
		    (ProtobufCBinaryData){STORE_PATH_DIGEST_LEN, (uint8_t *)pi->refs[i].digest};
	}
	m->ni.n_reference_names = n;
	m->ni.reference_names = m->ref_names;
	return 0;
}

static int narinfo_msg_sigs(struct narinfo_msg *m, const struct path_info *pi)
{
	size_t n = pi->n_sigs;

	m->sig_msgs = calloc(n ? n : 1, sizeof(*m->sig_msgs));
	m->sigs = calloc(n ? n : 1, sizeof(*m->sigs));
	if (!m->sig_msgs || !m->sigs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snix__store__v1__narinfo__signature__init(&m->sig_msgs[i]);
		m->sig_msgs[i].name = pi->sigs[i].name;
		m->sig_msgs[i].data = (ProtobufCBinaryData){64, (uint8_t *)pi->sigs[i].data};
		m->sigs[i] = &m->sig_msgs[i];
	}
	m->ni.n_signatures = n;
	m->ni.signatures = m->sigs;
	return 0;
}

static int narinfo_msg_build(struct narinfo_msg *m, const struct path_info *pi, char *names)
{
	int rc;

	snix__store__v1__narinfo__init(&m->ni);
	m->ni.nar_size = pi->nar_size;
	m->ni.nar_sha256 = (ProtobufCBinaryData){32, (uint8_t *)pi->nar_sha256};
	rc = narinfo_msg_refs(m, pi, names);
	if (rc == 0)
		rc = narinfo_msg_sigs(m, pi);
	if (rc < 0)
		return rc;
	if (pi->has_deriver) {
		snix__store__v1__store_path__init(&m->deriver);
		m->deriver.name = (char *)pi->deriver.name;
		m->deriver.digest =
		    (ProtobufCBinaryData){STORE_PATH_DIGEST_LEN, (uint8_t *)pi->deriver.digest};
		m->ni.deriver = &m->deriver;
	}
	if (pi->has_ca) {
		snix__store__v1__narinfo__ca__init(&m->ca);
		m->ca.type = (Snix__Store__V1__NARInfo__CA__Hash)pi->ca_type;
		m->ca.digest = (ProtobufCBinaryData){pi->ca_digest_len, (uint8_t *)pi->ca_digest};
		m->ni.ca = &m->ca;
	}
	return 0;
}

/* Appends a varint; returns the bytes written. */
static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* The PathInfo message is field 1 (the Entry) followed by what protobuf-c
 * packs for the rest, since it writes fields in number order. */
static int path_info_pack(const struct path_info *pi, Snix__Store__V1__PathInfo *msg, uint8_t **out,
			  size_t *out_len)
{
	uint8_t *entry, *buf;
	size_t entry_len, rest, head;
	int rc = node_encode_entry(&pi->root, &entry, &entry_len);

	if (rc < 0)
		return rc;
	rest = snix__store__v1__path_info__get_packed_size(msg);
	buf = malloc(1 + 10 + entry_len + rest);
	if (!buf) {
		free(entry);
		return -ENOMEM;
	}
	buf[0] = 0x0a;
	head = 1 + varint_put(buf + 1, entry_len);
	memcpy(buf + head, entry, entry_len);
	free(entry);
	snix__store__v1__path_info__pack(msg, buf + head + entry_len);
	*out = buf;
	*out_len = head + entry_len + rest;
	return 0;
}

int path_info_encode(const struct path_info *pi, uint8_t **out, size_t *out_len)
{
	Snix__Store__V1__PathInfo msg = SNIX__STORE__V1__PATH_INFO__INIT;
	struct narinfo_msg m = {0};
	char *names;
	int rc = path_info_validate(pi);

	if (rc < 0)
		return rc;
	names = malloc((pi->n_refs ? pi->n_refs : 1) * (STORE_PATH_MAX_BASENAME + 1));
	if (!names)
		return -ENOMEM;
	rc = narinfo_msg_build(&m, pi, names);
	if (rc == 0) {
		msg.n_references = pi->n_refs;
		msg.references = m.ref_digests;
		msg.narinfo = &m.ni;
		rc = path_info_pack(pi, &msg, out, out_len);
	}
	narinfo_msg_release(&m);
	free(names);
	return rc;
}

/* docs/castore.md §7 rules 2-4: 20-byte digests named consistently by reference_names. */
static int decode_refs(const Snix__Store__V1__PathInfo *m, struct path_info *pi)
{
	const Snix__Store__V1__NARInfo *ni = m->narinfo;

	for (size_t i = 0; i < m->n_references; i++) {
		if (m->references[i].len != STORE_PATH_DIGEST_LEN)
			return sf_err(-EINVAL,
				      "reference %zu has a digest of %zu bytes, expected 20", i,
				      m->references[i].len);
	}
	if (ni->n_reference_names != m->n_references)
		return sf_err(-EINVAL, "%zu reference names for %zu references",
			      ni->n_reference_names, m->n_references);
	for (size_t i = 0; i < m->n_references; i++) {
		const char *name = ni->reference_names[i];
		struct store_path sp;
		int rc = store_path_parse_basename(name, strlen(name), &sp);

		if (rc < 0)
			return rc;
		if (memcmp(sp.digest, m->references[i].data, STORE_PATH_DIGEST_LEN))
			return sf_err(-EINVAL, "reference name '%s' does not match its digest",
				      name);
		rc = refs_insert(pi, pi->n_refs, &sp);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* docs/castore.md §7 rules 5 and 6: the root Entry, named by the store path basename. */
static int decode_root(const Snix__Store__V1__PathInfo *m, struct path_info *pi)
{
	uint8_t *buf, *arena = NULL;
	size_t len;
	struct node n;
	int rc;

	if (!m->entry)
		return sf_err(-EINVAL, "path info has no root entry");
	len = snix__castore__v1__entry__get_packed_size(m->entry);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	snix__castore__v1__entry__pack(m->entry, buf);
	rc = node_decode_entry(buf, len, true, &n, &arena);
	free(buf);
	if (rc < 0)
		return rc;
	rc = store_path_parse_basename((const char *)n.name, n.name_len, &pi->path);
	if (rc == 0)
		rc = path_info_set_root(pi, &n);
	free(arena);
	return rc;
}

/* The PathInfo message's NARInfo sub-message (not narinfo text):
 * docs/castore.md §7 rules 7-10. */
static int decode_nar_info_message(const Snix__Store__V1__NARInfo *ni, struct path_info *pi)
{
	int rc = 0;

	if (ni->nar_sha256.len != 32)
		return sf_err(-EINVAL, "nar_sha256 has %zu bytes, expected 32", ni->nar_sha256.len);
	memcpy(pi->nar_sha256, ni->nar_sha256.data, 32);
	pi->nar_size = ni->nar_size;
	if (ni->deriver) {
		const char *name = ni->deriver->name ? ni->deriver->name : "";

		if (ni->deriver->digest.len != STORE_PATH_DIGEST_LEN)
			return sf_err(-EINVAL, "deriver digest has %zu bytes, expected 20",
				      ni->deriver->digest.len);
		rc = store_path_name_check(name, strlen(name));
		if (rc < 0)
			return rc;
		memcpy(pi->deriver.digest, ni->deriver->digest.data, STORE_PATH_DIGEST_LEN);
		strcpy(pi->deriver.name, name);
		pi->has_deriver = true;
	}
	for (size_t i = 0; rc == 0 && i < ni->n_signatures; i++) {
		const Snix__Store__V1__NARInfo__Signature *s = ni->signatures[i];

		if (s->data.len != 64)
			return sf_err(-EINVAL, "signature %zu has %zu bytes, expected 64", i,
				      s->data.len);
		rc = path_info_add_sig(pi, s->name ? s->name : "", s->data.data);
	}
	if (rc == 0 && ni->ca) {
		rc = ca_check((enum ca_hash)ni->ca->type, ni->ca->digest.len);
		if (rc < 0)
			return rc;
		pi->has_ca = true;
		pi->ca_type = (enum ca_hash)ni->ca->type;
		pi->ca_digest_len = ni->ca->digest.len;
		memcpy(pi->ca_digest, ni->ca->digest.data, ni->ca->digest.len);
	}
	return rc;
}

static int decode_msg(const Snix__Store__V1__PathInfo *m, struct path_info *pi)
{
	int rc;

	if (!m->narinfo)
		return sf_err(-EINVAL, "path info has no narinfo");
	rc = decode_refs(m, pi);
	if (rc == 0)
		rc = decode_root(m, pi);
	if (rc == 0)
		rc = decode_nar_info_message(m->narinfo, pi);
	if (rc == 0)
		rc = path_info_validate(pi);
	return rc;
}

int path_info_decode(const uint8_t *buf, size_t len, struct path_info **out)
{
	Snix__Store__V1__PathInfo *m = snix__store__v1__path_info__unpack(NULL, len, buf);
	struct path_info *pi;
	int rc;

	if (!m)
		return sf_err(-EINVAL, "path info message is malformed");
	rc = path_info_new(&pi);
	if (rc == 0) {
		rc = decode_msg(m, pi);
		if (rc < 0)
			path_info_free(pi);
	}
	snix__store__v1__path_info__free_unpacked(m, NULL);
	if (rc < 0)
		return rc;
	*out = pi;
	return 0;
}
