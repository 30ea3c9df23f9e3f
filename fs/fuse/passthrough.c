/* passthrough.c - FUSE passthrough (protocol 7.40, Linux 6.9) on libfuse
 * 3.14, which knows nothing of it: the daemon mounts /dev/fuse itself and,
 * through fuse_session_custom_io(), watches the INIT request and patches
 * the INIT reply and the OPEN replies of passed-through files on their way
 * to the kernel, registering each blob file as a backing file by ioctl.
 * The same hooks set FUSE_PARALLEL_DIROPS in the INIT reply in every open
 * mode (fusedev_hook_init()), which libfuse 3.14 drops.
 *
 * Delete this file when storefs can require libfuse >= 3.17 (Debian 13
 * ships 3.17): there fuse_passthrough_open()/fuse_passthrough_close(), the
 * FUSE_CAP_PASSTHROUGH capability and fuse_file_info.backing_id do the
 * same through the normal session, on a mount made by fusermount3. */
#include "fs/fuse/fusedev_internal.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <unistd.h>

/* Neither libfuse 3.14's headers nor Debian 12's <linux/fuse.h> (Linux 6.1)
 * define these, so the kernel ABI is spelled out here. */
struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN	_IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE	_IOW(229, 2, uint32_t)
#define PT_OP_INIT		26	   /* FUSE_INIT */
#define PT_INIT_EXT		(1u << 30) /* fuse_init_in/out.flags: flags2 is valid */
#define PT_INIT_PARALLEL_DIROPS (1u << 18) /* FUSE_PARALLEL_DIROPS */
#define PT_FLAGS2_PASSTHRU	(1u << 5)  /* FUSE_PASSTHROUGH (bit 37) in flags2 */
#define PT_FOPEN_PASSTHRU	(1u << 7)  /* FOPEN_PASSTHROUGH */
#define PT_IN_HEADER		40	   /* sizeof(struct fuse_in_header) */
#define PT_OUT_HEADER		16	   /* sizeof(struct fuse_out_header) */
/* u32 indexes into fuse_init_in / fuse_init_out / fuse_open_out. */
#define PT_INIT_FLAGS	    3
#define PT_INIT_IN_FLAGS2   4
#define PT_INIT_OUT_FLAGS2  8
#define PT_INIT_STACK_DEPTH 9
#define PT_OPEN_FLAGS	    2
#define PT_OPEN_BACKING_ID  3
/* fi->fh of a passed-through open: user-space pointers never have bit 63. */
#define PT_FH_TAG (1ull << 63)

/* One backing file per open inode: the kernel refuses a second, different
 * backing file for an inode that is already open in passthrough mode. It
 * detaches the inode's backing file before it sends the last RELEASE, so
 * closing the id at our last release cannot race with a new open. */
struct fusedev_pt_backing {
	uint64_t ino;
	uint32_t id;
	unsigned opens;
	struct fusedev_pt_backing *next;
};

/* The backing id the OPEN reply being sent on this thread must carry:
 * fuse_reply_open() calls the writev hook synchronously on the same
 * thread, so this marks exactly that reply (no guessing from its bytes). */
static _Thread_local uint32_t tls_backing_id;

void fusedev_pt_init(struct fusedev_pt *pt)
{
	*pt = (struct fusedev_pt){
	    .devfd = -1, .told_refused = ATOMIC_FLAG_INIT, .told_no_fd = ATOMIC_FLAG_INIT};
	pt->force_fail = getenv("STOREFS_TEST_PASSTHROUGH_FAIL") != NULL;
	pthread_mutex_init(&pt->mu, NULL);
}

void fusedev_pt_release_all(struct fusedev_pt *pt)
{
	for (size_t i = 0; i < FUSEDEV_PT_BUCKETS; i++) {
		while (pt->backing[i]) {
			struct fusedev_pt_backing *b = pt->backing[i];

			pt->backing[i] = b->next;
			free(b);
		}
	}
	pthread_mutex_destroy(&pt->mu);
}

void fusedev_pt_log_init(struct fusedev *dev)
{
	if (dev->pt.devfd < 0)
		return;
	if (!atomic_load(&dev->pt.offered))
		log_warn("fuse: the kernel does not offer passthrough; files are read through the "
			 "daemon");
	else
		log_info("fuse: passthrough on for blobs that are one local file");
}

