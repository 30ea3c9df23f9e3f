/* test_fs.c - the inode table and the transport-independent filesystem
 * operations, over the memory services and a small exact-name root. */
#include "harness.h"

#include "backends/memory/memory.h"
#include "fs/fs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* --- a root_nodes over a fixed array, exact names, cursor = index + 1 --- */

struct array_root {
	struct root_nodes base;
	const struct node *nodes;
	size_t n;
};

static int ar_lookup(struct root_nodes *r, const uint8_t *name, size_t len, struct node *out,
		     uint8_t target_buf[CASTORE_MAX_TARGET_LEN])
{
	struct array_root *a = (struct array_root *)r;

	for (size_t i = 0; i < a->n; i++)
		if (!castore_name_cmp(a->nodes[i].name, a->nodes[i].name_len, name, len)) {
			*out = a->nodes[i];
			return 0;
		}
	return -ENOENT;
}

static int ar_list(struct root_nodes *r, uint64_t after, root_nodes_list_fn cb, void *ctx)
{
	struct array_root *a = (struct array_root *)r;

	for (size_t i = after; i < a->n; i++) {
		int rc = cb(ctx, &a->nodes[i], i + 1);

		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static void ar_free(struct root_nodes *r)
{
	(void)r;
}

static const struct root_nodes_ops ar_ops = {.lookup = ar_lookup, .list = ar_list, .free = ar_free};

/* --- fixtures --- */

static struct node file_node(const char *name, struct b3_digest d, uint64_t size, bool exec)
{
	return (struct node){.kind = NODE_FILE,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .digest = d,
			     .size = size,
			     .executable = exec};
}

static struct node link_node(const char *name, const char *target)
{
	return (struct node){.kind = NODE_SYMLINK,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .target = (const uint8_t *)target,
			     .target_len = strlen(target)};
}

static struct node dir_node(const char *name, struct b3_digest d)
{
	return (struct node){.kind = NODE_DIRECTORY,
			     .name = (const uint8_t *)name,
			     .name_len = strlen(name),
			     .digest = d};
}

static int put_dir(struct store *st, const struct node *nodes, size_t n, struct b3_digest *out)
{
	struct directory_builder *b;
	struct directory *d;
	int rc = directory_builder_new(&b);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = directory_builder_add(b, &nodes[i]);
	if (rc) {
		directory_builder_free(b);
		return rc;
	}
	rc = directory_builder_finish(b, &d);
	if (rc)
		return rc;
	/* A raw batch put: dir_service_put() would refuse the dangling child
	 * the missing-Directory tests need. */
	rc = directory_digest(d, out);
	if (!rc)
		rc = st->dirs->ops->put_batch(st->dirs, &d, out, 1);
	directory_free(d);
	return rc;
}

struct world {
	struct store *st;
	struct array_root root;
	struct node roots[3];
	struct fs *fs;
	struct b3_digest hello, missing_blob, gone;
};

/* Root: "p1" = dir {a: "hello", b: "hello" executable, l -> a, sub: {x},
 * broken: <missing Directory>, nob: <missing blob>}, "f1" = file "hello",
 * "s1" = symlink. */
static int world_new(struct world *w, bool list_root)
{
	struct b3_digest sub, top;
	struct node subn[1], topn[6];
	struct fs_config cfg = {.list_root = list_root};
	int rc;

	memset(w, 0, sizeof(*w));
	rc = memory_store_new(DIR_SIZE_SPEC, &w->st);
	if (!rc)
		rc = blob_service_put(w->st->blobs, "hello", 5, &w->hello);
	if (rc)
		return rc;
	b3_digest_of("no such blob", 12, &w->missing_blob);
	b3_digest_of("no such dir", 11, &w->gone);
	subn[0] = file_node("x", w->hello, 5, false);
	rc = put_dir(w->st, subn, 1, &sub);
	topn[0] = file_node("a", w->hello, 5, false);
	topn[1] = file_node("b", w->hello, 5, true);
	topn[2] = link_node("l", "a");
	topn[3] = dir_node("sub", sub);
	topn[3].size = 1;
	topn[4] = dir_node("broken", w->gone);
	topn[5] = file_node("nob", w->missing_blob, 7, false);
	if (!rc)
		rc = put_dir(w->st, topn, 6, &top);
	if (rc)
		return rc;
	w->roots[0] = dir_node("p1", top);
	w->roots[1] = file_node("f1", w->hello, 5, false);
	w->roots[2] = link_node("s1", "/nix/store/elsewhere");
	w->root = (struct array_root){{&ar_ops}, w->roots, 3};
	return fs_new(w->st->blobs, w->st->dirs, &w->root.base, &cfg, &w->fs);
}

static void world_free(struct world *w)
{
	fs_free(w->fs);
	store_free(w->st);
}

/* --- inode table --- */

TEST(inode_table_content_keys)
{
	struct inode_table *t;
	struct b3_digest d1, d2;
	uint64_t i1, i2, i3, i4, i5, i6, i7;

	b3_digest_of("1", 1, &d1);
	b3_digest_of("2", 1, &d2);
	CHECK_OK(inode_table_new(&t));
	struct node f = file_node("x", d1, 1, false), fe = file_node("y", d1, 1, true);
	struct node f2 = file_node("z", d2, 1, false), dn = dir_node("d", d1);
	struct node l1 = link_node("l", "target"), l2 = link_node("m", "target");
	struct node l3 = link_node("n", "other");

	CHECK_OK(inode_table_intern(t, &f, &i1));
	CHECK_OK(inode_table_intern(t, &f, &i2));
	CHECK_EQ(i1, i2);
	CHECK(i1 > INODE_ROOT);
	CHECK_OK(inode_table_intern(t, &fe, &i3));
	CHECK(i3 != i1); /* the exec bit splits content */
	CHECK_OK(inode_table_intern(t, &f2, &i4));
	CHECK_OK(inode_table_intern(t, &dn, &i5));
	CHECK(i4 != i1 && i5 != i1 && i5 != i3);
	CHECK_OK(inode_table_intern(t, &l1, &i6));
	CHECK_OK(inode_table_intern(t, &l2, &i7));
	CHECK_EQ(i6, i7);
	CHECK_OK(inode_table_intern(t, &l3, &i7));
	CHECK(i6 != i7);
	CHECK(inode_table_get(t, i7 + 1) == NULL);
	CHECK(inode_table_get(t, 0) == NULL);
	CHECK(inode_table_get(t, i3)->executable);
	CHECK_EQ(inode_table_get(t, i6)->key.target.len, 6);
	CHECK_EQ(atomic_load(&inode_table_get(t, i5)->size), INODE_SIZE_UNKNOWN);
	inode_table_free(t);
}

TEST(inode_table_populate_forget)
{
	struct inode_table *t;
	struct b3_digest d;
	struct directory_builder *b;
	struct directory *dir;
	struct inode_children *c, *c2;
	uint64_t dino, ino, ino2;
	const uint8_t *name;
	size_t len, idx;
	struct inode_table_stats s;

	b3_digest_of("c", 1, &d);
	CHECK_OK(directory_builder_new(&b));
	struct node n1 = file_node("beta", d, 1, false), n2 = link_node("alpha", "beta");

	CHECK_OK(directory_builder_add(b, &n1));
	CHECK_OK(directory_builder_add(b, &n2));
	CHECK_OK(directory_builder_finish(b, &dir));
	CHECK_OK(inode_table_new(&t));
	struct node dn = dir_node("d", d);

	CHECK_OK(inode_table_intern(t, &dn, &dino));
	CHECK_ERR(inode_table_children(t, dino, &c), -ENOENT);
	CHECK_ERR(inode_table_populate(t, INODE_ROOT, dir, &c), -EINVAL);
	CHECK_OK(inode_table_populate(t, dino, dir, &c));
	CHECK_EQ(inode_children_count(c), 2);
	CHECK_EQ(atomic_load(&inode_table_get(t, dino)->size), 2);
	inode_children_at(c, 0, &name, &len, &ino);
	CHECK(len == 5 && !memcmp(name, "alpha", 5));
	CHECK_OK(inode_children_find(c, (const uint8_t *)"beta", 4, &idx));
	CHECK_EQ(idx, 1);
	CHECK_ERR(inode_children_find(c, (const uint8_t *)"bet", 3, &idx), -ENOENT);
	CHECK_ERR(inode_children_find(c, (const uint8_t *)"gamma", 5, &idx), -ENOENT);
	/* A second populate reuses the published array. */
	CHECK_OK(inode_table_populate(t, dino, dir, &c2));
	CHECK(c2 == c);
	inode_children_unref(c2);
	inode_table_ref(t, dino, 2);
	inode_table_forget(t, dino, 1);
	CHECK_OK(inode_table_children(t, dino, &c2));
	inode_children_unref(c2);
	inode_table_forget(t, dino, 5); /* saturates at 0 and drops children */
	CHECK_ERR(inode_table_children(t, dino, &c2), -ENOENT);
	inode_table_stats(t, &s);
	CHECK_EQ(s.populated, 0);
	/* `c` is still valid through our reference; repopulating gives the
	 * same inode numbers. */
	inode_children_at(c, 1, &name, &len, &ino);
	inode_children_unref(c);
	CHECK_OK(inode_table_populate(t, dino, dir, &c));
	inode_children_at(c, 1, &name, &len, &ino2);
	CHECK_EQ(ino, ino2);
	inode_children_unref(c);
	inode_table_forget(t, 12345, 1); /* unknown: ignored */
	directory_free(dir);
	inode_table_free(t);
}

/* Many distinct files with names like a real tree's: the table must stay
 * under 150 bytes per inode. */
TEST(inode_table_memory_per_inode)
{
	enum { N = 300000 };
	struct directory *dir = calloc(1, sizeof(*dir));
	char *names = malloc((size_t)N * 16);
	struct inode_table *t;
	struct inode_children *c;
	struct inode_table_stats s;
	struct node dn;
	uint64_t dino;

	CHECK(dir && names);
	dir->nodes = calloc(N, sizeof(*dir->nodes));
	CHECK(dir->nodes);
	dir->count = N;
	for (uint32_t i = 0; i < N; i++) {
		struct b3_digest d;

		b3_digest_of(&i, sizeof(i), &d);
		snprintf(names + (size_t)i * 16, 16, "file-%07u.so", i);
		dir->nodes[i] = file_node(names + (size_t)i * 16, d, i, i % 7 == 0);
	}
	CHECK_OK(inode_table_new(&t));
	b3_digest_of("dir", 3, &dn.digest);
	dn = dir_node("d", dn.digest);
	CHECK_OK(inode_table_intern(t, &dn, &dino));
	CHECK_OK(inode_table_populate(t, dino, dir, &c));
	inode_children_unref(c);
	inode_table_stats(t, &s);
	CHECK_EQ(s.inodes, N + 2);
	printf("# inode table: %.1f bytes per inode\n", (double)s.bytes / (double)s.inodes);
	CHECK_MSG((double)s.bytes / (double)s.inodes <= 150.0, "%.1f bytes per inode",
		  (double)s.bytes / (double)s.inodes);
	inode_table_free(t);
	free(dir->nodes);
	free(dir);
	free(names);
}

/* --- fs operations --- */

TEST(fs_lookup_attrs_errors)
{
	struct world w;
	struct fs_entry e, p1, a, b, l, sub, br;
	const uint8_t *target;
	size_t len;

	CHECK_OK(world_new(&w, false));
	CHECK_OK(fs_lookup(w.fs, INODE_ROOT, "p1", 2, &p1));
	CHECK_EQ(p1.attr.st_mode, S_IFDIR | 0555);
	CHECK_EQ(p1.attr.st_size, 6);
	CHECK_EQ(p1.attr.st_mtim.tv_sec, 1);
	CHECK_EQ(p1.attr.st_nlink, 1);
	CHECK_ERR(fs_lookup(w.fs, INODE_ROOT, "p", 1, &e), -ENOENT);
	CHECK_ERR(fs_lookup(w.fs, INODE_ROOT, "p1x", 3, &e), -ENOENT);
	CHECK_ERR(fs_lookup(w.fs, INODE_ROOT, "", 0, &e), -ENOENT);
	CHECK_OK(fs_lookup(w.fs, p1.ino, "a", 1, &a));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "b", 1, &b));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "l", 1, &l));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "sub", 3, &sub));
	CHECK_EQ(a.attr.st_mode, S_IFREG | 0444);
	CHECK_EQ(b.attr.st_mode, S_IFREG | 0555);
	CHECK(a.ino != b.ino);
	CHECK_EQ(a.attr.st_size, 5);
	CHECK_EQ(a.attr.st_blocks, 1);
	CHECK_EQ(l.attr.st_mode, S_IFLNK | 0777);
	CHECK_EQ(l.attr.st_size, 1);
	CHECK_EQ(sub.attr.st_size, 1);
	CHECK_OK(fs_lookup(w.fs, INODE_ROOT, "f1", 2, &e));
	CHECK_EQ(e.ino, a.ino); /* same content, same inode */
	CHECK_OK(fs_readlink(w.fs, l.ino, &target, &len));
	CHECK(len == 1 && target[0] == 'a');
	CHECK_ERR(fs_readlink(w.fs, a.ino, &target, &len), -EINVAL);
	CHECK_ERR(fs_readlink(w.fs, INODE_ROOT, &target, &len), -EINVAL);
	CHECK_ERR(fs_lookup(w.fs, p1.ino, "zzz", 3, &e), -ENOENT);
	CHECK_ERR(fs_lookup(w.fs, a.ino, "x", 1, &e), -ENOTDIR);
	CHECK_ERR(fs_lookup(w.fs, 999999, "x", 1, &e), -ESTALE);
	CHECK_ERR(fs_getattr(w.fs, 999999, &e.attr), -ESTALE);
	/* A missing Directory: stat works (size 0), lookups inside are EIO. */
	CHECK_OK(fs_lookup(w.fs, p1.ino, "broken", 6, &br));
	CHECK_EQ(br.attr.st_mode, S_IFDIR | 0555);
	CHECK_EQ(br.attr.st_size, 0);
	CHECK_ERR(fs_lookup(w.fs, br.ino, "x", 1, &e), -EIO);
	CHECK_ERR(fs_readdir(w.fs, br.ino, 0, true, NULL, NULL), -EIO);
	CHECK_OK(fs_getattr(w.fs, INODE_ROOT, &e.attr));
	CHECK_EQ(e.attr.st_mode, S_IFDIR | 0555);
	CHECK_EQ(e.attr.st_mtim.tv_sec, 1);
	world_free(&w);
}

