/* test_fuse_wire.c - raw FUSE requests answered over the memory services:
 * the replies' layout, and malformed requests refused without a crash. */
#include "harness.h"

#include "backends/memory/memory.h"
#include "fs/fuse_wire.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdlib.h>

/* --- a root with "f" (a file "hello") and "d" (a directory with "x") --- */

struct wroot {
	struct root_nodes base;
	struct node nodes[2];
};

static int wr_lookup(struct root_nodes *r, const uint8_t *name, size_t len, struct node *out,
		     uint8_t target_buf[CASTORE_MAX_TARGET_LEN])
{
	struct wroot *w = (struct wroot *)r;

	for (size_t i = 0; i < 2; i++)
		if (!castore_name_cmp(w->nodes[i].name, w->nodes[i].name_len, name, len)) {
			*out = w->nodes[i];
			return 0;
		}
	return -ENOENT;
}

static int wr_list(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb, void *ctx)
{
	return 0;
}

static void wr_free(struct root_nodes *r)
{
}

static const struct root_nodes_ops wr_ops = {.lookup = wr_lookup, .list = wr_list, .free = wr_free};

struct wire {
	struct store *st;
	struct wroot root;
	struct fs *fs;
	struct fuse_wire *w;
	uint64_t unique;
};

static int wire_new(struct wire *t)
{
	struct b3_digest hello, dir;
	struct directory_builder *b;
	struct directory *d;
	struct node x;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = memory_store_new(DIR_SIZE_SPEC, &t->st);
	if (!rc)
		rc = blob_service_put(t->st->blobs, "hello", 5, &hello);
	if (!rc)
		rc = directory_builder_new(&b);
	if (rc)
		return rc;
	x = (struct node){.kind = NODE_FILE,
			  .name = (const uint8_t *)"x",
			  .name_len = 1,
			  .digest = hello,
			  .size = 5};
	rc = directory_builder_add(b, &x);
	if (rc) {
		directory_builder_free(b);
		return rc;
	}
	rc = directory_builder_finish(b, &d);
	if (!rc)
		rc = dir_service_put(t->st->dirs, d, &dir);
	directory_free(d);
	if (rc)
		return rc;
	t->root.base.ops = &wr_ops;
	t->root.nodes[0] = (struct node){.kind = NODE_FILE,
					 .name = (const uint8_t *)"f",
					 .name_len = 1,
					 .digest = hello,
					 .size = 5};
	t->root.nodes[1] = (struct node){.kind = NODE_DIRECTORY,
					 .name = (const uint8_t *)"d",
					 .name_len = 1,
					 .digest = dir,
					 .size = 1};
	rc = fs_new(t->st->blobs, t->st->dirs, &t->root.base, NULL, &t->fs);
	return rc ? rc : fuse_wire_new(t->fs, &t->w);
}

static void wire_free(struct wire *t)
{
	fuse_wire_free(t->w);
	fs_free(t->fs);
	store_free(t->st);
}

/* --- requests and replies --- */

struct reply {
	uint8_t buf[8192];
	size_t len;
	struct fuse_out_header h;
};

/* Sends opcode with `arg` (alen bytes) to `node`; the reply lands in r. */
static void call(struct wire *t, uint32_t op, uint64_t node, const void *arg, size_t alen,
		 struct reply *r, size_t room)
{
	uint8_t in[1024];
	struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + alen),
				   .opcode = op,
				   .unique = ++t->unique,
				   .nodeid = node};
	struct iovec out = {r->buf, room};

	memcpy(in, &h, sizeof(h));
	if (alen)
		memcpy(in + sizeof(h), arg, alen);
	memset(r->buf, 0xaa, sizeof(r->buf));
	r->len = fuse_wire_handle(t->w, in, sizeof(h) + alen, &out, 1);
	memset(&r->h, 0, sizeof(r->h));
	if (r->len >= sizeof(r->h))
		memcpy(&r->h, r->buf, sizeof(r->h));
}

