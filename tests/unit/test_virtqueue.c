/* test_virtqueue.c - the split virtqueue parser against crafted rings: a
 * hostile guest (buffers outside its memory, loops, bad indirect tables,
 * a runaway available index) is refused without a crash. */
#include "harness.h"

#include "fs/virtio/virtqueue.h"

#include <endian.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>

#define GPA	  0x100000ull
#define UVA	  0x7f0000000000ull
#define MEMSIZE	  0x10000u
#define NUM	  8u
#define DESC_OFF  0x0
#define AVAIL_OFF 0x400
#define USED_OFF  0x800
#define DATA_OFF  0x1000

/* Guest memory: one region; rings at fixed offsets. */
struct guest {
	uint8_t *mem;
	struct vq_mem m;
	struct virtqueue vq;
	struct vq_chain *c;
};

static int guest_new(struct guest *g, bool indirect)
{
	memset(g, 0, sizeof(*g));
	g->mem = aligned_alloc(4096, MEMSIZE);
	g->c = malloc(sizeof(*g->c));
	if (!g->mem || !g->c)
		return -ENOMEM;
	memset(g->mem, 0, MEMSIZE);
	g->m.n = 1;
	g->m.r[0] = (struct vq_region){.gpa = GPA, .uva = UVA, .size = MEMSIZE, .host = g->mem};
	return vq_init(&g->vq, &g->m, NUM, UVA + DESC_OFF, UVA + AVAIL_OFF, UVA + USED_OFF,
		       indirect, 0);
}

static void guest_free(struct guest *g)
{
	free(g->mem);
	free(g->c);
}

static struct vring_desc *desc_at(struct guest *g, uint64_t off, unsigned i)
{
	return (struct vring_desc *)(g->mem + off) + i;
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

static struct vring_avail *avail(struct guest *g)
{
	return (struct vring_avail *)(g->mem + AVAIL_OFF);
}

static struct vring_used *used(struct guest *g)
{
	return (struct vring_used *)(g->mem + USED_OFF);
}

/* Makes chain `head` available. */
static void offer(struct guest *g, uint16_t head)
{
	uint16_t idx = le16toh(avail(g)->idx);

	avail(g)->ring[idx % NUM] = htole16(head);
	avail(g)->idx = htole16((uint16_t)(idx + 1));
}

/* A well-formed request: 40 readable bytes, then 100 writable in two. */
static void good_chain(struct guest *g, uint16_t head)
{
	set_desc(desc_at(g, DESC_OFF, head), GPA + DATA_OFF, 40, VRING_DESC_F_NEXT, 5);
	set_desc(desc_at(g, DESC_OFF, 5), GPA + DATA_OFF + 64, 60,
		 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 6);
	set_desc(desc_at(g, DESC_OFF, 6), GPA + DATA_OFF + 128, 40, VRING_DESC_F_WRITE, 0);
}

TEST(virtqueue_good_chain_and_used_ring)
{
	struct guest g;

	CHECK_OK(guest_new(&g, false));
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 0);
	good_chain(&g, 2);
	offer(&g, 2);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 1);
	CHECK_EQ(g.c->head, 2);
	CHECK_EQ(g.c->nread, 1);
	CHECK_EQ(g.c->nwrite, 2);
	CHECK_EQ(g.c->read_len, 40);
	CHECK_EQ(g.c->write_len, 100);
	CHECK(g.c->iov[0].iov_base == g.mem + DATA_OFF);
	CHECK(g.c->iov[2].iov_base == g.mem + DATA_OFF + 128);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 0);
	vq_push(&g.vq, 2, 16);
	CHECK_EQ(le16toh(used(&g)->idx), 1);
	CHECK_EQ(le32toh(used(&g)->ring[0].id), 2);
	CHECK_EQ(le32toh(used(&g)->ring[0].len), 16);
	CHECK(vq_should_notify(&g.vq));
	avail(&g)->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	CHECK(!vq_should_notify(&g.vq));
	guest_free(&g);
}

TEST(virtqueue_index_wraps)
{
	struct guest g;

	CHECK_OK(guest_new(&g, false));
	/* Start near the 16-bit wrap, as after a long-running guest. */
	g.vq.avail = 65534;
	avail(&g)->idx = htole16(65534);
	good_chain(&g, 1);
	for (int i = 0; i < 4; i++) {
		offer(&g, 1);
		CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 1);
		vq_push(&g.vq, 1, 0);
	}
	CHECK_EQ(g.vq.avail, 2);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 0);
	guest_free(&g);
}

/* Each of these chains is refused, returned with its head, and the queue
 * goes on with the next chain. */
