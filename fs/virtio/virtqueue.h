/* virtqueue.h - the split virtqueue, read from the device side, and the
 * translation of guest addresses through the vhost-user memory table.
 *
 * Implements virtio 1.2 section 2.7 "Split Virtqueues": 2.7.5 "The
 * Virtqueue Descriptor Table" (chains, device-readable before
 * device-writable), 2.7.5.3 "Indirect Descriptors", 2.7.6 "The Virtqueue
 * Available Ring", 2.7.8 "The Virtqueue Used Ring" and 2.7.7 "Used Buffer
 * Notification Suppression" (without VIRTIO_RING_F_EVENT_IDX, which we do
 * not offer); and the address rules of QEMU's docs/interop/vhost-user.rst
 * "Memory access". The rules, in our words: docs/virtiofs.md.
 *
 * Everything a guest wrote is distrusted: every descriptor is read once
 * into a local copy before it is checked, every buffer must lie inside
 * guest memory, chains are bounded (no loops), indirect tables are checked
 * like the ring. A bad chain is refused (its head can still be returned
 * with zero length); a broken ring (a head out of range, an available
 * index that ran ahead by more than the queue size) stops the queue.
 *
 * Not thread-safe: one thread owns a virtqueue; the memory table must not
 * change while it is used. */
#ifndef STOREFS_VIRTQUEUE_H
#define STOREFS_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VQ_MAX_REGIONS 8     /* VhostUserMemory's region array */
#define VQ_MAX_SIZE    32768 /* the largest split queue size */
/* Buffers one chain may describe (a region boundary splits one). More
 * than Linux's virtio-fs ever uses for a request (about a queue's worth
 * of pages) and bounded so that a chain fits a fixed array. */
#define VQ_MAX_IOV 1024

/* One piece of guest memory as the front-end shared it. */
struct vq_region {
	uint64_t gpa;  /* guest physical address of the start */
	uint64_t uva;  /* the front-end's (QEMU's) virtual address of it */
	uint64_t size; /* bytes */
	uint8_t *host; /* our mapping of the start */
};

struct vq_mem {
	unsigned n;
	struct vq_region r[VQ_MAX_REGIONS];
};

/* Our pointer to front-end address range [uva, uva + len), which must lie
 * in one region; NULL otherwise (also on overflow). */
void *vq_mem_uva(const struct vq_mem *m, uint64_t uva, uint64_t len);

/* Our pointer to guest range [gpa, gpa + len) if it lies in one region,
 * else NULL. */
void *vq_mem_gpa(const struct vq_mem *m, uint64_t gpa, uint64_t len);

/* Appends to iov[*n..max) the pieces of guest range [gpa, gpa + len),
 * split where regions meet. 0; -EFAULT if a byte is outside guest memory;
 * -E2BIG if more than max pieces are needed. A zero length adds nothing. */
int vq_mem_gpa_iov(const struct vq_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned *n, unsigned max);

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtqueue {
	unsigned num;	/* queue size: a power of 2, 1..VQ_MAX_SIZE */
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool broken;	/* the ring broke a rule: nothing more is read */
	uint16_t avail; /* the next available ring entry to take */
	uint16_t used;	/* the used index published last */
	struct vring_desc *desc;
	struct vring_avail *avail_ring;
	struct vring_used *used_ring;
};

/* Points `vq` at its three parts, given as front-end addresses (as
 * VHOST_USER_SET_VRING_ADDR sends them), after checking the size, the
 * alignments and that each part lies in guest memory; reads the used
 * index the ring holds and starts taking buffers at `avail`. -EINVAL (bad
 * size or alignment) or -EFAULT (outside guest memory), with a message. */
int vq_init(struct virtqueue *vq, const struct vq_mem *m, unsigned num, uint64_t desc,
	    uint64_t avail_ring, uint64_t used_ring, bool indirect, uint16_t avail);

/* One descriptor chain: its head and its buffers, the device-readable
 * ones (the request) first, then the device-writable ones (the reply). */
struct vq_chain {
	uint16_t head;
	unsigned nread, nwrite; /* iov[0..nread), iov[nread..nread+nwrite) */
	size_t read_len, write_len;
	struct iovec iov[VQ_MAX_IOV];
};

/* Takes the next available chain.
 *   1        *c holds it; return it with vq_push()
 *   0        nothing is available
 *   -EBADMSG the chain breaks a rule (outside guest memory, a loop, too
 *            long, writable before readable, a bad indirect table): c->head
 *            is set and the chain must be returned with vq_push(.., 0)
 *   -EPROTO  the ring itself is broken (vq->broken is now set): stop
 * A message says what was wrong with a refused chain or ring. */
int vq_pop(struct virtqueue *vq, const struct vq_mem *m, struct vq_chain *c);

/* Returns chain `head` to the driver with `len` bytes written into its
 * writable buffers, and publishes it. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/* Whether the driver wants an interrupt for what was pushed (it did not
 * set VRING_AVAIL_F_NO_INTERRUPT). Call after vq_push(). */
bool vq_should_notify(const struct virtqueue *vq);

#endif
