/* ops.c - the /dev/fuse operations table: each request becomes one fs_*()
 * call and exactly one reply. */
#include "fs/fuse/fusedev_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* "Forever": the data behind an inode number never changes. */
#define TIMEOUT		     1e9
#define MAX_BACKGROUND	     64
#define CONGESTION_THRESHOLD 48

static struct fusedev *dev_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Replies an error; failures the user should hear about are logged. */
static void reply_error(fuse_req_t req, int rc)
{
	if (rc == -EIO || rc == -ENOMEM)
		log_warn("%s", sf_errmsg(rc));
	fuse_reply_err(req, -rc);
}

static void entry_param(const struct fs_entry *e, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = e->ino;
	ep->attr = e->attr;
	ep->attr_timeout = TIMEOUT;
	ep->entry_timeout = TIMEOUT;
}

static void dev_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fusedev *dev = userdata;
	unsigned want = FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_ASYNC_READ | FUSE_CAP_SPLICE_WRITE;

	conn->want |= want & conn->capable;
	/* Attributes cost nothing here, so always send them with names. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	dev->zero_open = dev->cfg->open_mode == FUSEDEV_OPEN_KERNEL &&
			 (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	dev->zero_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	conn->max_background = MAX_BACKGROUND;
	conn->congestion_threshold = CONGESTION_THRESHOLD;
	log_info("fuse: protocol 7.%u, zero-message open %s, opendir %s", conn->proto_minor,
		 dev->zero_open ? "on" : "off", dev->zero_opendir ? "on" : "off");
	fusedev_pt_log_init(dev);
}

static void dev_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param ep;
	struct fs_entry e;
	int rc;

	fusedev_read_ahead_once(dev_of(req));
	rc = fs_lookup(dev_of(req)->fs, parent, name, strlen(name), &e);
	if (rc == -ENOENT) {
		/* A cached miss: PATH and import probing ask again and again. */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = TIMEOUT;
		if (parent == FUSE_ROOT_ID && dev_of(req)->cfg->root_negative_finite)
			ep.entry_timeout = dev_of(req)->cfg->root_negative_ttl;
		fuse_reply_entry(req, &ep);
		return;
	}
	if (rc) {
		reply_error(req, rc);
		return;
	}
	entry_param(&e, &ep);
	if (fuse_reply_entry(req, &ep))
		fs_forget(dev_of(req)->fs, e.ino, 1);
}

