/* directory.c - Directory decode/validate/encode/digest over protobuf-c.
 *
 * protobuf-c's proto3 packer emits fields in number order, omits zero
 * scalars and empty bytes, and writes minimal varints, which is the canonical
 * encoding the digest needs (docs/castore.md §2; proven against the Directory vectors in
 * the unit tests). Unknown fields are dropped because we always re-encode from our own
 * struct, never from a decoded message. */
#include "castore/directory.h"

#include "common/err.h"
#include "castore.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* One allocation: the struct, the nodes, then the name/target bytes. */
static struct directory *directory_alloc(size_t count, size_t arena_len, uint8_t **arena)
{
	size_t nodes_len = count * sizeof(struct node);
	struct directory *d;

	if (count > SIZE_MAX / sizeof(struct node) || arena_len > SIZE_MAX - sizeof(*d) - nodes_len)
		return NULL;
	d = calloc(1, sizeof(*d) + nodes_len + arena_len);
	if (!d)
		return NULL;
	d->nodes = (struct node *)(d + 1);
	d->count = count;
	*arena = (uint8_t *)(d->nodes + count);
	return d;
}

void directory_free(struct directory *d)
{
	free(d);
}

static int node_cmp(const void *a, const void *b)
{
	const struct node *x = a, *y = b;

	return castore_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int size_add(uint64_t *acc, uint64_t v)
{
	if (*acc > UINT64_MAX - v)
		return -EOVERFLOW;
	*acc += v;
	return 0;
}

int directory_size(const struct directory *d, enum dir_size_formula f, uint64_t *out)
{
	uint64_t total = 0;

	for (size_t i = 0; i < d->count; i++) {
		uint64_t own = f == DIR_SIZE_NATIVE ? 2 : 1;

		if (size_add(&total, own) < 0 ||
		    (d->nodes[i].kind == NODE_DIRECTORY && size_add(&total, d->nodes[i].size) < 0))
			return sf_err(-EOVERFLOW, "directory size exceeds 2^64");
	}
	*out = total;
	return 0;
}

int directory_validate(const struct directory *d)
{
	uint64_t size;
	int rc;

	for (size_t i = 0; i < d->count; i++) {
		const struct node *n = &d->nodes[i];

		rc = node_validate(n, true);
		if (rc < 0)
			return rc;
		if (i && node_cmp(&d->nodes[i - 1], n) >= 0)
			return sf_err(
			    -EINVAL, "directory entry '%.*s' is %s", (int)n->name_len, n->name,
			    node_cmp(&d->nodes[i - 1], n) ? "out of order" : "duplicated");
	}
	return directory_size(d, DIR_SIZE_SPEC, &size);
}

const struct node *directory_find(const struct directory *d, const uint8_t *name, size_t len)
{
	size_t lo = 0, hi = d->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct node *n = &d->nodes[mid];
		int c = castore_name_cmp(n->name, n->name_len, name, len);

		if (c == 0)
			return n;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* --- decode --- */

/* Each list must be strictly ascending by bytewise name on its own. */
static int check_list_order(ProtobufCBinaryData prev, ProtobufCBinaryData name, size_t i)
{
	int c;

	if (i == 0)
		return 0;
	c = castore_name_cmp(prev.data, prev.len, name.data, name.len);
	if (c > 0)
		return sf_err(-EINVAL, "directory entry '%.*s' is out of order", (int)name.len,
			      name.data);
	if (c == 0)
		return sf_err(-EINVAL, "directory entry '%.*s' is duplicated", (int)name.len,
			      name.data);
	return 0;
}

static int check_lists(const Snix__Castore__V1__Directory *m, size_t *arena_len)
{
	size_t total = 0;
	int rc = 0;

	for (size_t i = 0; i < m->n_directories && !rc; i++) {
		rc = check_list_order(i ? m->directories[i - 1]->name : m->directories[i]->name,
				      m->directories[i]->name, i);
		total += m->directories[i]->name.len;
	}
	for (size_t i = 0; i < m->n_files && !rc; i++) {
		rc = check_list_order(i ? m->files[i - 1]->name : m->files[i]->name,
				      m->files[i]->name, i);
		total += m->files[i]->name.len;
	}
	for (size_t i = 0; i < m->n_symlinks && !rc; i++) {
		rc = check_list_order(i ? m->symlinks[i - 1]->name : m->symlinks[i]->name,
				      m->symlinks[i]->name, i);
		total += m->symlinks[i]->name.len + m->symlinks[i]->target.len;
	}
	*arena_len = total;
	return rc;
}

static uint8_t *arena_put(uint8_t *arena, const ProtobufCBinaryData *b, const uint8_t **ptr,
			  size_t *len)
{
	if (b->len)
		memcpy(arena, b->data, b->len);
	*ptr = arena;
	*len = b->len;
	return arena + b->len;
}

static int copy_nodes(const Snix__Castore__V1__Directory *m, struct directory *d, uint8_t *a)
{
	size_t k = 0;

	for (size_t i = 0; i < m->n_directories; i++, k++) {
		const Snix__Castore__V1__DirectoryEntry *e = m->directories[i];
		struct node *n = &d->nodes[k];

		n->kind = NODE_DIRECTORY, n->size = e->size;
		a = arena_put(a, &e->name, &n->name, &n->name_len);
		if (b3_digest_from_bytes(e->digest.data, e->digest.len, &n->digest) < 0)
			return sf_err(-EINVAL, "directory entry '%.*s' has a %zu-byte digest",
				      (int)e->name.len, e->name.data, e->digest.len);
	}
	for (size_t i = 0; i < m->n_files; i++, k++) {
		const Snix__Castore__V1__FileEntry *e = m->files[i];
		struct node *n = &d->nodes[k];

		n->kind = NODE_FILE, n->size = e->size, n->executable = e->executable;
		a = arena_put(a, &e->name, &n->name, &n->name_len);
		if (b3_digest_from_bytes(e->digest.data, e->digest.len, &n->digest) < 0)
			return sf_err(-EINVAL, "file entry '%.*s' has a %zu-byte digest",
				      (int)e->name.len, e->name.data, e->digest.len);
	}
	for (size_t i = 0; i < m->n_symlinks; i++, k++) {
		const Snix__Castore__V1__SymlinkEntry *e = m->symlinks[i];
		struct node *n = &d->nodes[k];

		n->kind = NODE_SYMLINK;
		a = arena_put(a, &e->name, &n->name, &n->name_len);
		a = arena_put(a, &e->target, &n->target, &n->target_len);
	}
	return 0;
}

static int directory_from_message(const Snix__Castore__V1__Directory *m, struct directory **out)
{
	size_t count = m->n_directories + m->n_files + m->n_symlinks, arena_len;
	struct directory *d;
	uint8_t *arena;
	int rc;

	rc = check_lists(m, &arena_len);
	if (rc < 0)
		return rc;
	d = directory_alloc(count, arena_len, &arena);
	if (!d)
		return -ENOMEM;
	rc = copy_nodes(m, d, arena);
	if (rc == 0) {
		/* Merge the three sorted lists; duplicates across lists are then
		 * neighbours and rejected by directory_validate. */
		qsort(d->nodes, d->count, sizeof(struct node), node_cmp);
		rc = directory_validate(d);
	}
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int directory_decode(const uint8_t *buf, size_t len, struct directory **out)
{
	Snix__Castore__V1__Directory *m = snix__castore__v1__directory__unpack(NULL, len, buf);
	int rc;

	if (!m)
		return sf_err(-EINVAL, "directory message is malformed");
	rc = directory_from_message(m, out);
	snix__castore__v1__directory__free_unpacked(m, NULL);
	return rc;
}

/* --- encode --- */

struct encode_buf {
	Snix__Castore__V1__DirectoryEntry *de, **dp;
	Snix__Castore__V1__FileEntry *fe, **fp;
	Snix__Castore__V1__SymlinkEntry *se, **sp;
};

static void encode_buf_free(struct encode_buf *e)
{
	free(e->de), free(e->dp), free(e->fe), free(e->fp), free(e->se), free(e->sp);
}

static int encode_buf_alloc(struct encode_buf *e, size_t nd, size_t nf, size_t ns)
{
	*e = (struct encode_buf){0};
	e->de = calloc(nd + 1, sizeof(*e->de)), e->dp = calloc(nd + 1, sizeof(*e->dp));
	e->fe = calloc(nf + 1, sizeof(*e->fe)), e->fp = calloc(nf + 1, sizeof(*e->fp));
	e->se = calloc(ns + 1, sizeof(*e->se)), e->sp = calloc(ns + 1, sizeof(*e->sp));
	if (!e->de || !e->dp || !e->fe || !e->fp || !e->se || !e->sp) {
		encode_buf_free(e);
		return -ENOMEM;
	}
	return 0;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t len)
{
	return (ProtobufCBinaryData){len, (uint8_t *)p};
}

static void fill_message(const struct directory *d, struct encode_buf *e,
			 Snix__Castore__V1__Directory *m)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct node *n = &d->nodes[i];

		if (n->kind == NODE_DIRECTORY) {
			Snix__Castore__V1__DirectoryEntry *x = &e->de[m->n_directories];

			snix__castore__v1__directory_entry__init(x);
			x->name = bin(n->name, n->name_len);
			x->digest = bin(n->digest.bytes, B3_LEN);
			x->size = n->size;
			e->dp[m->n_directories++] = x;
		} else if (n->kind == NODE_FILE) {
			Snix__Castore__V1__FileEntry *x = &e->fe[m->n_files];

			snix__castore__v1__file_entry__init(x);
			x->name = bin(n->name, n->name_len);
			x->digest = bin(n->digest.bytes, B3_LEN);
			x->size = n->size;
			x->executable = n->executable;
			e->fp[m->n_files++] = x;
		} else {
			Snix__Castore__V1__SymlinkEntry *x = &e->se[m->n_symlinks];

			snix__castore__v1__symlink_entry__init(x);
			x->name = bin(n->name, n->name_len);
			x->target = bin(n->target, n->target_len);
			e->sp[m->n_symlinks++] = x;
		}
	}
	m->directories = e->dp, m->files = e->fp, m->symlinks = e->sp;
}

int directory_encode(const struct directory *d, uint8_t **out, size_t *out_len)
{
	Snix__Castore__V1__Directory m = SNIX__CASTORE__V1__DIRECTORY__INIT;
	size_t nd = 0, nf = 0, ns = 0, len;
	struct encode_buf e;
	uint8_t *buf = NULL;

	for (size_t i = 0; i < d->count; i++) {
		nd += d->nodes[i].kind == NODE_DIRECTORY;
		nf += d->nodes[i].kind == NODE_FILE;
		ns += d->nodes[i].kind == NODE_SYMLINK;
	}
	if (encode_buf_alloc(&e, nd, nf, ns) < 0)
		return -ENOMEM;
	fill_message(d, &e, &m);
	len = snix__castore__v1__directory__get_packed_size(&m);
	if (len) {
		buf = malloc(len);
		if (!buf) {
			encode_buf_free(&e);
			return -ENOMEM;
		}
		snix__castore__v1__directory__pack(&m, buf);
	}
	encode_buf_free(&e);
	*out = buf;
	*out_len = len;
	return 0;
}

int directory_digest(const struct directory *d, struct b3_digest *out)
{
	uint8_t *buf;
	size_t len;
	int rc = directory_encode(d, &buf, &len);

	if (rc < 0)
		return rc;
	b3_digest_of(buf, len, out);
	free(buf);
	return 0;
}

/* --- builder --- */

struct directory_builder {
	struct node *nodes;
	size_t count, cap, arena_len;
};

int directory_builder_new(struct directory_builder **out)
{
	struct directory_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	*out = b;
	return 0;
}

void directory_builder_free(struct directory_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->count; i++)
		free((void *)b->nodes[i].name);
	free(b->nodes);
	free(b);
}

