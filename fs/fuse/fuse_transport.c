/* fuse_transport.c - the /dev/fuse session: libfuse lowlevel ops that call
 * fs_*() and reply exactly once. */
#include "fs/fuse/fuse_transport.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <unistd.h>

/* "Forever": the data behind an inode number never changes. */
#define TIMEOUT		     1e9
#define MAX_BACKGROUND	     64
#define CONGESTION_THRESHOLD 48

/* FUSE passthrough (protocol 7.40, Linux 6.9). Neither libfuse 3.14's
 * headers nor Debian 12's <linux/fuse.h> (Linux 6.1) define these, so the
 * kernel ABI is spelled out here. */
struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN  _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#define PT_OP_INIT	     26		/* FUSE_INIT */
#define PT_INIT_EXT	     (1u << 30) /* fuse_init_in/out.flags: flags2 is valid */
#define PT_FLAGS2_PASSTHRU   (1u << 5)	/* FUSE_PASSTHROUGH (bit 37) in flags2 */
#define PT_FOPEN_PASSTHRU    (1u << 7)	/* FOPEN_PASSTHROUGH */
#define PT_IN_HEADER	     40		/* sizeof(struct fuse_in_header) */
#define PT_OUT_HEADER	     16		/* sizeof(struct fuse_out_header) */
/* u32 indexes into fuse_init_in / fuse_init_out / fuse_open_out. */
#define PT_INIT_FLAGS	    3
#define PT_INIT_IN_FLAGS2   4
#define PT_INIT_OUT_FLAGS2  8
#define PT_INIT_STACK_DEPTH 9
#define PT_OPEN_FLAGS	    2
#define PT_OPEN_BACKING_ID  3
/* fi->fh of a passed-through open: user-space pointers never have bit 63. */
#define PT_FH_TAG  (1ull << 63)
#define PT_BUCKETS 1024

/* One backing file per open inode: the kernel refuses a second, different
 * backing file for an inode that is already open in passthrough mode. It
 * detaches the inode's backing file before it sends the last RELEASE, so
 * closing the id at our last release cannot race with a new open. */
struct pt_backing {
	uint64_t ino;
	uint32_t id;
	unsigned opens;
	struct pt_backing *next;
};

struct fusedev {
	struct fs *fs;
	const struct fusedev_config *cfg;
	struct fuse_session *se;
	bool zero_open, zero_opendir; /* set once in init */

	/* Passthrough: devfd >= 0 when the daemon mounted by itself. */
	int devfd;
	bool force_fail;	/* STOREFS_TEST_PASSTHROUGH_FAIL */
	_Atomic bool init_seen; /* the INIT request went by */
	_Atomic uint64_t init_unique;
	_Atomic bool pt_offered;  /* the kernel offered passthrough in INIT */
	_Atomic bool pt_on;	  /* ... and the INIT reply accepted it */
	atomic_flag told_refused; /* "said so once in the log" */
	atomic_flag told_no_fd;
	pthread_mutex_t pt_mu;
	struct pt_backing *backing[PT_BUCKETS]; /* protected by pt_mu */

	char *realmp;	     /* the mountpoint's real path, or NULL */
	atomic_flag ra_done; /* read_ahead_kb was set (or tried) */
};

/* The backing id the OPEN reply being sent on this thread must carry:
 * fuse_reply_open() calls the writev hook synchronously on the same
 * thread, so this marks exactly that reply (no guessing from its bytes). */
static _Thread_local uint32_t tls_backing_id;

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
	if (d->devfd >= 0 && !atomic_load(&d->pt_offered))
		log_warn("fuse: the kernel does not offer passthrough; files are read through the "
			 "daemon");
	else if (d->devfd >= 0)
		log_info("fuse: passthrough on for blobs that are one local file");
}

/* The major:minor of the mount at `path` from mountinfo (the last one
 * mounted there); not stat(), which would be a request to ourselves. A
 * mountpoint with characters mountinfo escapes is not found. */
static int mount_devnum(const char *path, char *out, size_t size)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096], dev[32], mnt[PATH_MAX];
	int rc = -ENOENT;

	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, mnt) == 2 && !strcmp(mnt, path) &&
		    strlen(dev) < size) {
			strcpy(out, dev);
			rc = 0;
		}
	}
	fclose(fp);
	return rc;
}

static int write_number(const char *path, unsigned v)
{
	FILE *fp = fopen(path, "we");
	int rc;

	if (!fp)
		return -errno;
	rc = fprintf(fp, "%u\n", v) < 0 ? -EIO : 0;
	if (fclose(fp) && !rc)
		rc = -errno;
	return rc;
}

/* Sets the mount's readahead window, the size of sequential READs. Best
 * effort: said once (here) if it fails. */
