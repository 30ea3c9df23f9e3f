/* fuse_wire.h - the FUSE protocol on the wire: decodes one raw request
 * (struct fuse_in_header and its arguments, <linux/fuse.h>) into fs_*()
 * calls and encodes the reply. Any transport that carries raw FUSE
 * messages uses it: virtio-fs carries them in virtqueue buffers (a
 * request's device-readable part holds the request, its writable part
 * receives the reply), /dev/fuse in read(2)/writev(2) buffers.
 *
 * The requests may come from an untrusted kernel (a guest): lengths are
 * checked against the header and the buffer, names must be NUL-terminated
 * inside the request, file handles are never trusted (files are found by
 * inode number; OPEN replies fh 0), every size is bounded by the reply
 * buffer. A malformed request gets an error reply (EINVAL), never a crash.
 *
 * Answers match the /dev/fuse mount (fs/fuse/): infinite entry
 * and attribute timeouts, cached misses below the root, read-only (EROFS
 * for everything that writes), ENOSYS for what a read-only store does not
 * do. One difference: a miss at the root is not cached, because these
 * transports cannot invalidate the kernel's entry when the path is
 * imported later (a virtio-fs guest then sees it on its next lookup).
 * DAX (FUSE_SETUPMAPPING) is not offered. The rules: docs/virtiofs.md. */
#ifndef STOREFS_FUSE_WIRE_H
#define STOREFS_FUSE_WIRE_H

#include "fs/fs.h"

#include <stddef.h>
#include <sys/uio.h>

/* The largest request worth reading whole: the arguments of everything we
 * answer are small; a SETXATTR value (64 KiB at most) is the largest thing
 * a kernel sends once we negotiate max_write 4 KiB. */
#define FUSE_WIRE_MAX_REQUEST (72 * 1024)

struct fuse_wire;

/* A session over `fs` (borrowed). -ENOMEM. */
int fuse_wire_new(struct fs *fs, struct fuse_wire **out);
void fuse_wire_free(struct fuse_wire *w);

/* Answers the request in `in` (`len` bytes: the header and its arguments)
 * by writing the reply into the buffers `out` (`nout` of them; the reply
 * is laid out across them in order). Returns the
 * reply's length: 0 when there is none (FORGET, BATCH_FORGET, INTERRUPT,
 * or a request too short to carry a header, or no room for a reply
 * header). Thread-safe; requests may be answered concurrently. */
size_t fuse_wire_handle(struct fuse_wire *w, const void *in, size_t len, const struct iovec *out,
			unsigned nout);

#endif