struct collect {
	char names[512][64];
	uint64_t offs[512];
	size_t n, limit, taken;
};

static int collect_one(void *ctx, const char *name, size_t len, const struct fs_entry *e,
		       uint64_t next_off)
{
	struct collect *c = ctx;

	if (c->taken == c->limit || c->n == 512)
		return 1;
	snprintf(c->names[c->n], 64, "%.*s", (int)len, name);
	c->offs[c->n++] = next_off;
	c->taken++;
	return 0;
}

/* Lists `ino` taking `per_call` entries per call, resuming at the last
 * taken entry's offset, like the kernel does with a small buffer. */
static int list_in_pieces(struct fs *fs, uint64_t ino, size_t per_call, struct collect *c)
{
	uint64_t off = 0;
	int rc;

	c->n = 0;
	for (;;) {
		size_t before = c->n;

		c->limit = per_call, c->taken = 0;
		rc = fs_readdir(fs, ino, off, true, collect_one, c);
		if (rc || c->n == before)
			return rc;
		off = c->offs[c->n - 1];
	}
}

TEST(fs_readdir_offsets)
{
	static const char *want[] = {"a", "b", "broken", "l", "nob", "sub"};
	struct world w;
	struct collect *c = calloc(1, sizeof(*c));
	struct fs_entry p1, e;

	CHECK(c);
	CHECK_OK(world_new(&w, false));
	CHECK_OK(fs_lookup(w.fs, INODE_ROOT, "p1", 2, &p1));
	for (size_t per = 1; per <= 9; per++) {
		CHECK_OK(list_in_pieces(w.fs, p1.ino, per, c));
		CHECK_EQ(c->n, 8);
		CHECK_STR(c->names[0], ".");
		CHECK_STR(c->names[1], "..");
		for (size_t i = 0; i < 8; i++)
			CHECK_EQ(c->offs[i], i + 1);
		for (size_t i = 0; i < 6; i++)
			CHECK_STR(c->names[i + 2], want[i]);
	}
	c->n = 0, c->limit = 100, c->taken = 0;
	CHECK_OK(fs_readdir(w.fs, p1.ino, 6, false, collect_one, c));
	CHECK_EQ(c->n, 2);
	CHECK_STR(c->names[0], "nob");
	c->n = 0, c->taken = 0;
	CHECK_OK(fs_readdir(w.fs, p1.ino, 99, false, collect_one, c));
	CHECK_EQ(c->n, 0);
	CHECK_ERR(fs_readdir(w.fs, INODE_ROOT, 0, true, collect_one, c), -EPERM);
	CHECK_OK(fs_lookup(w.fs, p1.ino, "a", 1, &e));
	CHECK_ERR(fs_readdir(w.fs, e.ino, 0, true, collect_one, c), -ENOTDIR);
	world_free(&w);
	free(c);
}