int directory_builder_add(struct directory_builder *b, const struct node *n)
{
	struct node copy = *n;
	uint8_t *a;

	if (b->count == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct node *nodes = reallocarray(b->nodes, cap, sizeof(*nodes));

		if (!nodes)
			return -ENOMEM;
		b->nodes = nodes, b->cap = cap;
	}
	a = malloc(n->name_len + n->target_len + 1);
	if (!a)
		return -ENOMEM;
	if (n->name_len)
		memcpy(a, n->name, n->name_len);
	if (n->target_len)
		memcpy(a + n->name_len, n->target, n->target_len);
	copy.name = a;
	copy.target = a + n->name_len;
	if (n->kind != NODE_SYMLINK)
		copy.target_len = 0;
	b->nodes[b->count++] = copy;
	b->arena_len += copy.name_len + copy.target_len;
	return 0;
}

int directory_builder_finish(struct directory_builder *b, struct directory **out)
{
	struct directory *d;
	uint8_t *a;
	int rc;

	d = directory_alloc(b->count, b->arena_len, &a);
	if (!d) {
		directory_builder_free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->count; i++) {
		struct node n = b->nodes[i];

		memcpy(a, n.name, n.name_len);
		n.name = a, a += n.name_len;
		if (n.target_len)
			memcpy(a, n.target, n.target_len);
		n.target = a, a += n.target_len;
		d->nodes[i] = n;
	}
	directory_builder_free(b);
	qsort(d->nodes, d->count, sizeof(struct node), node_cmp);
	rc = directory_validate(d);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	*out = d;
	return 0;
}