bool fusedev_pt_is_handle(uint64_t fh)
{
	return fh & PT_FH_TAG;
}

/* --- the custom io hooks: INIT and OPEN on the wire --- */

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

/* Notes what the kernel offers in its INIT request: passthrough (used only
 * on our own mount) and parallel directory operations. */
static void see_request(struct fusedev_pt *pt, const void *buf, ssize_t n)
{
	const char *in = (const char *)buf + PT_IN_HEADER;
	uint64_t unique;

	if (atomic_load(&pt->init_seen) || n < PT_IN_HEADER + 4 * (PT_INIT_IN_FLAGS2 + 1) ||
	    u32_at(buf, 1) != PT_OP_INIT)
		return;
	memcpy(&unique, (const char *)buf + 8, 8);
	atomic_store(&pt->init_unique, unique);
	atomic_store(&pt->offered, pt->devfd >= 0 && (u32_at(in, PT_INIT_FLAGS) & PT_INIT_EXT) &&
				       (u32_at(in, PT_INIT_IN_FLAGS2) & PT_FLAGS2_PASSTHRU));
	atomic_store(&pt->dirops_offered, u32_at(in, PT_INIT_FLAGS) & PT_INIT_PARALLEL_DIROPS);
	atomic_store(&pt->init_seen, true);
}

/* libfuse 3.14 never puts FUSE_PARALLEL_DIROPS into its INIT reply (fixed
 * in 3.17.1), so the kernel would serialize every lookup in a directory:
 * one slow substituter fetch at the root would stall all lookups there. */
static void patch_init_reply(struct fusedev_pt *pt, char *out, size_t len)
{
	uint32_t flags = u32_at(out, PT_INIT_FLAGS);

	if (atomic_load(&pt->dirops_offered))
		flags |= PT_INIT_PARALLEL_DIROPS;
	if (atomic_load(&pt->offered) && len >= 4 * (PT_INIT_STACK_DEPTH + 1)) {
		flags |= PT_INIT_EXT;
		u32_set(out, PT_INIT_OUT_FLAGS2,
			u32_at(out, PT_INIT_OUT_FLAGS2) | PT_FLAGS2_PASSTHRU);
		u32_set(out, PT_INIT_STACK_DEPTH, 1);
		atomic_store(&pt->on, true);
	}
	log_debug("fuse: INIT reply flags 0x%x, patched to 0x%x", u32_at(out, PT_INIT_FLAGS),
		  flags);
	u32_set(out, PT_INIT_FLAGS, flags);
}

/* Patches the INIT reply (patch_init_reply()), and turns passthrough on in
 * an OPEN reply that this thread marked. */
static void patch_reply(struct fusedev_pt *pt, struct iovec *iov)
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
	if (!atomic_load(&pt->init_seen) || atomic_load(&pt->init_patched) ||
	    unique != atomic_load(&pt->init_unique) || iov[1].iov_len < 4 * (PT_INIT_FLAGS + 1) ||
	    u32_at(out, 0) != 7)
		return;
	atomic_store(&pt->init_patched, true);
	patch_init_reply(pt, out, iov[1].iov_len);
}

/* libfuse passes the session's userdata, our struct fusedev. */
static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fusedev *dev = userdata;

	if (count >= 2)
		patch_reply(&dev->pt, iov);
	return writev(fd, iov, count);
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fusedev *dev = userdata;
	ssize_t n = read(fd, buf, len);

	if (n > 0)
		see_request(&dev->pt, buf, n);
	return n;
}

/* Without these two libfuse 3.14 turns splice off for a custom io. */
static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			 unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io custom_io = {
    .writev = io_writev,
    .read = io_read,
    .splice_receive = io_splice,
    .splice_send = io_splice,
};

/* --- the mount --- */

/* mount(2) on our own /dev/fuse descriptor (custom io replaces
 * fuse_session_mount(), whose fusermount3 hands the descriptor to libfuse
 * only), with libfuse's options. The descriptor or a negative errno. */
