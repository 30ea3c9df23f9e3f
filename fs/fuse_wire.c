/* fuse_wire.c - raw FUSE requests decoded into fs_*() calls, replies
 * encoded into the caller's buffers (structures from <linux/fuse.h>). */
#include "fs/fuse_wire.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "Forever", as the /dev/fuse mount says it: the data never changes. */
#define TIMEOUT_SEC 1000000000ull
/* The oldest protocol we speak: fuse_init_out has its 7.23 layout. */
#define MINOR_MIN	     23
#define MAX_BACKGROUND	     64
#define CONGESTION_THRESHOLD 48
/* Requests carry no data to write (every write is EROFS), so the
 * kernel's minimum. */
#define MAX_WRITE 4096
/* Pages per READ: 1 MiB; virtio-fs lowers it to what its queue holds. */
#define MAX_PAGES 256
#define XATTR_MAX 65536
/* Segments per preadv() call when a READ is answered from a file. */
#define READ_SEGMENTS 64

struct fuse_wire {
	struct fs *fs;
	_Atomic bool ready; /* INIT answered and no DESTROY since */
};

/* One request being answered. */
struct req {
	struct fuse_wire *w;
	struct fuse_in_header h;
	const uint8_t *arg; /* the arguments after the header */
	size_t arg_len;
	const struct iovec *out; /* the reply buffers */
	unsigned nout;
	size_t room; /* their total size */
};

int fuse_wire_new(struct fs *fs, struct fuse_wire **out)
{
	struct fuse_wire *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	*out = w;
	return 0;
}

void fuse_wire_free(struct fuse_wire *w)
{
	free(w);
}

/* --- writing replies --- */

/* Copies `len` bytes to the reply buffers at offset `off`; the caller
 * checked that they fit. */
static void out_copy(const struct req *r, size_t off, const void *src, size_t len)
{
	const uint8_t *p = src;

	for (unsigned i = 0; i < r->nout && len; i++) {
		size_t seg = r->out[i].iov_len, n;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		n = seg - off < len ? seg - off : len;
		memcpy((uint8_t *)r->out[i].iov_base + off, p, n);
		p += n, len -= n, off = 0;
	}
}

/* Writes the reply header for `len` payload bytes already in place (or an
 * error without payload); returns the reply length. */
static size_t reply_header(const struct req *r, int err, size_t len)
{
	struct fuse_out_header oh = {
	    .len = (uint32_t)(sizeof(oh) + len), .error = err, .unique = r->h.unique};

	if (r->room < sizeof(oh))
		return 0;
	out_copy(r, 0, &oh, sizeof(oh));
	return oh.len;
}

/* Replies an error (a negative errno); failures the user should hear about
 * are logged, as the /dev/fuse mount does. */
static size_t reply_err(const struct req *r, int rc)
{
	if (rc == -EIO || rc == -ENOMEM)
		log_warn("%s", sf_errmsg(rc));
	return reply_header(r, rc, 0);
}

static size_t reply_ok(const struct req *r)
{
	return reply_header(r, 0, 0);
}

/* The room left for a payload. */
static size_t payload_room(const struct req *r)
{
	return r->room > sizeof(struct fuse_out_header) ? r->room - sizeof(struct fuse_out_header)
							: 0;
}

static size_t reply_data(const struct req *r, const void *data, size_t len)
{
	if (len > payload_room(r))
		return reply_err(r, sf_err(-EIO,
					   "a FUSE reply of %zu bytes does not fit the "
					   "kernel's buffer of %zu",
					   len, payload_room(r)));
	out_copy(r, sizeof(struct fuse_out_header), data, len);
	return reply_header(r, 0, len);
}

/* The arguments as `size` bytes: the shorter older layouts of a struct
 * read as zeros past their end. */
static void arg_get(const struct req *r, void *dst, size_t size)
{
	size_t n = r->arg_len < size ? r->arg_len : size;

	memset(dst, 0, size);
	memcpy(dst, r->arg, n);
}

/* A NUL-terminated name at `off` in the arguments, or NULL. */
static const char *arg_name(const struct req *r, size_t off, size_t *len)
{
	const uint8_t *nul;

	if (off >= r->arg_len)
		return NULL;
	nul = memchr(r->arg + off, 0, r->arg_len - off);
	if (!nul)
		return NULL;
	*len = (size_t)(nul - (r->arg + off));
	return (const char *)r->arg + off;
}

/* --- attributes and entries --- */