/* A complete plus listing releases the children array (the kernel holds
 * every entry now); the call past the end does not rebuild it, a lookup
 * does, with the same inode numbers. */
TEST(fs_complete_listing_releases_children)
{
	struct world w;
	struct collect *c = calloc(1, sizeof(*c));
	struct inode_table_stats s1, s2, s3;
	struct fs_entry p1, e;
	uint64_t listed_nob = 0;

	CHECK(c);
	CHECK_OK(world_new(&w, false));
	CHECK_OK(fs_lookup(w.fs, INODE_ROOT, "p1", 2, &p1));
	CHECK_OK(list_in_pieces(w.fs, p1.ino, 3, c));
	CHECK_EQ(c->n, 8);
	fs_stats(w.fs, &s1);
	c->n = 0, c->limit = 100, c->taken = 0;
	CHECK_OK(fs_readdir(w.fs, p1.ino, 8, true, collect_one, c));
	CHECK_EQ(c->n, 0);
	fs_stats(w.fs, &s2);
	CHECK_EQ(s2.populated, s1.populated);
	c->n = 0, c->limit = 100, c->taken = 0;
	CHECK_OK(fs_readdir(w.fs, p1.ino, 6, false, collect_one, c));
	CHECK_STR(c->names[0], "nob");
	CHECK_OK(fs_lookup(w.fs, p1.ino, "nob", 3, &e));
	listed_nob = e.ino;
	fs_stats(w.fs, &s3);
	CHECK_EQ(s3.populated, s1.populated + 1);
	CHECK_OK(fs_lookup(w.fs, p1.ino, "nob", 3, &e));
	CHECK_EQ(e.ino, listed_nob);
	world_free(&w);
	free(c);
}