static void dev_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(dev_of(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void dev_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget(dev_of(req)->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void dev_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat sb;
	int rc;

	fusedev_read_ahead_once(dev_of(req));
	rc = fs_getattr(dev_of(req)->fs, ino, &sb);
	if (rc) {
		reply_error(req, rc);
		return;
	}
	fuse_reply_attr(req, &sb, TIMEOUT);
}

static void dev_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[CASTORE_MAX_TARGET_LEN + 1];
	const uint8_t *target;
	size_t len;
	int rc = fs_readlink(dev_of(req)->fs, ino, &target, &len);

	if (rc == 0 && len > CASTORE_MAX_TARGET_LEN)
		rc = sf_err(-EIO, "a symlink target of %zu bytes is too long", len);
	if (rc) {
		reply_error(req, rc);
		return;
	}
	memcpy(buf, target, len);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/* --- files --- */

static void dev_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fusedev *dev = dev_of(req);
	struct fs_file *f;
	int rc;

	if (dev->zero_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fs_count(dev->fs, FS_COUNT_OPEN);
	rc = fs_file_get(dev->fs, ino, &f);
	if (rc) {
		reply_error(req, rc);
		return;
	}
	if (fusedev_pt_open(req, ino, f, fi))
		return;
	fi->fh = (uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		fs_file_unref(dev->fs, f);
}

static void dev_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fusedev_pt_is_handle(fi->fh))
		fusedev_pt_release(dev_of(req), ino);
	else if (fi->fh)
		fs_file_unref(dev_of(req)->fs, (struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Replies with min(size, EOF - off) bytes, from the blob's own file when
 * there is one so that libfuse can splice it. */
static void read_reply(fuse_req_t req, struct fs_file *f, size_t size, off_t off)
{
	uint64_t fsize = fs_file_size(f), uoff = (uint64_t)off;
	size_t want = uoff >= fsize ? 0 : (size_t)(fsize - uoff < size ? fsize - uoff : size);
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(want);
	char *buf;
	size_t n;
	int rc;

	if (fs_file_fd(f) >= 0 && want) {
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = fs_file_fd(f);
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, 0);
		return;
	}
	buf = malloc(want ? want : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_file_read(f, buf, want, uoff, &n);
	if (rc)
		reply_error(req, rc);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

static void dev_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fusedev *dev = dev_of(req);
	/* A passed-through open should send no READ; serve one anyway. */
	struct fs_file *f =
	    fusedev_pt_is_handle(fi->fh) ? NULL : (struct fs_file *)(uintptr_t)fi->fh;
	int rc;

	fs_count(dev->fs, FS_COUNT_READ);
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off == 0)
		fusedev_push_hint(dev, ino);
	if (!f && fusedev_push_reply(dev, req, ino, (uint64_t)off, size))
		return; /* a pushing thread had fetched it: not fetched twice */
	if (f) {
		read_reply(req, f, size, off);
		return;
	}
	/* Zero-message open: no handle, use the shared reader cache. */
	rc = fs_file_get(dev->fs, ino, &f);
	if (rc) {
		reply_error(req, rc);
		return;
	}
	read_reply(req, f, size, off);
	fs_file_unref(dev->fs, f);
}

/* --- directories --- */

static void dev_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fusedev *dev = dev_of(req);

	if (dev->zero_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* The root's listing grows; everything else is immutable. */
	fi->cache_readdir = ino != FUSE_ROOT_ID;
	fi->keep_cache = ino != FUSE_ROOT_ID;
	fuse_reply_open(req, fi);
}

static void dev_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

static int dirbuf_add(void *ctx, const char *name, size_t len, const struct fs_entry *e,
		      uint64_t next_off)
{
	struct dirbuf *b = ctx;
	char nm[CASTORE_MAX_NAME_LEN + 1];
	struct fuse_entry_param ep;
	size_t n;

	memcpy(nm, name, len);
	nm[len] = '\0';
	if (b->plus) {
		entry_param(e, &ep);
		n = fuse_add_direntry_plus(b->req, b->buf + b->used, b->size - b->used, nm, &ep,
					   (off_t)next_off);
	} else {
		n = fuse_add_direntry(b->req, b->buf + b->used, b->size - b->used, nm, &e->attr,
				      (off_t)next_off);
	}
	if (n > b->size - b->used)
		return 1;
	b->used += n;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf b = {.req = req, .size = size, .plus = plus};
	int rc;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	b.buf = malloc(size ? size : 1);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_readdir(dev_of(req)->fs, ino, (uint64_t)off, plus, dirbuf_add, &b);
	if (rc)
		reply_error(req, rc);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

static void dev_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, false);
}

static void dev_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, true);
}

/* --- xattrs, statfs --- */

/* getxattr (`name` set) or listxattr (NULL): with size 0 the length of
 * the answer, else the answer in at most `size` bytes. */
static void xattr_common(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = dev_of(req)->fs;
	char *buf = size ? malloc(size) : NULL;
	size_t len;
	int rc;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = name ? fs_getxattr(fs, ino, name, buf, size, &len)
		  : fs_listxattr(fs, ino, buf, size, &len);
	if (rc)
		reply_error(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void dev_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xattr_common(req, ino, name, size);
}

static void dev_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_common(req, ino, NULL, size);
}

static void dev_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	fs_statfs(dev_of(req)->fs, &sv);
	fuse_reply_statfs(req, &sv);
}

/* No operation that writes: the mount is read-only (MS_RDONLY), so the
 * VFS refuses every write with EROFS before it becomes a request (and an
 * open for writing, which reaches only open, is refused there). Were root
 * to remount it read-write, libfuse would answer ENOSYS for them: still
 * nothing changes. */
const struct fuse_lowlevel_ops fusedev_ops = {
    .init = dev_init,
    .lookup = dev_lookup,
    .forget = dev_forget,
    .forget_multi = dev_forget_multi,
    .getattr = dev_getattr,
    .readlink = dev_readlink,
    .open = dev_open,
    .read = dev_read,
    .release = dev_release,
    .opendir = dev_opendir,
    .readdir = dev_readdir,
    .readdirplus = dev_readdirplus,
    .releasedir = dev_releasedir,
    .getxattr = dev_getxattr,
    .listxattr = dev_listxattr,
    .statfs = dev_statfs,
};
