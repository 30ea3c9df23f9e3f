/* vhost_user.h - the back-end side of the vhost-user protocol: a unix
 * socket a front-end (QEMU) connects to, its messages, the guest memory
 * table, the vrings and their kick/call eventfds, and one thread per
 * started virtqueue. Device-neutral: a device (fs/virtio/virtiofs.c)
 * supplies the number of queues and a function that serves one
 * descriptor chain.
 *
 * Implements from QEMU's docs/interop/vhost-user.rst: "Message
 * Specification" (header, payloads), "Communication" (which requests have
 * replies, fds in ancillary data), "Ring states" (stopped / started /
 * enabled), "Multiple queue support", "Memory access" (regions, guest and
 * user addresses) and REPLY_ACK; the requests GET/SET_FEATURES,
 * GET/SET_PROTOCOL_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE,
 * SET_VRING_NUM/ADDR/BASE, GET_VRING_BASE, SET_VRING_KICK/CALL/ERR,
 * GET_QUEUE_NUM, SET_VRING_ENABLE; and "Backend program conventions"
 * (end on SIGTERM). Not implemented: migration logging, postcopy,
 * IOMMU, in-band notifications, inflight tracking, the back-end request
 * channel, config space, packed rings. The rules: docs/virtiofs.md.
 *
 * Offered virtio features: VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC
 * and the device's own. Protocol features: MQ, REPLY_ACK. */
#ifndef STOREFS_VHOST_USER_H
#define STOREFS_VHOST_USER_H

#include "fs/virtio/virtqueue.h"

#include <stddef.h>
#include <stdint.h>

/* The most queues a message can name (the index field is 8 bits). */
#define VHOST_USER_MAX_QUEUES 256

struct vhost_user_device {
	unsigned queues;   /* virtqueues the device serves, 1..VHOST_USER_MAX_QUEUES */
	uint64_t features; /* device-specific virtio feature bits offered */
	size_t scratch;	   /* bytes of scratch memory each queue thread gets */
	/* Serves one chain of queue `q`, on that queue's thread (queues run
	 * concurrently; `scratch` belongs to the queue). Returns the number
	 * of bytes written into the chain's writable buffers. */
	uint32_t (*handle)(void *ctx, unsigned q, const struct vq_chain *c, void *scratch);
	void *ctx;
};

/* Creates the unix socket `path` (bound under a temporary name and renamed
 * into place, so it appears only once it accepts connections; a stale
 * socket there is replaced, a live one is -EADDRINUSE), accepts one
 * front-end and serves it until it disconnects, or until SIGTERM or SIGINT
 * arrives (it is not waited for then). Removes `path` at the end.
 *
 * Returns 0 in those cases, or a negative errno with a message: the socket
 * cannot be created, or the front-end broke the protocol (the connection
 * is closed at once; a misbehaving guest only gets its chains refused).
 *
 * Blocks SIGTERM and SIGINT in the calling thread (and so in the threads
 * it starts) and takes them through a signalfd: call it before other
 * threads exist, or block those signals in them too. */
int vhost_user_serve(const char *path, const struct vhost_user_device *dev);

#endif