TEST(fs_root_listing_lossless)
{
	enum { N = 300 };
	struct world w;
	struct collect *c = calloc(1, sizeof(*c));
	struct node *many = calloc(N, sizeof(*many));
	char(*names)[16] = calloc(N, 16);

	CHECK(c && many && names);
	CHECK_OK(world_new(&w, true));
	for (int i = 0; i < N; i++) {
		snprintf(names[i], 16, "n%03d", i);
		many[i] = file_node(names[i], w.hello, 5, false);
	}
	w.root.nodes = many, w.root.n = N;
	/* Sizes that cross the 128-entry batches at different points. */
	for (size_t per = 1; per < 200; per += 37) {
		CHECK_OK(list_in_pieces(w.fs, INODE_ROOT, per, c));
		CHECK_EQ(c->n, N + 2);
		CHECK_STR(c->names[0], ".");
		CHECK_STR(c->names[1], "..");
		for (int i = 0; i < N; i++) {
			CHECK_STR(c->names[i + 2], names[i]);
			CHECK_EQ(c->offs[i + 2], (uint64_t)i + 3);
		}
	}
	world_free(&w);
	free(names);
	free(many);
	free(c);
}

TEST(fs_files_and_xattrs)
{
	struct world w;
	struct fs_entry p1, a, l, nob, sub;
	struct fs_file *f, *f2;
	char buf[128], text[B3_TEXT_LEN + 1];
	size_t n;

	CHECK_OK(world_new(&w, false));
	CHECK_OK(fs_lookup(w.fs, INODE_ROOT, "p1", 2, &p1));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "a", 1, &a));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "l", 1, &l));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "nob", 3, &nob));
	CHECK_OK(fs_lookup(w.fs, p1.ino, "sub", 3, &sub));
	CHECK_OK(fs_file_get(w.fs, a.ino, &f));
	CHECK_OK(fs_file_get(w.fs, a.ino, &f2));
	CHECK(f == f2); /* shared through the reader cache */
	fs_file_unref(w.fs, f2);
	CHECK_EQ(fs_file_size(f), 5);
	CHECK_EQ(fs_file_fd(f), -1);
	CHECK_OK(fs_file_read(f, buf, sizeof(buf), 0, &n));
	CHECK(n == 5 && !memcmp(buf, "hello", 5));
	CHECK_OK(fs_file_read(f, buf, 2, 3, &n));
	CHECK(n == 2 && !memcmp(buf, "lo", 2));
	CHECK_OK(fs_file_read(f, buf, 10, 5, &n));
	CHECK_EQ(n, 0);
	CHECK_OK(fs_file_read(f, buf, 10, 500, &n));
	CHECK_EQ(n, 0);
	fs_file_unref(w.fs, f);
	CHECK_ERR(fs_file_get(w.fs, nob.ino, &f), -EIO);
	CHECK_ERR(fs_file_get(w.fs, p1.ino, &f), -EISDIR);
	CHECK_ERR(fs_file_get(w.fs, INODE_ROOT, &f), -EISDIR);
	CHECK_ERR(fs_file_get(w.fs, l.ino, &f), -ELOOP);
	CHECK_ERR(fs_file_get(w.fs, 999999, &f), -ESTALE);

	CHECK_OK(fs_getxattr(w.fs, a.ino, FS_XATTR_BLOB, NULL, 0, &n));
	CHECK_EQ(n, B3_TEXT_LEN);
	CHECK_ERR(fs_getxattr(w.fs, a.ino, FS_XATTR_BLOB, buf, 50, &n), -ERANGE);
	CHECK_OK(fs_getxattr(w.fs, a.ino, FS_XATTR_BLOB, buf, sizeof(buf), &n));
	b3_digest_to_text(&w.hello, text);
	CHECK(n == B3_TEXT_LEN && !memcmp(buf, text, n));
	CHECK_ERR(fs_getxattr(w.fs, a.ino, FS_XATTR_DIRECTORY, buf, sizeof(buf), &n), -ENODATA);
	CHECK_ERR(fs_getxattr(w.fs, sub.ino, FS_XATTR_BLOB, buf, sizeof(buf), &n), -ENODATA);
	CHECK_OK(fs_getxattr(w.fs, sub.ino, FS_XATTR_DIRECTORY, buf, sizeof(buf), &n));
	CHECK_ERR(fs_getxattr(w.fs, l.ino, FS_XATTR_BLOB, buf, sizeof(buf), &n), -ENODATA);
	CHECK_ERR(fs_getxattr(w.fs, INODE_ROOT, FS_XATTR_DIRECTORY, buf, sizeof(buf), &n),
		  -ENODATA);
	CHECK_OK(fs_getxattr(w.fs, INODE_ROOT, FS_XATTR_STATS, buf, sizeof(buf), &n));
	CHECK(n > 7 && !memcmp(buf, "inodes=", 7));
	CHECK_OK(fs_listxattr(w.fs, a.ino, NULL, 0, &n));
	CHECK_EQ(n, sizeof(FS_XATTR_BLOB));
	CHECK_ERR(fs_listxattr(w.fs, a.ino, buf, 4, &n), -ERANGE);
	CHECK_OK(fs_listxattr(w.fs, sub.ino, buf, sizeof(buf), &n));
	CHECK(n == sizeof(FS_XATTR_DIRECTORY) && !memcmp(buf, FS_XATTR_DIRECTORY, n));
	CHECK_OK(fs_listxattr(w.fs, l.ino, buf, sizeof(buf), &n));
	CHECK_EQ(n, 0);
	CHECK_OK(fs_listxattr(w.fs, INODE_ROOT, buf, sizeof(buf), &n));
	CHECK_EQ(n, 0);
	world_free(&w);
}

