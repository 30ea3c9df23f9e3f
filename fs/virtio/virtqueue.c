/* virtqueue.c - split virtqueue parsing with every guest value checked
 * (virtio 1.2 section 2.7; see virtqueue.h and docs/virtiofs.md). */
#include "fs/virtio/virtqueue.h"

#include "common/err.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

/* --- guest memory --- */

static const struct vq_region *region_of(const struct vq_mem *m, bool by_uva, uint64_t addr)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vq_region *r = &m->r[i];
		uint64_t start = by_uva ? r->uva : r->gpa;

		if (addr >= start && addr - start < r->size)
			return r;
	}
	return NULL;
}

static void *range_ptr(const struct vq_mem *m, bool by_uva, uint64_t addr, uint64_t len)
{
	const struct vq_region *r = region_of(m, by_uva, addr);
	uint64_t off;

	if (!r)
		return NULL;
	off = addr - (by_uva ? r->uva : r->gpa);
	if (len > r->size - off)
		return NULL;
	return r->host + off;
}

void *vq_mem_uva(const struct vq_mem *m, uint64_t uva, uint64_t len)
{
	return range_ptr(m, true, uva, len);
}

void *vq_mem_gpa(const struct vq_mem *m, uint64_t gpa, uint64_t len)
{
	return range_ptr(m, false, gpa, len);
}

int vq_mem_gpa_iov(const struct vq_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned *n, unsigned max)
{
	if (len > UINT64_MAX - gpa)
		return -EFAULT;
	while (len) {
		const struct vq_region *r = region_of(m, false, gpa);
		uint64_t off, take;

		if (!r)
			return -EFAULT;
		if (*n >= max)
			return -E2BIG;
		off = gpa - r->gpa;
		take = r->size - off < len ? r->size - off : len;
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = (size_t)take;
		(*n)++;
		gpa += take;
		len -= take;
	}
	return 0;
}

/* --- setup --- */

static bool aligned(const void *p, uintptr_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

int vq_init(struct virtqueue *vq, const struct vq_mem *m, unsigned num, uint64_t desc,
	    uint64_t avail_ring, uint64_t used_ring, bool indirect, uint16_t avail)
{
	struct virtqueue q = {.num = num, .indirect = indirect, .avail = avail};

	if (num == 0 || num > VQ_MAX_SIZE || (num & (num - 1)))
		return sf_err(-EINVAL, "queue size %u is not a power of 2 up to %u", num,
			      VQ_MAX_SIZE);
	/* Sizes from 2.7 "Split Virtqueues"; the avail ring's used_event and
	 * the used ring's avail_event are included (2 bytes each). */
	q.desc = vq_mem_uva(m, desc, 16ull * num);
	q.avail_ring = vq_mem_uva(m, avail_ring, 6 + 2ull * num);
	q.used_ring = vq_mem_uva(m, used_ring, 6 + 8ull * num);
	if (!q.desc || !q.avail_ring || !q.used_ring)
		return sf_err(-EFAULT, "a part of the ring is outside guest memory");
	if (!aligned(q.desc, VRING_DESC_ALIGN_SIZE) ||
	    !aligned(q.avail_ring, VRING_AVAIL_ALIGN_SIZE) ||
	    !aligned(q.used_ring, VRING_USED_ALIGN_SIZE))
		return sf_err(-EINVAL, "a part of the ring is misaligned");
	q.used = le16toh(__atomic_load_n(&q.used_ring->idx, __ATOMIC_ACQUIRE));
	*vq = q;
	return 0;
}

/* --- taking chains --- */

/* A descriptor as read once from guest memory (2.7.5). */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static struct desc desc_read(const struct vring_desc *d)
{
	return (struct desc){
	    .addr = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED)),
	    .len = le32toh(__atomic_load_n(&d->len, __ATOMIC_RELAXED)),
	    .flags = le16toh(__atomic_load_n(&d->flags, __ATOMIC_RELAXED)),
	    .next = le16toh(__atomic_load_n(&d->next, __ATOMIC_RELAXED)),
	};
}

/* The table a chain is walked in: the ring's, or an indirect one. */
struct walk {
	const struct vring_desc *table;
	unsigned size; /* entries */
	unsigned seen; /* descriptors visited in this table */
	bool indirect; /* walking an indirect table */
};

static int chain_refuse(const char *why)
{
	return sf_err(-EBADMSG, "refused a descriptor chain: %s", why);
}

