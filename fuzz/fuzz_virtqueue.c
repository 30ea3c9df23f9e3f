/* fuzz_virtqueue.c - libFuzzer target: arbitrary guest memory (rings,
 * descriptor and indirect tables) through vq_pop(); every chain taken must
 * lie inside guest memory and within the chain limits, and the queue must
 * end (empty or broken) after at most a queue's worth of chains. */
#include "fs/virtio/virtqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MEMSIZE 8192
#define GPA	0x1000
#define UVA	0x7f0000000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const struct vq_chain *c, const uint8_t *mem)
{
	for (unsigned i = 0; i < c->nread + c->nwrite; i++) {
		const uint8_t *p = c->iov[i].iov_base;

		if (p < mem || c->iov[i].iov_len > MEMSIZE || p + c->iov[i].iov_len > mem + MEMSIZE)
			return 0;
	}
	return c->nread + c->nwrite <= VQ_MAX_IOV;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *mem = aligned_alloc(4096, MEMSIZE);
	struct vq_chain *c = malloc(sizeof(*c));
	struct vq_mem m = {.n = 1};
	struct virtqueue vq;
	/* num 16: table at 0, avail ring at 256, used ring at 512. */
	bool indirect = size > 0 && (data[0] & 1);

	if (!mem || !c)
		abort();
	memset(mem, 0, MEMSIZE);
	memcpy(mem, data, size < MEMSIZE ? size : MEMSIZE);
	m.r[0] = (struct vq_region){.gpa = GPA, .uva = UVA, .size = MEMSIZE, .host = mem};
	if (vq_init(&vq, &m, 16, UVA, UVA + 256, UVA + 512, indirect, 0) == 0) {
		for (int i = 0; i < 17; i++) {
			int rc = vq_pop(&vq, &m, c);

			if (rc == 0 || rc == -EPROTO)
				break;
			if (rc == 1 && !inside(c, mem))
				__builtin_trap();
			if (rc != 1 && rc != -EBADMSG)
				__builtin_trap();
			vq_push(&vq, c->head, 0);
			if (i == 16) /* more chains than the ring holds */
				__builtin_trap();
		}
	}
	free(c);
	free(mem);
	return 0;
}