TEST(fs_reader_cache_is_bounded)
{
	struct world w;
	struct fs_config cfg = {.reader_cache = 2};
	struct b3_digest d[5];
	struct node nodes[5];
	char content[5][8], names[5][4];
	struct fs_file *f;
	size_t n;

	CHECK_OK(world_new(&w, false));
	fs_free(w.fs);
	for (int i = 0; i < 5; i++) {
		snprintf(content[i], 8, "c%d", i);
		snprintf(names[i], 4, "r%d", i);
		CHECK_OK(blob_service_put(w.st->blobs, content[i], 2, &d[i]));
		nodes[i] = file_node(names[i], d[i], 2, false);
	}
	w.root.nodes = nodes, w.root.n = 5;
	CHECK_OK(fs_new(w.st->blobs, w.st->dirs, &w.root.base, &cfg, &w.fs));
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 5; i++) {
			struct fs_entry e;
			char buf[4];

			CHECK_OK(fs_lookup(w.fs, INODE_ROOT, names[i], 2, &e));
			CHECK_OK(fs_file_get(w.fs, e.ino, &f));
			CHECK_OK(fs_file_read(f, buf, 4, 0, &n));
			CHECK(n == 2 && !memcmp(buf, content[i], 2));
			fs_file_unref(w.fs, f);
		}
	world_free(&w);
}