/* Switches the walk to the indirect table `d` describes (2.7.5.3.1: only
 * with the feature, never nested, never combined with NEXT; like QEMU and
 * Linux we take it only as a chain's sole descriptor). */
static int walk_indirect(const struct virtqueue *vq, const struct vq_mem *m, struct walk *w,
			 const struct desc *d)
{
	const struct vring_desc *t;

	if (!vq->indirect)
		return chain_refuse("an indirect descriptor without the feature");
	if (w->indirect || (d->flags & VRING_DESC_F_NEXT) || w->seen != 1)
		return chain_refuse("an indirect descriptor inside a chain");
	if (d->len == 0 || d->len % sizeof(struct vring_desc) ||
	    d->len / sizeof(struct vring_desc) > VQ_MAX_SIZE)
		return chain_refuse("an indirect table of a bad length");
	t = vq_mem_gpa(m, d->addr, d->len);
	if (!t || !aligned(t, VRING_DESC_ALIGN_SIZE))
		return chain_refuse("an indirect table outside guest memory or misaligned");
	*w =
	    (struct walk){.table = t, .size = d->len / sizeof(struct vring_desc), .indirect = true};
	return 0;
}

/* Adds the buffer of `d` to the chain: readable ones must come first. */
static int chain_add(const struct vq_mem *m, struct vq_chain *c, const struct desc *d)
{
	unsigned n = c->nread + c->nwrite, before = n;
	int rc;

	if (!(d->flags & VRING_DESC_F_WRITE) && c->nwrite)
		return chain_refuse("a device-readable buffer after a writable one");
	rc = vq_mem_gpa_iov(m, d->addr, d->len, c->iov, &n, VQ_MAX_IOV);
	if (rc == -EFAULT)
		return chain_refuse("a buffer outside guest memory");
	if (rc)
		return chain_refuse("too many buffers");
	if (d->flags & VRING_DESC_F_WRITE) {
		c->nwrite += n - before;
		c->write_len += d->len;
	} else {
		c->nread += n - before;
		c->read_len += d->len;
	}
	return 0;
}

/* Walks the chain from `head`. Every table holds `size` entries, so a
 * chain that visits more descriptors than that loops (2.7.5.1: a chain
 * is never longer than the queue size). */
static int chain_walk(const struct virtqueue *vq, const struct vq_mem *m, struct vq_chain *c)
{
	struct walk w = {.table = vq->desc, .size = vq->num};
	unsigned i = c->head;
	struct desc d;
	int rc;

	for (;;) {
		if (++w.seen > w.size)
			return chain_refuse("a loop");
		d = desc_read(&w.table[i]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			rc = walk_indirect(vq, m, &w, &d);
			if (rc)
				return rc;
			i = 0;
			continue;
		}
		rc = chain_add(m, c, &d);
		if (rc)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= w.size)
			return chain_refuse("a next index beyond the table");
	}
}

static int ring_broken(struct virtqueue *vq, const char *why)
{
	vq->broken = true;
	return sf_err(-EPROTO, "the virtqueue is broken: %s", why);
}

int vq_pop(struct virtqueue *vq, const struct vq_mem *m, struct vq_chain *c)
{
	uint16_t idx, head;

	if (vq->broken)
		return -EPROTO;
	/* Acquire: the driver wrote the entries before the index. */
	idx = le16toh(__atomic_load_n(&vq->avail_ring->idx, __ATOMIC_ACQUIRE));
	if (idx == vq->avail)
		return 0;
	if ((uint16_t)(idx - vq->avail) > vq->num)
		return ring_broken(vq, "the available index ran ahead");
	head = le16toh(
	    __atomic_load_n(&vq->avail_ring->ring[vq->avail & (vq->num - 1)], __ATOMIC_RELAXED));
	if (head >= vq->num)
		return ring_broken(vq, "a chain head beyond the table");
	vq->avail++;
	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	return chain_walk(vq, m, c) ? -EBADMSG : 1;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vq->used_ring->ring[vq->used & (vq->num - 1)];

	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
	vq->used++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(&vq->used_ring->idx, htole16(vq->used), __ATOMIC_RELEASE);
}

bool vq_should_notify(const struct virtqueue *vq)
{
	/* A full barrier between publishing the used index and reading the
	 * driver's flags, or an interrupt can be lost (2.7.7). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(le16toh(__atomic_load_n(&vq->avail_ring->flags, __ATOMIC_RELAXED)) &
		 VRING_AVAIL_F_NO_INTERRUPT);
}
