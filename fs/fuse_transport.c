/* fuse_transport.c - the /dev/fuse session: libfuse lowlevel ops that call
 * fs_*() and reply exactly once. */
#include "fs/fuse_transport.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "Forever": the data behind an inode number never changes. */
#define TIMEOUT		     1e9
#define MAX_BACKGROUND	     64
#define CONGESTION_THRESHOLD 48

struct fusedev {
	struct fs *fs;
	const struct fusedev_config *cfg;
	struct fuse_session *se;
	bool zero_open, zero_opendir; /* set once in init */
};

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
	struct fusedev *d = userdata;
	unsigned want = FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_ASYNC_READ | FUSE_CAP_SPLICE_WRITE;

	conn->want |= want & conn->capable;
	/* Attributes cost nothing here, so always send them with names. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	d->zero_open =
	    d->cfg->open_mode == FUSEDEV_OPEN_KERNEL && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	d->zero_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	conn->max_background = MAX_BACKGROUND;
	conn->congestion_threshold = CONGESTION_THRESHOLD;
	log_info("fuse: protocol 7.%u, zero-message open %s, opendir %s", conn->proto_minor,
		 d->zero_open ? "on" : "off", d->zero_opendir ? "on" : "off");
}

static void dev_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param ep;
	struct fs_entry e;
	int rc = fs_lookup(dev_of(req)->fs, parent, name, strlen(name), &e);

	if (rc == -ENOENT) {
		/* A cached miss: PATH and import probing ask again and again. */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = TIMEOUT;
		fuse_reply_entry(req, &ep);
		return;
	}
	if (rc)
		return reply_error(req, rc);
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
	struct stat st;
	int rc = fs_getattr(dev_of(req)->fs, ino, &st);

	if (rc)
		return reply_error(req, rc);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void dev_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[CASTORE_MAX_TARGET_LEN + 1];
	const uint8_t *target;
	size_t len;
	int rc = fs_readlink(dev_of(req)->fs, ino, &target, &len);

	if (rc == 0 && len > CASTORE_MAX_TARGET_LEN)
		rc = sf_err(-EIO, "a symlink target of %zu bytes is too long", len);
	if (rc)
		return reply_error(req, rc);
	memcpy(buf, target, len);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/* --- files --- */

static void dev_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fusedev *d = dev_of(req);
	struct fs_file *f;
	int rc;

	if (d->zero_open)
		return (void)fuse_reply_err(req, ENOSYS);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EROFS);
	rc = fs_file_get(d->fs, ino, &f);
	if (rc)
		return reply_error(req, rc);
	fi->fh = (uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		fs_file_put(d->fs, f);
}

static void dev_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		fs_file_put(dev_of(req)->fs, (struct fs_file *)(uintptr_t)fi->fh);
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
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
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
	struct fusedev *d = dev_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	int rc;

	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	if (f)
		return read_reply(req, f, size, off);
	/* Zero-message open: no handle, use the shared reader cache. */
	rc = fs_file_get(d->fs, ino, &f);
	if (rc)
		return reply_error(req, rc);
	read_reply(req, f, size, off);
	fs_file_put(d->fs, f);
}

/* --- directories --- */

static void dev_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fusedev *d = dev_of(req);

	if (d->zero_opendir)
		return (void)fuse_reply_err(req, ENOSYS);
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

	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	b.buf = malloc(size ? size : 1);
	if (!b.buf)
		return (void)fuse_reply_err(req, ENOMEM);
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