static void attr_encode(const struct stat *st, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->blksize = (uint32_t)st->st_blksize;
}

static void entry_encode(const struct fs_entry *e, struct fuse_entry_out *eo)
{
	memset(eo, 0, sizeof(*eo));
	eo->nodeid = e->ino;
	eo->entry_valid = TIMEOUT_SEC;
	eo->attr_valid = TIMEOUT_SEC;
	attr_encode(&e->attr, &eo->attr);
}

/* --- session --- */

static size_t op_init(struct req *r)
{
	struct fuse_init_in in;
	struct fuse_init_out o = {.major = FUSE_KERNEL_VERSION};
	uint32_t want = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_PARALLEL_DIROPS |
			FUSE_CACHE_SYMLINKS | FUSE_MAX_PAGES;

	if (r->arg_len < 16)
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	/* An INIT while a session runs is a new kernel: a guest that rebooted
	 * without unmounting (no DESTROY) resets the device and mounts again. */
	atomic_store(&r->w->ready, false);
	/* A newer major: answer ours, the kernel then retries with it. */
	if (in.major > FUSE_KERNEL_VERSION)
		return reply_data(r, &o, FUSE_COMPAT_INIT_OUT_SIZE);
	if (in.major < FUSE_KERNEL_VERSION || in.minor < MINOR_MIN)
		return reply_err(
		    r, sf_err(-EPROTO, "FUSE protocol %u.%u is too old", in.major, in.minor));
	o.minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION;
	o.max_readahead = in.max_readahead;
	o.flags = want & in.flags;
	o.max_background = MAX_BACKGROUND;
	o.congestion_threshold = CONGESTION_THRESHOLD;
	o.max_write = MAX_WRITE;
	o.time_gran = 1;
	o.max_pages = MAX_PAGES;
	if (payload_room(r) < sizeof(o))
		return reply_err(r, -EINVAL);
	log_info("fuse: protocol 7.%u, flags 0x%x", o.minor, o.flags);
	atomic_store(&r->w->ready, true);
	return reply_data(r, &o, sizeof(o));
}

static size_t op_destroy(struct req *r)
{
	atomic_store(&r->w->ready, false);
	return reply_ok(r);
}

/* --- names and attributes --- */

static size_t op_lookup(struct req *r)
{
	struct fuse_entry_out eo;
	struct fs_entry e;
	const char *name;
	size_t len, n;
	int rc;

	name = arg_name(r, 0, &len);
	if (!name)
		return reply_err(r, -EINVAL);
	rc = fs_lookup(r->w->fs, r->h.nodeid, name, len, &e);
	if (rc == -ENOENT && r->h.nodeid != FUSE_ROOT_ID) {
		/* A cached miss: content below the root never changes. */
		memset(&eo, 0, sizeof(eo));
		eo.entry_valid = TIMEOUT_SEC;
		return reply_data(r, &eo, sizeof(eo));
	}
	if (rc)
		return reply_err(r, rc);
	entry_encode(&e, &eo);
	n = reply_data(r, &eo, sizeof(eo));
	if (n <= sizeof(struct fuse_out_header))
		fs_forget(r->w->fs, e.ino, 1); /* the kernel did not get it */
	return n;
}

static size_t op_forget(struct req *r)
{
	struct fuse_forget_in in;

	if (r->arg_len >= sizeof(in)) {
		arg_get(r, &in, sizeof(in));
		fs_forget(r->w->fs, r->h.nodeid, in.nlookup);
	}
	return 0;
}

static size_t op_batch_forget(struct req *r)
{
	struct fuse_batch_forget_in in;
	struct fuse_forget_one one;

	if (r->arg_len < sizeof(in))
		return 0;
	arg_get(r, &in, sizeof(in));
	if (in.count > (r->arg_len - sizeof(in)) / sizeof(one)) {
		log_debug("fuse: a BATCH_FORGET of %u entries in %zu bytes ignored", in.count,
			  r->arg_len);
		return 0;
	}
	for (uint32_t i = 0; i < in.count; i++) {
		memcpy(&one, r->arg + sizeof(in) + i * sizeof(one), sizeof(one));
		fs_forget(r->w->fs, one.nodeid, one.nlookup);
	}
	return 0;
}

static size_t op_getattr(struct req *r)
{
	struct fuse_attr_out ao = {.attr_valid = TIMEOUT_SEC};
	struct stat st;
	int rc = fs_getattr(r->w->fs, r->h.nodeid, &st);

	if (rc)
		return reply_err(r, rc);
	attr_encode(&st, &ao.attr);
	return reply_data(r, &ao, sizeof(ao));
}