static int mount_own(const struct fusedev_config *cfg)
{
	char opts[160];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=%u,group_id=%u,"
		 "default_permissions%s",
		 fd, (unsigned)getuid(), (unsigned)getgid(),
		 cfg->allow_other ? ",allow_other" : "");
	if (mount("storefs", cfg->mountpoint, "fuse.storefs", MS_RDONLY | MS_NOSUID | MS_NODEV,
		  opts) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

int fusedev_pt_mount(struct fusedev *dev)
{
	int fd = mount_own(dev->cfg), rc;

	if (fd < 0)
		return fd;
	rc = fuse_session_custom_io(dev->se, &custom_io, fd);
	if (rc == 0) {
		dev->pt.devfd = fd;
		return 0;
	}
	/* Best effort: the mount was never served, and the caller mounts
	 * again through libfuse or fails with the error below. */
	umount2(dev->cfg->mountpoint, MNT_DETACH);
	close(fd);
	return rc;
}

int fusedev_hook_init(struct fusedev *dev)
{
	return fuse_session_custom_io(dev->se, &custom_io, fuse_session_fd(dev->se)) ? -EIO : 0;
}

/* --- backing files --- */

static struct fusedev_pt_backing **slot_of(struct fusedev_pt *pt, uint64_t ino)
{
	struct fusedev_pt_backing **p = &pt->backing[ino % FUSEDEV_PT_BUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* A refused backing file: the fallback is said once; refusals that will
 * not change (no privilege, no kernel support) stop further attempts. */
static int refused(struct fusedev_pt *pt, int err)
{
	if (!atomic_flag_test_and_set(&pt->told_refused))
		log_warn("fuse: the kernel refused a passthrough backing file (%s); those files "
			 "are read through the daemon",
			 strerror(err));
	if (err == EPERM || err == ENOTTY || err == EINVAL || err == EOPNOTSUPP)
		atomic_store(&pt->on, false);
	return -err;
}

/* Registers (or reuses) the backing file of `ino`. Called with pt->mu. */
static int backing_get(struct fusedev_pt *pt, uint64_t ino, int fd, uint32_t *id)
{
	struct fusedev_pt_backing **slot = slot_of(pt, ino), *b = *slot;
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
	rc = pt->force_fail ? (errno = EPERM, -1) : ioctl(pt->devfd, PT_IOC_BACKING_OPEN, &map);
	if (rc <= 0) {
		free(b);
		return refused(pt, rc < 0 ? errno : EPROTO);
	}
	*b = (struct fusedev_pt_backing){.ino = ino, .id = (uint32_t)rc, .opens = 1};
	*slot = b;
	*id = b->id;
	return 0;
}

/* 0 and a backing id if `f` can be passed through, else a negative errno
 * (the caller serves the open itself). */
static int backing_for(struct fusedev_pt *pt, uint64_t ino, struct fs_file *f, uint32_t *id)
{
	int rc;

	if (!atomic_load(&pt->on))
		return -ENOTSUP;
	if (fs_file_fd(f) < 0) {
		if (!atomic_flag_test_and_set(&pt->told_no_fd))
			log_info("fuse: some blobs are not one local file; those are read through "
				 "the daemon");
		return -ENOTSUP;
	}
	pthread_mutex_lock(&pt->mu);
	rc = backing_get(pt, ino, fs_file_fd(f), id);
	pthread_mutex_unlock(&pt->mu);
	return rc;
}

void fusedev_pt_release(struct fusedev *dev, fuse_ino_t ino)
{
	struct fusedev_pt *pt = &dev->pt;
	struct fusedev_pt_backing **slot, *b;

	pthread_mutex_lock(&pt->mu);
	slot = slot_of(pt, ino);
	b = *slot;
	if (b && --b->opens == 0) {
		*slot = b->next;
		/* Only logged: the kernel drops the id with the connection. */
		if (ioctl(pt->devfd, PT_IOC_BACKING_CLOSE, &b->id) < 0)
			log_debug("cannot close backing id %u: %s", b->id, strerror(errno));
		free(b);
	}
	pthread_mutex_unlock(&pt->mu);
}

bool fusedev_pt_open(fuse_req_t req, fuse_ino_t ino, struct fs_file *f, struct fuse_file_info *fi)
{
	struct fusedev *dev = fuse_req_userdata(req);
	uint32_t id = 0;
	int rc;

	if (dev->pt.devfd < 0 || backing_for(&dev->pt, ino, f, &id))
		return false;
	fs_file_unref(dev->fs, f); /* the kernel holds the file now */
	fs_count(dev->fs, FS_COUNT_PASSTHROUGH);
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
		fusedev_pt_release(dev, ino);
	return true;
}