static void set_read_ahead(const char *realmp, unsigned kb)
{
	char dev[32], path[96];
	int rc;

	if (!kb)
		return;
	rc = realmp ? mount_devnum(realmp, dev, sizeof(dev)) : -ENOENT;
	if (rc == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
		rc = write_number(path, kb);
	}
	if (rc)
		log_info("fuse: read_ahead_kb stays at the kernel's default: %s", strerror(-rc));
}

/* The INIT reply sets the readahead window to at most what the kernel
 * offered (its 128 KiB default), so it can only be raised after INIT: on
 * the first request, which the kernel sends only once INIT is done. */
static void read_ahead_once(struct fusedev *d)
{
	if (!atomic_flag_test_and_set(&d->ra_done))
		set_read_ahead(d->realmp, d->cfg->read_ahead_kb);
}

static void dev_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param ep;
	struct fs_entry e;
	int rc;

	read_ahead_once(dev_of(req));
	rc = fs_lookup(dev_of(req)->fs, parent, name, strlen(name), &e);
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
	int rc;

	read_ahead_once(dev_of(req));
	rc = fs_getattr(dev_of(req)->fs, ino, &st);
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

/* --- passthrough: the custom io hooks and backing files --- */

static uint32_t u32_at(const void *p, unsigned idx)
{
	uint32_t v;

	memcpy(&v, (const char *)p + 4 * idx, 4);
	return v;
}

static void u32_set(void *p, unsigned idx, uint32_t v)
{
	memcpy((char *)p + 4 * idx, &v, 4);
}

/* Notes whether the kernel offers passthrough in its INIT request. */
static void pt_see_request(struct fusedev *d, const void *buf, ssize_t n)
{
	const char *in = (const char *)buf + PT_IN_HEADER;
	uint64_t unique;

	if (atomic_load(&d->init_seen) || n < PT_IN_HEADER + 4 * (PT_INIT_IN_FLAGS2 + 1) ||
	    u32_at(buf, 1) != PT_OP_INIT)
		return;
	memcpy(&unique, (const char *)buf + 8, 8);
	atomic_store(&d->init_unique, unique);
	atomic_store(&d->pt_offered, (u32_at(in, PT_INIT_FLAGS) & PT_INIT_EXT) &&
					 (u32_at(in, PT_INIT_IN_FLAGS2) & PT_FLAGS2_PASSTHRU));
	atomic_store(&d->init_seen, true);
}

/* Turns passthrough on in the INIT reply, and on in an OPEN reply that
 * this thread marked. */
static void pt_patch_reply(struct fusedev *d, struct iovec *iov)
{
	uint64_t unique;
	int32_t error;
	char *out = iov[1].iov_base;

	if (iov[0].iov_len != PT_OUT_HEADER)
		return;
	memcpy(&error, (char *)iov[0].iov_base + 4, 4);
	memcpy(&unique, (char *)iov[0].iov_base + 8, 8);
	if (error)
		return;
	if (tls_backing_id && iov[1].iov_len == 16) {
		u32_set(out, PT_OPEN_FLAGS, u32_at(out, PT_OPEN_FLAGS) | PT_FOPEN_PASSTHRU);
		u32_set(out, PT_OPEN_BACKING_ID, tls_backing_id);
		return;
	}
	if (!atomic_load(&d->pt_offered) || atomic_load(&d->pt_on) ||
	    unique != atomic_load(&d->init_unique) ||
	    iov[1].iov_len < 4 * (PT_INIT_STACK_DEPTH + 1) || u32_at(out, 0) != 7)
		return;
	u32_set(out, PT_INIT_FLAGS, u32_at(out, PT_INIT_FLAGS) | PT_INIT_EXT);
	u32_set(out, PT_INIT_OUT_FLAGS2, u32_at(out, PT_INIT_OUT_FLAGS2) | PT_FLAGS2_PASSTHRU);
	u32_set(out, PT_INIT_STACK_DEPTH, 1);
	atomic_store(&d->pt_on, true);
}

static ssize_t pt_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	if (count >= 2)
		pt_patch_reply(userdata, iov);
	return writev(fd, iov, count);
}

static ssize_t pt_io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	if (n > 0)
		pt_see_request(userdata, buf, n);
	return n;
}

/* Without these two libfuse 3.14 turns splice off for a custom io. */
static ssize_t pt_io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			    unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io pt_io = {
    .writev = pt_io_writev,
    .read = pt_io_read,
    .splice_receive = pt_io_splice,
    .splice_send = pt_io_splice,
};