static int do_init(struct wire *t)
{
	struct fuse_init_in in = {
	    .major = 7, .minor = 36, .max_readahead = 65536, .flags = 0xffffffffu};
	struct reply r;

	call(t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	return r.h.error;
}

static uint64_t lookup(struct wire *t, uint64_t parent, const char *name)
{
	struct fuse_entry_out eo;
	struct reply r;

	call(t, FUSE_LOOKUP, parent, name, strlen(name) + 1, &r, sizeof(r.buf));
	if (r.h.error || r.len != sizeof(r.h) + sizeof(eo))
		return 0;
	memcpy(&eo, r.buf + sizeof(r.h), sizeof(eo));
	return eo.nodeid;
}

TEST(fuse_wire_init_and_session)
{
	struct wire t;
	struct fuse_init_in in = {.major = 7,
				  .minor = 36,
				  .max_readahead = 65536,
				  .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_POSIX_ACL};
	struct fuse_init_out o;
	struct reply r;

	CHECK_OK(wire_new(&t));
	call(&t, FUSE_GETATTR, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EIO); /* before INIT */
	call(&t, FUSE_INIT, 0, &in, 8, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EINVAL); /* too short */
	call(&t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	CHECK_EQ(r.len, sizeof(r.h) + sizeof(o));
	CHECK_EQ(r.h.len, r.len);
	CHECK_EQ(r.h.unique, t.unique);
	memcpy(&o, r.buf + sizeof(r.h), sizeof(o));
	CHECK_EQ(o.major, 7);
	CHECK_EQ(o.minor, 36);
	CHECK_EQ(o.flags, FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS); /* only what both have */
	CHECK_EQ(o.max_readahead, 65536);
	call(&t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0); /* again: a rebooted guest's new session */
	call(&t, FUSE_DESTROY, 0, NULL, 0, &r, sizeof(r.buf));
	CHECK(r.h.error == 0 && r.len == sizeof(r.h));
	call(&t, FUSE_GETATTR, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EIO);
	CHECK_EQ(do_init(&t), 0); /* a remount starts a new session */
	in.minor = 12;
	wire_free(&t);
	CHECK_OK(wire_new(&t));
	call(&t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EPROTO); /* too old */
	wire_free(&t);
}

/* A guest kernel serializes every lookup in a directory unless the INIT
 * reply grants FUSE_PARALLEL_DIROPS (docs/limits.md "Parallel lookups"):
 * the virtio-fs transport grants it whenever the guest offers it. */
TEST(fuse_wire_init_parallel_dirops)
{
	struct fuse_init_in in = {.major = 7, .minor = 36, .max_readahead = 65536};
	struct fuse_init_out o;
	struct reply r;
	struct wire t;

	CHECK_OK(wire_new(&t));
	/* What Linux 6.x offers over virtio-fs, among others. */
	in.flags = FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS |
		   FUSE_CACHE_SYMLINKS | FUSE_MAX_PAGES;
	call(&t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&o, r.buf + sizeof(r.h), sizeof(o));
	CHECK(o.flags & FUSE_PARALLEL_DIROPS);
	/* Never granted when not offered. */
	in.flags = FUSE_ASYNC_READ;
	call(&t, FUSE_INIT, 0, &in, sizeof(in), &r, sizeof(r.buf));
	memcpy(&o, r.buf + sizeof(r.h), sizeof(o));
	CHECK(!(o.flags & FUSE_PARALLEL_DIROPS));
	wire_free(&t);
}

TEST(fuse_wire_lookup_getattr_readlink)
{
	struct wire t;
	struct fuse_entry_out eo;
	struct fuse_attr_out ao;
	struct reply r;
	uint64_t d, x;

	CHECK_OK(wire_new(&t));
	CHECK_OK(do_init(&t));
	d = lookup(&t, 1, "d");
	CHECK(d > 1);
	x = lookup(&t, d, "x");
	CHECK(x > 1 && x != d);
	call(&t, FUSE_GETATTR, x, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&ao, r.buf + sizeof(r.h), sizeof(ao));
	CHECK_EQ(ao.attr.ino, x);
	CHECK_EQ(ao.attr.mode, S_IFREG | 0444);
	CHECK_EQ(ao.attr.size, 5);
	CHECK_EQ(ao.attr.mtime, 1);
	CHECK_EQ(ao.attr.nlink, 1);
	/* A miss at the root is an error (not cached); below it, a cached
	 * negative entry. */
	call(&t, FUSE_LOOKUP, 1, "nope", 5, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ENOENT);
	call(&t, FUSE_LOOKUP, d, "nope", 5, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&eo, r.buf + sizeof(r.h), sizeof(eo));
	CHECK_EQ(eo.nodeid, 0);
	CHECK(eo.entry_valid > 0);
	call(&t, FUSE_LOOKUP, 1, "d", 1, &r, sizeof(r.buf)); /* no NUL */
	CHECK_EQ(r.h.error, -EINVAL);
	call(&t, FUSE_LOOKUP, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EINVAL);
	call(&t, FUSE_LOOKUP, 777777, "x", 2, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ESTALE);
	call(&t, FUSE_READLINK, x, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EINVAL);
	call(&t, FUSE_GETATTR, 0, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ESTALE);
	wire_free(&t);
}

TEST(fuse_wire_open_read)
{
	struct wire t;
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct fuse_open_out oo;
	struct fuse_read_in ri = {.fh = 0xdeadbeef, .offset = 1, .size = 100};
	uint8_t in[sizeof(struct fuse_in_header) + sizeof(ri)];
	struct fuse_in_header h;
	struct reply r;
	uint8_t a[3], b[5], c[64];
	struct iovec out[3] = {{a, 3}, {b, 5}, {c, sizeof(c)}};
	size_t n;
	uint64_t f;

	CHECK_OK(wire_new(&t));
	CHECK_OK(do_init(&t));
	f = lookup(&t, 1, "f");
	call(&t, FUSE_OPEN, f, &oi, sizeof(oi), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&oo, r.buf + sizeof(r.h), sizeof(oo));
	CHECK_EQ(oo.fh, 0); /* nothing of ours goes to the kernel */
	CHECK(oo.open_flags & FOPEN_KEEP_CACHE);
	oi.flags = O_WRONLY;
	call(&t, FUSE_OPEN, f, &oi, sizeof(oi), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EROFS);
	oi.flags = O_RDONLY | O_TRUNC;
	call(&t, FUSE_OPEN, f, &oi, sizeof(oi), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EROFS);
	oi.flags = O_RDONLY;
	call(&t, FUSE_OPEN, 1, &oi, sizeof(oi), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EISDIR);

	/* A forged handle is ignored; the reply spans three odd buffers. */
	h = (struct fuse_in_header){
	    .len = sizeof(in), .opcode = FUSE_READ, .unique = 42, .nodeid = f};
	memcpy(in, &h, sizeof(h));
	memcpy(in + sizeof(h), &ri, sizeof(ri));
	n = fuse_wire_handle(t.w, in, sizeof(in), out, 3);
	CHECK_EQ(n, 16 + 4);
	CHECK(!memcmp(c + 8, "ello", 4)); /* after the header's last 8 bytes */
	/* The reply is cut to the buffers the kernel gave. */
	out[2].iov_len = 11;
	ri.offset = 0;
	memcpy(in + sizeof(h), &ri, sizeof(ri));
	n = fuse_wire_handle(t.w, in, sizeof(in), out, 3);
	CHECK_EQ(n, 16 + 3);
	CHECK(!memcmp(c + 8, "hel", 3));
	ri.offset = 1000;
	memcpy(in + sizeof(h), &ri, sizeof(ri));
	CHECK_EQ(fuse_wire_handle(t.w, in, sizeof(in), out, 3), 16);
	call(&t, FUSE_READ, 1, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EISDIR);
	call(&t, FUSE_READ, f, &ri, 8, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EINVAL);
	wire_free(&t);
}

TEST(fuse_wire_readdirplus)
{
	struct wire t;
	struct fuse_read_in ri = {.size = 4096};
	struct fuse_direntplus dp;
	struct reply r;
	uint64_t d;

	CHECK_OK(wire_new(&t));
	CHECK_OK(do_init(&t));
	d = lookup(&t, 1, "d");
	call(&t, FUSE_READDIRPLUS, d, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&dp, r.buf + sizeof(r.h), sizeof(dp)); /* "." and ".." come first */
	CHECK(dp.dirent.namelen == 1 && dp.dirent.off == 1 && dp.dirent.type == DT_DIR);
	CHECK_EQ(r.buf[sizeof(r.h) + sizeof(dp)], '.');
	ri.offset = 2;
	call(&t, FUSE_READDIRPLUS, d, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	CHECK_EQ(r.len, sizeof(r.h) + FUSE_DIRENT_ALIGN(sizeof(dp) + 1));
	memcpy(&dp, r.buf + sizeof(r.h), sizeof(dp));
	CHECK_EQ(dp.dirent.namelen, 1);
	CHECK_EQ(dp.dirent.off, 3);
	CHECK_EQ(dp.dirent.type, DT_REG);
	CHECK_EQ(dp.entry_out.nodeid, dp.dirent.ino);
	CHECK_EQ(dp.entry_out.attr.size, 5);
	CHECK_EQ(r.buf[sizeof(r.h) + sizeof(dp)], 'x');
	ri.offset = 3;
	call(&t, FUSE_READDIR, d, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK(r.h.error == 0 && r.len == sizeof(r.h));
	ri.offset = 0;
	ri.size = 8; /* too small for one entry: an empty reply */
	call(&t, FUSE_READDIRPLUS, d, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK(r.h.error == 0 && r.len == sizeof(r.h));
	call(&t, FUSE_READDIR, 1, &ri, sizeof(ri), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EPERM); /* the root, without list_root */
	call(&t, FUSE_OPENDIR, 1, &ri, 8, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	wire_free(&t);
}

TEST(fuse_wire_xattrs_statfs_access)
{
	struct wire t;
	uint8_t arg[64];
	struct fuse_getxattr_in gi = {.size = 0};
	struct fuse_getxattr_out go;
	struct fuse_access_in ai = {.mask = W_OK};
	struct fuse_statfs_out so;
	struct reply r;
	uint64_t f;

	CHECK_OK(wire_new(&t));
	CHECK_OK(do_init(&t));
	f = lookup(&t, 1, "f");
	memcpy(arg, &gi, sizeof(gi));
	memcpy(arg + sizeof(gi), FS_XATTR_BLOB, sizeof(FS_XATTR_BLOB));
	call(&t, FUSE_GETXATTR, f, arg, sizeof(gi) + sizeof(FS_XATTR_BLOB), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&go, r.buf + sizeof(r.h), sizeof(go));
	CHECK_EQ(go.size, B3_TEXT_LEN);
	gi.size = 10;
	memcpy(arg, &gi, sizeof(gi));
	call(&t, FUSE_GETXATTR, f, arg, sizeof(gi) + sizeof(FS_XATTR_BLOB), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ERANGE);
	gi.size = 100;
	memcpy(arg, &gi, sizeof(gi));
	call(&t, FUSE_GETXATTR, f, arg, sizeof(gi) + sizeof(FS_XATTR_BLOB), &r, sizeof(r.buf));
	CHECK(r.h.error == 0 && r.len == sizeof(r.h) + B3_TEXT_LEN);
	CHECK(!memcmp(r.buf + sizeof(r.h), "blake3-", 7));
	call(&t, FUSE_GETXATTR, f, arg, sizeof(gi) + 4, &r, sizeof(r.buf)); /* no NUL */
	CHECK_EQ(r.h.error, -EINVAL);
	call(&t, FUSE_LISTXATTR, f, &gi, sizeof(gi), &r, sizeof(r.buf));
	CHECK(r.h.error == 0 && r.len == sizeof(r.h) + sizeof(FS_XATTR_BLOB));
	call(&t, FUSE_STATFS, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	memcpy(&so, r.buf + sizeof(r.h), sizeof(so));
	CHECK(so.st.bsize == 4096 && so.st.namelen == 255);
	call(&t, FUSE_ACCESS, f, &ai, sizeof(ai), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EROFS);
	ai.mask = X_OK;
	call(&t, FUSE_ACCESS, f, &ai, sizeof(ai), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EACCES);
	ai.mask = R_OK;
	call(&t, FUSE_ACCESS, f, &ai, sizeof(ai), &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, 0);
	wire_free(&t);
}

TEST(fuse_wire_refuses_malformed_requests)
{
	struct wire t;
	struct fuse_in_header h = {.len = 100, .opcode = FUSE_GETATTR, .unique = 9, .nodeid = 1};
	uint8_t in[256] = {0}, small[8];
	struct fuse_batch_forget_in bf = {.count = 1000000};
	struct fuse_out_header oh;
	struct iovec out = {small, sizeof(small)};
	struct reply r;

	CHECK_OK(wire_new(&t));
	CHECK_OK(do_init(&t));
	memcpy(in, &h, sizeof(h));
	CHECK_EQ(fuse_wire_handle(t.w, in, 20, &out, 1), 0);  /* shorter than a header */
	CHECK_EQ(fuse_wire_handle(t.w, in, 100, &out, 1), 0); /* no room for a reply */
	out = (struct iovec){r.buf, sizeof(r.buf)};
	CHECK_EQ(fuse_wire_handle(t.w, in, 60, &out, 1), 16); /* length mismatch */
	memcpy(&oh, r.buf, sizeof(oh));
	CHECK(oh.error == -EINVAL && oh.unique == 9);
	CHECK_EQ(fuse_wire_handle(t.w, in, 100, NULL, 0), 0);
	call(&t, 9999, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ENOSYS);
	call(&t, FUSE_MKDIR, 1, "abcdefgh\0", 10, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -EROFS);
	call(&t, FUSE_SETUPMAPPING, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.h.error, -ENOSYS);
	call(&t, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), &r, sizeof(r.buf));
	CHECK_EQ(r.len, 0); /* counts more entries than it carries: ignored */
	call(&t, FUSE_FORGET, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.len, 0);
	call(&t, FUSE_INTERRUPT, 1, NULL, 0, &r, sizeof(r.buf));
	CHECK_EQ(r.len, 0);
	wire_free(&t);
}
