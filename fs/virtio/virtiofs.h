/* virtiofs.h - the virtio-fs device (virtio 1.2 section 5.11 "File System
 * Device", device id 26) over vhost-user: serves a struct fs to a virtual
 * machine through QEMU's vhost-user-fs-pci.
 *
 * Queue 0 is the hiprio queue (FORGET and BATCH_FORGET, no replies);
 * queues 1..N are request queues, one thread each. Each descriptor chain
 * carries one FUSE request in its device-readable part and receives the
 * reply in its writable part (5.11.6 "Device Operation"), answered by
 * fs/fuse_wire.c like the /dev/fuse mount answers it. The device has no
 * feature bits of its own; the tag and the number of request queues are
 * QEMU's configuration (tag=, num-request-queues=). The DAX window (the
 * shared memory region, FUSE_SETUPMAPPING) is not offered. See
 * docs/virtiofs.md. */
#ifndef STOREFS_VIRTIOFS_H
#define STOREFS_VIRTIOFS_H

#include "fs/fs.h"

struct virtiofs_config {
	const char *socket; /* the vhost-user socket to create */
	unsigned threads;   /* request queues served (one thread each), >= 1 */
};

/* Serves `fs` on cfg->socket until the VM disconnects or SIGTERM/SIGINT
 * (0), or fails (a negative errno with a message). See vhost_user_serve()
 * for the socket and signal rules. */
int virtiofs_serve(struct fs *fs, const struct virtiofs_config *cfg);

#endif