static void expect_refused(struct guest *g, uint16_t head)
{
	offer(g, head);
	good_chain(g, 7);
	offer(g, 7);
	if (vq_pop(&g->vq, &g->m, g->c) != -EBADMSG || g->c->head != head) {
		test_fail(__FILE__, __LINE__, "chain %u was not refused", head);
		return;
	}
	vq_push(&g->vq, head, 0);
	if (vq_pop(&g->vq, &g->m, g->c) != 1 || g->c->head != 7)
		test_fail(__FILE__, __LINE__, "the queue did not go on after a refused chain");
	vq_push(&g->vq, 7, 0);
}

TEST(virtqueue_refuses_buffers_outside_memory)
{
	struct guest g;

	CHECK_OK(guest_new(&g, false));
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + MEMSIZE - 8, 40, 0, 0); /* runs off the end */
	expect_refused(&g, 0);
	set_desc(desc_at(&g, DESC_OFF, 0), GPA - 4096, 16, 0, 0); /* before it */
	expect_refused(&g, 0);
	set_desc(desc_at(&g, DESC_OFF, 0), UINT64_MAX - 10, 100, 0, 0); /* wraps around */
	expect_refused(&g, 0);
	set_desc(desc_at(&g, DESC_OFF, 0), GPA, 0xffffffffu, VRING_DESC_F_WRITE, 0); /* absurd */
	expect_refused(&g, 0);
	set_desc(desc_at(&g, DESC_OFF, 0), UVA + DATA_OFF, 16, 0, 0); /* a host address */
	expect_refused(&g, 0);
	CHECK(!g.vq.broken);
	guest_free(&g);
}

TEST(virtqueue_refuses_loops_and_bad_links)
{
	struct guest g;

	CHECK_OK(guest_new(&g, false));
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(desc_at(&g, DESC_OFF, 1), GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 0);
	expect_refused(&g, 0); /* 0 -> 1 -> 0 */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 0);
	expect_refused(&g, 0); /* 0 -> 0 */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, NUM);
	expect_refused(&g, 0); /* next beyond the table */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + DATA_OFF, 8,
		 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(desc_at(&g, DESC_OFF, 1), GPA + DATA_OFF, 8, 0, 0);
	expect_refused(&g, 0); /* readable after writable */
	guest_free(&g);
}

TEST(virtqueue_indirect_tables)
{
	struct guest g;
	const uint64_t tbl = 0x2000;

	CHECK_OK(guest_new(&g, false));
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl, 32, VRING_DESC_F_INDIRECT, 0);
	set_desc(desc_at(&g, tbl, 0), GPA + DATA_OFF, 40, VRING_DESC_F_NEXT, 1);
	set_desc(desc_at(&g, tbl, 1), GPA + DATA_OFF + 64, 80, VRING_DESC_F_WRITE, 0);
	expect_refused(&g, 0); /* the feature was not negotiated */
	guest_free(&g);

	CHECK_OK(guest_new(&g, true));
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl, 32, VRING_DESC_F_INDIRECT, 0);
	set_desc(desc_at(&g, tbl, 0), GPA + DATA_OFF, 40, VRING_DESC_F_NEXT, 1);
	set_desc(desc_at(&g, tbl, 1), GPA + DATA_OFF + 64, 80, VRING_DESC_F_WRITE, 0);
	offer(&g, 0);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 1);
	CHECK(g.c->nread == 1 && g.c->nwrite == 1 && g.c->read_len == 40 && g.c->write_len == 80);
	vq_push(&g.vq, 0, 0);

	set_desc(desc_at(&g, tbl, 1), GPA + DATA_OFF + 64, 80, VRING_DESC_F_NEXT, 0);
	expect_refused(&g, 0); /* a loop inside the table */
	set_desc(desc_at(&g, tbl, 1), GPA + tbl, 16, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* nested */
	set_desc(desc_at(&g, tbl, 1), GPA + DATA_OFF, 8, 0, 0);
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		 1);
	expect_refused(&g, 0); /* indirect and next */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl, 24, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* not a whole number of descriptors */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl, 0, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* empty */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + MEMSIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* outside memory */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + tbl + 8, 32, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* misaligned */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(desc_at(&g, DESC_OFF, 1), GPA + tbl, 32, VRING_DESC_F_INDIRECT, 0);
	expect_refused(&g, 0); /* indirect in the middle of a chain */
	guest_free(&g);
}

