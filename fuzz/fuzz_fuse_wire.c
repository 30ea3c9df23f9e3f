/* fuzz_fuse_wire.c - libFuzzer target: arbitrary bytes as a FUSE request
 * (after INIT) through fuse_wire_handle() over a small store; the reply
 * must fit the buffers it was given and carry its own length. The first
 * byte picks the reply buffers' sizes. */
#include "backends/memory/memory.h"
#include "fs/fuse_wire.h"

#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct one_root {
	struct root_nodes base;
	struct node n;
};

static int or_lookup(struct root_nodes *r, const uint8_t *name, size_t len, struct node *out,
		     uint8_t target_buf[CASTORE_MAX_TARGET_LEN])
{
	struct one_root *o = (struct one_root *)r;

	if (castore_name_cmp(o->n.name, o->n.name_len, name, len))
		return -ENOENT;
	*out = o->n;
	return 0;
}

static int or_list(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb, void *ctx)
{
	struct one_root *o = (struct one_root *)r;

	return after == 0 && cb(ctx, &o->n, 1) < 0 ? -EIO : 0;
}

static void or_free(struct root_nodes *r)
{
}

static const struct root_nodes_ops or_ops = {.lookup = or_lookup, .list = or_list, .free = or_free};

/* Set up once and kept (reachable, so not a leak) for every input. */
static struct store *st;
static struct fs *fs;
static struct fuse_wire *w;

/* A store with one root file "f" ("hello"), a session after INIT. */
static void setup(void)
{
	static struct one_root root = {.base = {&or_ops}};
	static struct fs_config cfg = {.list_root = true};
	struct fuse_init_in in = {.major = 7, .minor = 31, .flags = 0xffffffffu};
	uint8_t req[sizeof(struct fuse_in_header) + sizeof(in)], out[256];
	struct fuse_in_header h = {.len = sizeof(req), .opcode = FUSE_INIT, .unique = 1};
	struct iovec iov = {out, sizeof(out)};

	if (memory_store_new(DIR_SIZE_SPEC, &st) ||
	    blob_service_put(st->blobs, "hello", 5, &root.n.digest))
		abort();
	root.n = (struct node){.kind = NODE_FILE,
			       .name = (const uint8_t *)"f",
			       .name_len = 1,
			       .digest = root.n.digest,
			       .size = 5};
	if (fs_new(st->blobs, st->dirs, &root.base, &cfg, &fs) || fuse_wire_new(fs, &w))
		abort();
	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), &in, sizeof(in));
	if (fuse_wire_handle(w, req, sizeof(req), &iov, 1) < sizeof(struct fuse_out_header))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t a[16], b[4096];
	struct iovec out[2] = {{a, 0}, {b, sizeof(b)}};
	struct fuse_out_header oh;
	size_t n;

	if (!w)
		setup();
	if (size == 0)
		return 0;
	out[0].iov_len = data[0] % sizeof(a);
	n = fuse_wire_handle(w, data + 1, size - 1, out, 2);
	if (n > out[0].iov_len + out[1].iov_len)
		__builtin_trap();
	if (n >= sizeof(oh)) {
		memcpy(&oh, a, out[0].iov_len);
		memcpy((uint8_t *)&oh + out[0].iov_len, b, sizeof(oh) - out[0].iov_len);
		if (oh.len != n || oh.error > 0 || oh.error < -4095)
			__builtin_trap();
	}
	return 0;
}