TEST(fs_statfs_numbers)
{
	struct world w;
	struct statvfs sv;

	CHECK_OK(world_new(&w, false));
	fs_statfs(w.fs, &sv);
	CHECK_EQ(sv.f_bsize, 4096);
	CHECK_EQ(sv.f_namemax, 255);
	CHECK_EQ(sv.f_bfree, 0);
	CHECK_EQ(sv.f_ffree, 0);
	CHECK(sv.f_files >= 1);
	world_free(&w);
}

static int fake_usage(void *ctx, uint64_t *bytes, uint64_t *objects)
{
	*bytes = 10000;
	*objects = 7;
	return *(int *)ctx;
}

/* With the store's sizes: as big as its blobs, as many files as objects,
 * nothing free (docs/trust.md "statfs"); without them, blocks 0. */
TEST(fs_statfs_store_usage)
{
	struct fs_config cfg = {.usage = fake_usage};
	struct fs *fs;
	struct store *st;
	struct statvfs sv;
	int fail = 0;

	cfg.usage_ctx = &fail;
	CHECK_OK(memory_store_new(DIR_SIZE_SPEC, &st));
	CHECK_OK(fs_new(st->blobs, st->dirs, NULL, &cfg, &fs));
	fs_statfs(fs, &sv);
	CHECK_EQ(sv.f_blocks, 3); /* 10000 bytes in 4096-byte blocks */
	CHECK_EQ(sv.f_files, 7);
	CHECK(sv.f_bfree == 0 && sv.f_bavail == 0 && sv.f_ffree == 0 && sv.f_favail == 0);
	CHECK(sv.f_flag & ST_RDONLY);
	fail = -EIO;
	fs_statfs(fs, &sv);
	CHECK_EQ(sv.f_blocks, 0);
	fs_free(fs);
	store_free(st);
}