static size_t op_readlink(struct req *r)
{
	const uint8_t *target;
	size_t len;
	int rc = fs_readlink(r->w->fs, r->h.nodeid, &target, &len);

	if (rc)
		return reply_err(r, rc);
	return reply_data(r, target, len);
}

/* Root may do anything but write; executing needs an x bit. */
static size_t op_access(struct req *r)
{
	struct fuse_access_in in;
	struct stat st;
	int rc;

	if (r->arg_len < sizeof(in))
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	rc = fs_getattr(r->w->fs, r->h.nodeid, &st);
	if (rc)
		return reply_err(r, rc);
	if (in.mask & W_OK)
		return reply_err(r, -EROFS);
	if ((in.mask & X_OK) && !(st.st_mode & 0111))
		return reply_err(r, -EACCES);
	return reply_ok(r);
}

static size_t op_statfs(struct req *r)
{
	struct fuse_statfs_out so;
	struct statvfs sv;

	fs_statfs(r->w->fs, &sv);
	memset(&so, 0, sizeof(so));
	so.st.blocks = sv.f_blocks;
	so.st.bfree = sv.f_bfree;
	so.st.bavail = sv.f_bavail;
	so.st.files = sv.f_files;
	so.st.ffree = sv.f_ffree;
	so.st.bsize = (uint32_t)sv.f_bsize;
	so.st.namelen = (uint32_t)sv.f_namemax;
	so.st.frsize = (uint32_t)sv.f_frsize;
	return reply_data(r, &so, sizeof(so));
}

/* --- files --- */

/* Opens only check: reads find the blob by inode number through the
 * filesystem's reader cache, so no handle of ours ever goes to the kernel
 * (a guest could forge one). */
static size_t op_open(struct req *r)
{
	struct fuse_open_in in;
	struct fuse_open_out oo = {.open_flags = FOPEN_KEEP_CACHE | FOPEN_NOFLUSH};
	struct fs_file *f;
	int rc;

	if (r->arg_len < sizeof(in))
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	if ((in.flags & O_ACCMODE) != O_RDONLY || (in.flags & O_TRUNC))
		return reply_err(r, -EROFS);
	fs_count(r->w->fs, FS_COUNT_OPEN);
	rc = fs_file_get(r->w->fs, r->h.nodeid, &f);
	if (rc)
		return reply_err(r, rc);
	fs_file_unref(r->w->fs, f);
	return reply_data(r, &oo, sizeof(oo));
}

/* Fills reply bytes [hdr, hdr + want) from the blob's file, straight into
 * the reply buffers. */