TEST(virtqueue_refuses_too_many_buffers)
{
	struct guest g;
	const unsigned n = 2048;
	uint8_t *big;
	struct vq_mem m;

	CHECK_OK(guest_new(&g, true));
	/* A second, larger region holds an indirect table of 2048 one-byte
	 * buffers: more than a chain may have. */
	big = aligned_alloc(4096, n * 16 + 4096);
	CHECK(big != NULL);
	m = g.m;
	m.n = 2;
	m.r[1] = (struct vq_region){
	    .gpa = 0x10000000, .uva = 0x7e0000000000ull, .size = n * 16 + 4096, .host = big};
	for (unsigned i = 0; i < n; i++)
		set_desc((struct vring_desc *)big + i, 0x10000000 + n * 16, 1,
			 i + 1 < n ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(desc_at(&g, DESC_OFF, 0), 0x10000000, n * 16, VRING_DESC_F_INDIRECT, 0);
	offer(&g, 0);
	CHECK_EQ(vq_pop(&g.vq, &m, g.c), -EBADMSG);
	CHECK(!g.vq.broken);
	free(big);
	guest_free(&g);
}

TEST(virtqueue_buffers_across_regions)
{
	struct guest g;
	uint8_t *hi = aligned_alloc(4096, 4096);

	CHECK(hi != NULL);
	CHECK_OK(guest_new(&g, false));
	/* A region right after the first one in guest space, elsewhere in ours. */
	g.m.n = 2;
	g.m.r[1] = (struct vq_region){
	    .gpa = GPA + MEMSIZE, .uva = 0x7e0000000000ull, .size = 4096, .host = hi};
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + MEMSIZE - 10, 20, 0, 0);
	offer(&g, 0);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), 1);
	CHECK_EQ(g.c->nread, 2);
	CHECK(g.c->iov[0].iov_base == g.mem + MEMSIZE - 10 && g.c->iov[0].iov_len == 10);
	CHECK(g.c->iov[1].iov_base == hi && g.c->iov[1].iov_len == 10);
	vq_push(&g.vq, 0, 0);
	/* ...but not into the gap after the second one. */
	set_desc(desc_at(&g, DESC_OFF, 0), GPA + MEMSIZE + 4090, 20, 0, 0);
	expect_refused(&g, 0);
	guest_free(&g);
	free(hi);
}

TEST(virtqueue_broken_rings_stop)
{
	struct guest g;

	CHECK_OK(guest_new(&g, false));
	avail(&g)->idx = htole16(NUM + 1); /* more entries than the ring has */
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), -EPROTO);
	CHECK(g.vq.broken);
	avail(&g)->idx = htole16(1);
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), -EPROTO); /* stays stopped */
	guest_free(&g);

	CHECK_OK(guest_new(&g, false));
	offer(&g, NUM); /* a head beyond the table */
	CHECK_EQ(vq_pop(&g.vq, &g.m, g.c), -EPROTO);
	guest_free(&g);
}

TEST(virtqueue_init_checks_the_rings)
{
	struct guest g;
	struct virtqueue vq;

	CHECK_OK(guest_new(&g, false));
	CHECK_ERR(vq_init(&vq, &g.m, 0, UVA, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0), -EINVAL);
	CHECK_ERR(vq_init(&vq, &g.m, 6, UVA, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0), -EINVAL);
	CHECK_ERR(vq_init(&vq, &g.m, 65536, UVA, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0),
		  -EINVAL);
	CHECK_ERR(
	    vq_init(&vq, &g.m, NUM, UVA + MEMSIZE - 64, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0),
	    -EFAULT); /* the table runs off the end */
	CHECK_ERR(vq_init(&vq, &g.m, NUM, GPA, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0),
		  -EFAULT); /* a guest address where a front-end one belongs */
	CHECK_ERR(vq_init(&vq, &g.m, NUM, UVA + 8, UVA + AVAIL_OFF, UVA + USED_OFF, false, 0),
		  -EINVAL); /* misaligned */
	CHECK_ERR(vq_init(&vq, &g.m, NUM, UVA, UVA + AVAIL_OFF + 1, UVA + USED_OFF, false, 0),
		  -EINVAL);
	CHECK_ERR(vq_init(&vq, &g.m, NUM, UVA, UVA + AVAIL_OFF, UVA + USED_OFF + 2, false, 0),
		  -EINVAL);
	CHECK_ERR(vq_init(&vq, &g.m, NUM, UVA, UVA + AVAIL_OFF, UINT64_MAX - 8, false, 0), -EFAULT);
	/* A restarted ring resumes where the used index stands. */
	used(&g)->idx = htole16(5);
	CHECK_OK(vq_init(&vq, &g.m, NUM, UVA, UVA + AVAIL_OFF, UVA + USED_OFF, false, 5));
	CHECK_EQ(vq.used, 5);
	CHECK_EQ(vq.avail, 5);
	guest_free(&g);
}