/* --- concurrency: many threads resolve, list, read and forget at once --- */

struct hammer {
	struct world *w;
	int seed;
	int errors;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	static const char *names[] = {"a", "b", "l", "sub", "nob"};
	struct collect *c = calloc(1, sizeof(*c));

	for (int i = 0; c && i < 2000; i++) {
		struct fs_entry p1, e;
		struct fs_file *f;
		char buf[8];
		size_t n;
		const char *nm = names[(i + h->seed) % 5];

		if (fs_lookup(h->w->fs, INODE_ROOT, "p1", 2, &p1) ||
		    fs_lookup(h->w->fs, p1.ino, nm, strlen(nm), &e)) {
			h->errors++;
			continue;
		}
		if (nm[0] == 'a' && (fs_file_get(h->w->fs, e.ino, &f) == 0)) {
			if (fs_file_read(f, buf, 8, 0, &n) || n != 5)
				h->errors++;
			fs_file_unref(h->w->fs, f);
		}
		/* 6 entries after "." and "..", which count no reference */
		if (list_in_pieces(h->w->fs, p1.ino, 1 + (size_t)i % 4, c) || c->n != 8)
			h->errors++;
		fs_forget(h->w->fs, e.ino, 1);
		/* Drops p1's children now and then, racing the others. */
		fs_forget(h->w->fs, p1.ino, 1 + (c->n > 2 ? c->n - 2 : 0));
	}
	free(c);
	return NULL;
}

TEST(fs_concurrent_operations)
{
	enum { THREADS = 8 };
	struct world w;
	struct hammer h[THREADS];
	pthread_t t[THREADS];

	CHECK_OK(world_new(&w, false));
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){&w, i, 0};
		CHECK(pthread_create(&t[i], NULL, hammer_main, &h[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(h[i].errors, 0);
	}
	world_free(&w);
}