static int read_fd(const struct req *r, int fd, uint64_t off, size_t want)
{
	struct iovec seg[READ_SEGMENTS];
	size_t done = 0;

	while (done < want) {
		size_t skip = sizeof(struct fuse_out_header) + done, left = want - done;
		unsigned n = 0;
		ssize_t got;

		for (unsigned i = 0; i < r->nout && left && n < READ_SEGMENTS; i++) {
			size_t len = r->out[i].iov_len;

			if (skip >= len) {
				skip -= len;
				continue;
			}
			len -= skip;
			len = len < left ? len : left;
			seg[n++] = (struct iovec){(uint8_t *)r->out[i].iov_base + skip, len};
			left -= len, skip = 0;
		}
		got = preadv(fd, seg, (int)n, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return sf_err_sys(errno, "cannot read a blob at offset %llu",
					  (unsigned long long)(off + done));
		if (got == 0)
			return sf_err(-EIO, "a blob ended early at offset %llu",
				      (unsigned long long)(off + done));
		done += (size_t)got;
	}
	return 0;
}

static int read_copy(const struct req *r, struct fs_file *f, uint64_t off, size_t want)
{
	uint8_t *buf = malloc(want);
	size_t n;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = fs_file_read(f, buf, want, off, &n);
	if (rc == 0 && n != want)
		rc = sf_err(-EIO, "a blob ended early");
	if (rc == 0)
		out_copy(r, sizeof(struct fuse_out_header), buf, want);
	free(buf);
	return rc;
}

static size_t op_read(struct req *r)
{
	struct fuse_read_in in;
	struct fs_file *f;
	uint64_t fsize;
	size_t want;
	int rc;

	if (r->arg_len < sizeof(in))
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	fs_count(r->w->fs, FS_COUNT_READ);
	rc = fs_file_get(r->w->fs, r->h.nodeid, &f);
	if (rc)
		return reply_err(r, rc);
	fsize = fs_file_size(f);
	want = in.size < payload_room(r) ? in.size : payload_room(r);
	if (in.offset >= fsize)
		want = 0;
	else if (fsize - in.offset < want)
		want = (size_t)(fsize - in.offset);
	if (want == 0)
		rc = 0;
	else if (fs_file_fd(f) >= 0)
		rc = read_fd(r, fs_file_fd(f), in.offset, want);
	else
		rc = read_copy(r, f, in.offset, want);
	fs_file_unref(r->w->fs, f);
	return rc ? reply_err(r, rc) : reply_header(r, 0, want);
}

/* --- directories --- */

static size_t op_opendir(struct req *r)
{
	struct fuse_open_out oo = {0};
	struct stat st;
	int rc = fs_getattr(r->w->fs, r->h.nodeid, &st);

	if (rc)
		return reply_err(r, rc);
	if (!S_ISDIR(st.st_mode))
		return reply_err(r, -ENOTDIR);
	/* The root's listing grows; everything else is immutable. */
	if (r->h.nodeid != FUSE_ROOT_ID)
		oo.open_flags = FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR;
	return reply_data(r, &oo, sizeof(oo));
}

struct dirbuf {
	uint8_t *buf;
	size_t size, used;
	bool plus;
};

static int dirbuf_add(void *ctx, const char *name, size_t len, const struct fs_entry *e,
		      uint64_t next_off)
{
	struct dirbuf *b = ctx;
	size_t head = b->plus ? offsetof(struct fuse_direntplus, dirent) : 0;
	size_t rec = FUSE_DIRENT_ALIGN(head + FUSE_NAME_OFFSET + len);
	struct fuse_dirent d = {.ino = e->ino,
				.off = next_off,
				.namelen = (uint32_t)len,
				.type = (e->attr.st_mode & S_IFMT) >> 12};
	struct fuse_entry_out eo;
	uint8_t *p = b->buf + b->used;

	if (rec > b->size - b->used)
		return 1;
	memset(p, 0, rec);
	if (b->plus) {
		entry_encode(e, &eo);
		memcpy(p, &eo, sizeof(eo));
	}
	memcpy(p + head, &d, FUSE_NAME_OFFSET);
	memcpy(p + head + FUSE_NAME_OFFSET, name, len);
	b->used += rec;
	return 0;
}

static size_t op_readdir(struct req *r)
{
	struct fuse_read_in in;
	struct dirbuf b = {.plus = r->h.opcode == FUSE_READDIRPLUS};
	size_t n;
	int rc;

	if (r->arg_len < sizeof(in))
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	b.size = in.size < payload_room(r) ? in.size : payload_room(r);
	b.buf = malloc(b.size ? b.size : 1);
	if (!b.buf)
		return reply_err(r, -ENOMEM);
	rc = fs_readdir(r->w->fs, r->h.nodeid, in.offset, b.plus, dirbuf_add, &b);
	n = rc ? reply_err(r, rc) : reply_data(r, b.buf, b.used);
	free(b.buf);
	return n;
}

/* --- extended attributes --- */

/* A size-0 query gets the length; otherwise the value (or list). */
static size_t xattr_reply(const struct req *r, int rc, const void *buf, uint32_t size, size_t len)
{
	struct fuse_getxattr_out go = {.size = (uint32_t)len};

	if (rc)
		return reply_err(r, rc);
	if (size == 0)
		return reply_data(r, &go, sizeof(go));
	return reply_data(r, buf, len);
}

static size_t op_getxattr(struct req *r)
{
	struct fuse_getxattr_in in;
	const char *name;
	size_t nlen, len = 0, n;
	void *buf;
	int rc;

	name = arg_name(r, sizeof(in), &nlen);
	if (!name)
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	in.size = in.size < XATTR_MAX ? in.size : XATTR_MAX;
	buf = malloc(in.size ? in.size : 1);
	if (!buf)
		return reply_err(r, -ENOMEM);
	rc = fs_getxattr(r->w->fs, r->h.nodeid, name, buf, in.size, &len);
	n = xattr_reply(r, rc, buf, in.size, len);
	free(buf);
	return n;
}

static size_t op_listxattr(struct req *r)
{
	struct fuse_getxattr_in in;
	size_t len = 0, n;
	void *buf;
	int rc;

	if (r->arg_len < sizeof(in))
		return reply_err(r, -EINVAL);
	arg_get(r, &in, sizeof(in));
	in.size = in.size < XATTR_MAX ? in.size : XATTR_MAX;
	buf = malloc(in.size ? in.size : 1);
	if (!buf)
		return reply_err(r, -ENOMEM);
	rc = fs_listxattr(r->w->fs, r->h.nodeid, buf, in.size, &len);
	n = xattr_reply(r, rc, buf, in.size, len);
	free(buf);
	return n;
}

/* --- the rest --- */

static size_t op_ok(struct req *r)
{
	return reply_ok(r);
}

static size_t op_erofs(struct req *r)
{
	return reply_err(r, -EROFS);
}

static size_t op_none(struct req *r)
{
	return 0;
}

typedef size_t (*op_fn)(struct req *r);

/* What is not here is ENOSYS, as libfuse answers for the mount: fsync,
 * locks, ioctl, poll, lseek, bmap, syncfs, DAX mappings. */
static const op_fn ops[] = {
    [FUSE_LOOKUP] = op_lookup,
    [FUSE_FORGET] = op_forget,
    [FUSE_GETATTR] = op_getattr,
    [FUSE_SETATTR] = op_erofs,
    [FUSE_READLINK] = op_readlink,
    [FUSE_SYMLINK] = op_erofs,
    [FUSE_MKNOD] = op_erofs,
    [FUSE_MKDIR] = op_erofs,
    [FUSE_UNLINK] = op_erofs,
    [FUSE_RMDIR] = op_erofs,
    [FUSE_RENAME] = op_erofs,
    [FUSE_LINK] = op_erofs,
    [FUSE_OPEN] = op_open,
    [FUSE_READ] = op_read,
    [FUSE_WRITE] = op_erofs,
    [FUSE_STATFS] = op_statfs,
    [FUSE_RELEASE] = op_ok,
    [FUSE_SETXATTR] = op_erofs,
    [FUSE_GETXATTR] = op_getxattr,
    [FUSE_LISTXATTR] = op_listxattr,
    [FUSE_REMOVEXATTR] = op_erofs,
    [FUSE_FLUSH] = op_ok,
    [FUSE_INIT] = op_init,
    [FUSE_OPENDIR] = op_opendir,
    [FUSE_READDIR] = op_readdir,
    [FUSE_RELEASEDIR] = op_ok,
    [FUSE_ACCESS] = op_access,
    [FUSE_CREATE] = op_erofs,
    [FUSE_INTERRUPT] = op_none, /* every request is answered quickly anyway */
    [FUSE_DESTROY] = op_destroy,
    [FUSE_NOTIFY_REPLY] = op_none,
    [FUSE_BATCH_FORGET] = op_batch_forget,
    [FUSE_FALLOCATE] = op_erofs,
    [FUSE_READDIRPLUS] = op_readdir,
    [FUSE_RENAME2] = op_erofs,
    [FUSE_COPY_FILE_RANGE] = op_erofs,
    [FUSE_TMPFILE] = op_erofs,
};

/* Requests that never get a reply, even when refused. */
static bool no_reply(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT ||
	       opcode == FUSE_NOTIFY_REPLY;
}

size_t fuse_wire_handle(struct fuse_wire *w, const void *in, size_t len, const struct iovec *out,
			unsigned nout)
{
	struct req r = {.w = w, .out = out, .nout = nout};
	op_fn op;

	if (len < sizeof(r.h))
		return 0;
	memcpy(&r.h, in, sizeof(r.h));
	/* A reply's length is 32 bits; more room than that is never used. */
	for (unsigned i = 0; i < nout && r.room < UINT32_MAX; i++)
		r.room += out[i].iov_len;
	if (r.room > UINT32_MAX)
		r.room = UINT32_MAX;
	if (r.h.len != len)
		return no_reply(r.h.opcode) ? 0 : reply_err(&r, -EINVAL);
	r.arg = (const uint8_t *)in + sizeof(r.h);
	r.arg_len = len - sizeof(r.h);
	op = r.h.opcode < sizeof(ops) / sizeof(ops[0]) ? ops[r.h.opcode] : NULL;
	if (!atomic_load(&w->ready) && r.h.opcode != FUSE_INIT)
		return no_reply(r.h.opcode) ? 0 : reply_err(&r, -EIO);
	if (!op)
		return reply_err(&r, -ENOSYS);
	return op(&r);
}
