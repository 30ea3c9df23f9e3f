/* node.c - castore node rules and the Entry message. */
#include "castore/node.h"

#include "common/err.h"
#include "castore.pb-c.h"

#include <stdlib.h>
#include <string.h>

int castore_name_check(const uint8_t *name, size_t len)
{
	if (len == 0)
		return sf_err(-EINVAL, "name is empty");
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return sf_err(-EINVAL, "name '%.*s' is not allowed", (int)len, name);
	if (len > CASTORE_MAX_NAME_LEN)
		return sf_err(-EINVAL, "name '%.40s...' is longer than %d bytes", name,
			      CASTORE_MAX_NAME_LEN);
	if (memchr(name, '\0', len))
		return sf_err(-EINVAL, "name '%s' contains a NUL byte", name);
	if (memchr(name, '/', len))
		return sf_err(-EINVAL, "name '%.*s' contains a slash", (int)len, name);
	return 0;
}

int castore_target_check(const uint8_t *target, size_t len)
{
	if (len == 0)
		return sf_err(-EINVAL, "symlink target is empty");
	if (len > CASTORE_MAX_TARGET_LEN)
		return sf_err(-EINVAL, "symlink target is longer than %d bytes",
			      CASTORE_MAX_TARGET_LEN);
	if (memchr(target, '\0', len))
		return sf_err(-EINVAL, "symlink target '%s' contains a NUL byte", target);
	return 0;
}

int castore_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	/* An empty name may come with a NULL pointer (protobuf-c), and
	 * memcmp(NULL, ..., 0) is undefined. */
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int node_validate(const struct node *n, bool named)
{
	int rc;

	if (named) {
		rc = castore_name_check(n->name, n->name_len);
		if (rc < 0)
			return rc;
	} else if (n->name_len) {
		return sf_err(-EINVAL, "anonymous node has a name");
	}
	switch (n->kind) {
	case NODE_DIRECTORY:
	case NODE_FILE:
		return 0;
	case NODE_SYMLINK:
		return castore_target_check(n->target, n->target_len);
	}
	return sf_err(-EINVAL, "node has no kind");
}

int node_encode_entry(const struct node *n, uint8_t **out, size_t *out_len)
{
	Snix__Castore__V1__Entry e = SNIX__CASTORE__V1__ENTRY__INIT;
	Snix__Castore__V1__DirectoryEntry de = SNIX__CASTORE__V1__DIRECTORY_ENTRY__INIT;
	Snix__Castore__V1__FileEntry fe = SNIX__CASTORE__V1__FILE_ENTRY__INIT;
	Snix__Castore__V1__SymlinkEntry se = SNIX__CASTORE__V1__SYMLINK_ENTRY__INIT;
	ProtobufCBinaryData name = {n->name_len, (uint8_t *)n->name};
	ProtobufCBinaryData digest = {B3_LEN, (uint8_t *)n->digest.bytes};
	size_t len;
	uint8_t *buf;

	switch (n->kind) {
	case NODE_DIRECTORY:
		de.name = name, de.digest = digest, de.size = n->size;
		e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY_DIRECTORY, e.directory = &de;
		break;
	case NODE_FILE:
		fe.name = name, fe.digest = digest, fe.size = n->size;
		fe.executable = n->executable;
		e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY_FILE, e.file = &fe;
		break;
	case NODE_SYMLINK:
		se.name = name;
		se.target = (ProtobufCBinaryData){n->target_len, (uint8_t *)n->target};
		e.entry_case = SNIX__CASTORE__V1__ENTRY__ENTRY_SYMLINK, e.symlink = &se;
		break;
	default:
		return sf_err(-EINVAL, "node has no kind");
	}
	len = snix__castore__v1__entry__get_packed_size(&e);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	snix__castore__v1__entry__pack(&e, buf);
	*out = buf;
	*out_len = len;
	return 0;
}

/* Copies the proto fields into `out`, name and target into a new arena. */
static int entry_to_node(const Snix__Castore__V1__Entry *e, struct node *out, uint8_t **arena)
{
	ProtobufCBinaryData name, digest = {0, NULL}, target = {0, NULL};
	struct node n = {0};
	uint8_t *a;

	switch (e->entry_case) {
	case SNIX__CASTORE__V1__ENTRY__ENTRY_DIRECTORY:
		n.kind = NODE_DIRECTORY, name = e->directory->name, digest = e->directory->digest;
		n.size = e->directory->size;
		break;
	case SNIX__CASTORE__V1__ENTRY__ENTRY_FILE:
		n.kind = NODE_FILE, name = e->file->name, digest = e->file->digest;
		n.size = e->file->size, n.executable = e->file->executable;
		break;
	case SNIX__CASTORE__V1__ENTRY__ENTRY_SYMLINK:
		n.kind = NODE_SYMLINK, name = e->symlink->name, target = e->symlink->target;
		break;
	default:
		return sf_err(-EINVAL, "entry has no node set");
	}
	if (n.kind != NODE_SYMLINK && b3_digest_from_bytes(digest.data, digest.len, &n.digest) < 0)
		return sf_err(-EINVAL, "entry digest has %zu bytes, expected 32", digest.len);
	a = malloc(name.len + target.len + 1);
	if (!a)
		return -ENOMEM;
	if (name.len)
		memcpy(a, name.data, name.len);
	if (target.len)
		memcpy(a + name.len, target.data, target.len);
	n.name = a, n.name_len = name.len;
	n.target = a + name.len, n.target_len = target.len;
	*out = n;
	*arena = a;
	return 0;
}

int node_decode_entry(const uint8_t *buf, size_t len, bool named, struct node *out, uint8_t **arena)
{
	Snix__Castore__V1__Entry *e = snix__castore__v1__entry__unpack(NULL, len, buf);
	struct node n;
	uint8_t *a = NULL;
	int rc;

	if (!e)
		return sf_err(-EINVAL, "entry message is malformed");
	rc = entry_to_node(e, &n, &a);
	snix__castore__v1__entry__free_unpacked(e, NULL);
	if (rc < 0)
		return rc;
	rc = node_validate(&n, named);
	if (rc < 0) {
		free(a);
		return rc;
	}
	*out = n;
	*arena = a;
	return 0;
}