static struct pt_backing **pt_slot(struct fusedev *d, uint64_t ino)
{
	struct pt_backing **p = &d->backing[ino % PT_BUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* A refused backing file: the fallback is said once; refusals that will
 * not change (no privilege, no kernel support) stop further attempts. */
static int pt_refused(struct fusedev *d, int err)
{
	if (!atomic_flag_test_and_set(&d->told_refused))
		log_warn("fuse: the kernel refused a passthrough backing file (%s); those files "
			 "are read through the daemon",
			 strerror(err));
	if (err == EPERM || err == ENOTTY || err == EINVAL || err == EOPNOTSUPP)
		atomic_store(&d->pt_on, false);
	return -err;
}

/* Registers (or reuses) the backing file of `ino`. Called with pt_mu. */
static int pt_backing_get(struct fusedev *d, uint64_t ino, int fd, uint32_t *id)
{
	struct pt_backing **slot = pt_slot(d, ino), *b = *slot;
	struct pt_backing_map map = {.fd = fd};
	int rc;

	if (b) {
		b->opens++;
		*id = b->id;
		return 0;
	}
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = d->force_fail ? (errno = EPERM, -1) : ioctl(d->devfd, PT_IOC_BACKING_OPEN, &map);
	if (rc <= 0) {
		free(b);
		return pt_refused(d, rc < 0 ? errno : EPROTO);
	}
	*b = (struct pt_backing){.ino = ino, .id = (uint32_t)rc, .opens = 1};
	*slot = b;
	*id = b->id;
	return 0;
}

/* 0 and a backing id if `f` can be passed through, else a negative errno
 * (the caller serves the open itself). */
static int pt_open(struct fusedev *d, uint64_t ino, struct fs_file *f, uint32_t *id)
{
	int rc;

	if (!atomic_load(&d->pt_on))
		return -ENOTSUP;
	if (fs_file_fd(f) < 0) {
		if (!atomic_flag_test_and_set(&d->told_no_fd))
			log_info("fuse: some blobs are not one local file; those are read through "
				 "the daemon");
		return -ENOTSUP;
	}
	pthread_mutex_lock(&d->pt_mu);
	rc = pt_backing_get(d, ino, fs_file_fd(f), id);
	pthread_mutex_unlock(&d->pt_mu);
	return rc;
}

static void pt_release(struct fusedev *d, uint64_t ino)
{
	struct pt_backing **slot, *b;

	pthread_mutex_lock(&d->pt_mu);
	slot = pt_slot(d, ino);
	b = *slot;
	if (b && --b->opens == 0) {
		*slot = b->next;
		if (ioctl(d->devfd, PT_IOC_BACKING_CLOSE, &b->id) < 0)
			log_debug("cannot close backing id %u: %s", b->id, strerror(errno));
		free(b);
	}
	pthread_mutex_unlock(&d->pt_mu);
}

/* Serves an open by passthrough if possible; false: serve it normally. */
static bool open_passthrough(fuse_req_t req, fuse_ino_t ino, struct fs_file *f,
			     struct fuse_file_info *fi)
{
	struct fusedev *d = dev_of(req);
	uint32_t id = 0;
	int rc;

	if (d->devfd < 0 || pt_open(d, ino, f, &id))
		return false;
	fs_file_unref(d->fs, f); /* the kernel holds the file now */
	fs_count(d->fs, FS_COUNT_PASSTHROUGH);
	fi->fh = PT_FH_TAG | id;
	/* The kernel allows only NOFLUSH (and direct io) next to
	 * PASSTHROUGH, else the open fails with EIO; the backing file's
	 * page cache is the one used anyway. */
	fi->keep_cache = 0;
	fi->noflush = 1;
	tls_backing_id = id;
	rc = fuse_reply_open(req, fi);
	tls_backing_id = 0;
	if (rc)
		pt_release(d, ino);
	return true;
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
	fs_count(d->fs, FS_COUNT_OPEN);
	rc = fs_file_get(d->fs, ino, &f);
	if (rc)
		return reply_error(req, rc);
	if (open_passthrough(req, ino, f, fi))
		return;
	fi->fh = (uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		fs_file_unref(d->fs, f);
}

static void dev_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh & PT_FH_TAG)
		pt_release(dev_of(req), ino);
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
	/* A passed-through open should send no READ; serve one anyway. */
	struct fs_file *f = fi->fh & PT_FH_TAG ? NULL : (struct fs_file *)(uintptr_t)fi->fh;
	int rc;

	fs_count(d->fs, FS_COUNT_READ);
	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	if (f)
		return read_reply(req, f, size, off);
	/* Zero-message open: no handle, use the shared reader cache. */
	rc = fs_file_get(d->fs, ino, &f);
	if (rc)
		return reply_error(req, rc);
	read_reply(req, f, size, off);
	fs_file_unref(d->fs, f);
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

/* Backing ids still registered at the end (the kernel drops them with the
 * connection anyway). */
static void pt_free(struct fusedev *d)
{
	for (size_t i = 0; i < PT_BUCKETS; i++) {
		while (d->backing[i]) {
			struct pt_backing *b = d->backing[i];

			d->backing[i] = b->next;
			free(b);
		}
	}
}

static int session_loop(struct fusedev *d)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	unsigned threads = d->cfg->threads ? d->cfg->threads : fusedev_default_threads();
	int rc;

	if (!lc)
		return sf_err(-ENOMEM, "out of memory");
	/* Also with the passthrough custom io: libfuse clones /dev/fuse per
	 * thread and calls the hooks with each clone's fd; the backing
	 * ioctls go to the session's own fd, of the same connection. */
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

/* Mounts with mount(2) on our own /dev/fuse descriptor (custom io replaces
 * fuse_session_mount(), whose fusermount3 hands the descriptor to libfuse
 * only). Same options as libfuse's mount. Returns the descriptor or a
 * negative errno. */
static int pt_mount(struct fusedev *d)
{
	char opts[160];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=%u,group_id=%u,"
		 "default_permissions%s",
		 fd, (unsigned)getuid(), (unsigned)getgid(),
		 d->cfg->allow_other ? ",allow_other" : "");
	if (mount("storefs", d->cfg->mountpoint, "fuse.storefs", MS_RDONLY | MS_NOSUID | MS_NODEV,
		  opts) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* Mounts: by itself with passthrough hooks in passthrough mode (falling
 * back to libfuse's mount when that is not allowed), else via libfuse. */
static int session_mount(struct fusedev *d)
{
	int fd, rc;

	if (d->cfg->open_mode == FUSEDEV_OPEN_PASSTHROUGH) {
		fd = pt_mount(d);
		if (fd >= 0) {
			rc = fuse_session_custom_io(d->se, &pt_io, fd);
			if (rc == 0) {
				d->devfd = fd;
				return 0;
			}
			umount2(d->cfg->mountpoint, MNT_DETACH);
			close(fd);
			fd = rc;
		}
		log_warn("fuse: cannot mount for passthrough (%s); files are read through the "
			 "daemon",
			 strerror(-fd));
	}
	if (fuse_session_mount(d->se, d->cfg->mountpoint))
		return sf_err(-EIO, "cannot mount on '%s'", d->cfg->mountpoint);
	return 0;
}

/* Our own mount: unmount unless it is gone already (then the device
 * reports an error, as libfuse checks too). */
static void session_unmount(struct fusedev *d)
{
	struct pollfd p = {.fd = d->devfd, .events = POLLIN};

	if (d->devfd < 0)
		return fuse_session_unmount(d->se);
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
		return;
	if (umount2(d->cfg->mountpoint, MNT_DETACH) < 0)
		log_warn("cannot unmount '%s': %s", d->cfg->mountpoint, strerror(errno));
}

int fusedev_serve(struct fs *fs, const struct fusedev_config *cfg)
{
	struct fusedev d = {.fs = fs,
			    .cfg = cfg,
			    .devfd = -1,
			    .ra_done = ATOMIC_FLAG_INIT,
			    .told_refused = ATOMIC_FLAG_INIT,
			    .told_no_fd = ATOMIC_FLAG_INIT};
	int rc;

	/* Now: after mounting, resolving the path would ask the mount. */
	d.realmp = realpath(cfg->mountpoint, NULL);

	d.force_fail = getenv("STOREFS_TEST_PASSTHROUGH_FAIL") != NULL;
	pthread_mutex_init(&d.pt_mu, NULL);
	rc = session_create(&d, &d.se);
	if (rc)
		goto out_free;
	/* A shell starts background jobs with SIGINT ignored, and libfuse
	 * leaves ignored signals alone; stopping on SIGINT is promised. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (fuse_set_signal_handlers(d.se)) {
		rc = sf_err(-EIO, "cannot install signal handlers");
		goto out_destroy;
	}
	rc = session_mount(&d);
	if (rc)
		goto out_signals;
	rc = fs_watch_root(fs, dev_on_new_root, &d);
	if (rc)
		log_info("new store paths will not appear until remount: %s", sf_errmsg(rc));
	log_info("mounted on '%s'", cfg->mountpoint);
	rc = session_loop(&d);
	fs_unwatch_root(fs);
	session_unmount(&d);
out_signals:
	fuse_remove_signal_handlers(d.se);
out_destroy:
	fuse_session_destroy(d.se);
	pt_free(&d);
out_free:
	pthread_mutex_destroy(&d.pt_mu);
	free(d.realmp);
	return rc;
}