static void dev_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	size_t len;
	int rc;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	rc = fs_getxattr(dev_of(req)->fs, ino, name, buf, size, &len);
	if (rc)
		reply_error(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void dev_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	size_t len;
	int rc;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	rc = fs_listxattr(dev_of(req)->fs, ino, buf, size, &len);
	if (rc)
		reply_error(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void dev_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	fs_statfs(dev_of(req)->fs, &sv);
	fuse_reply_statfs(req, &sv);
}

/* --- everything that would write: EROFS --- */

static void dev_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void dev_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void dev_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void dev_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void dev_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void dev_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void dev_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void dev_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void dev_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void dev_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void dev_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void dev_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			  struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops dev_ops = {
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
    .setattr = dev_setattr,
    .mknod = dev_mknod,
    .mkdir = dev_mkdir,
    .unlink = dev_unlink,
    .rmdir = dev_unlink,
    .symlink = dev_symlink,
    .rename = dev_rename,
    .link = dev_link,
    .write = dev_write,
    .setxattr = dev_setxattr,
    .removexattr = dev_removexattr,
    .create = dev_create,
    .fallocate = dev_fallocate,
};

/* --- the session --- */

unsigned fusedev_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	n *= 2;
	return (unsigned)(n < 2 ? 2 : n > 16 ? 16 : n);
}

/* A new name at the root: drop the kernel's cached miss for it and the
 * root's cached listing. Runs on the root watch thread, never inside a
 * request, as libfuse requires. */
static void dev_on_new_root(void *ctx, const uint8_t *name, size_t len)
{
	struct fusedev *d = ctx;
	int rc;

	rc = fuse_lowlevel_notify_inval_entry(d->se, FUSE_ROOT_ID, (const char *)name, len);
	if (rc && rc != -ENOENT)
		log_debug("cannot invalidate root entry '%.*s': %s", (int)len, name, strerror(-rc));
	rc = fuse_lowlevel_notify_inval_inode(d->se, FUSE_ROOT_ID, 0, 0);
	if (rc && rc != -ENOENT)
		log_debug("cannot invalidate the root listing: %s", strerror(-rc));
}

static int session_create(struct fusedev *d, struct fuse_session **out)
{
	char opts[128];
	char *argv[4] = {"storefs", "-o", opts, NULL};
	struct fuse_args args;
	int argc = 3;

	snprintf(opts, sizeof(opts), "ro,default_permissions,fsname=storefs,subtype=storefs%s",
		 d->cfg->allow_other ? ",allow_other" : "");
	if (d->cfg->debug)
		argv[argc++] = "-d";
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	*out = fuse_session_new(&args, &dev_ops, sizeof(dev_ops), d);
	fuse_opt_free_args(&args);
	if (!*out)
		return sf_err(-EIO, "cannot create a FUSE session");
	return 0;
}

static int session_loop(struct fusedev *d)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	unsigned threads = d->cfg->threads ? d->cfg->threads : fusedev_default_threads();
	int rc;

	if (!lc)
		return sf_err(-ENOMEM, "out of memory");
	fuse_loop_cfg_set_clone_fd(lc, 1);
	fuse_loop_cfg_set_max_threads(lc, threads);
	fuse_loop_cfg_set_idle_threads(lc, threads);
	rc = fuse_session_loop_mt(d->se, lc);
	fuse_loop_cfg_destroy(lc);
	/* > 0: the signal that ended the loop. */
	if (rc < 0)
		return sf_err(rc, "the FUSE session failed: %s", strerror(-rc));
	return 0;
}

int fusedev_serve(struct fs *fs, const struct fusedev_config *cfg)
{
	struct fusedev d = {.fs = fs, .cfg = cfg};
	int rc;

	rc = session_create(&d, &d.se);
	if (rc)
		return rc;
	/* A shell starts background jobs with SIGINT ignored, and libfuse
	 * leaves ignored signals alone; stopping on SIGINT is promised. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (fuse_set_signal_handlers(d.se)) {
		rc = sf_err(-EIO, "cannot install signal handlers");
		goto out_destroy;
	}
	if (fuse_session_mount(d.se, cfg->mountpoint)) {
		rc = sf_err(-EIO, "cannot mount on '%s'", cfg->mountpoint);
		goto out_signals;
	}
	rc = fs_watch_root(fs, dev_on_new_root, &d);
	if (rc)
		log_info("new store paths will not appear until remount: %s", sf_errmsg(rc));
	log_info("mounted on '%s'", cfg->mountpoint);
	rc = session_loop(&d);
	fs_unwatch_root(fs);
	fuse_session_unmount(d.se);
out_signals:
	fuse_remove_signal_handlers(d.se);
out_destroy:
	fuse_session_destroy(d.se);
	return rc;
}
