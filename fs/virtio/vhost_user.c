/* vhost_user.c - the vhost-user back-end: socket, messages, memory table,
 * vrings and eventfds (QEMU docs/interop/vhost-user.rst; see vhost_user.h
 * for the sections implemented and docs/virtiofs.md for the rules).
 *
 * Written by hand: Debian ships no vhost-user library for C (QEMU's
 * libvhost-user is not packaged). */
#include "fs/virtio/vhost_user.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* --- the wire format ("Message Specification") --- */

#define VU_VERSION	   1u
#define VU_VERSION_MASK	   3u
#define VU_FLAG_REPLY	   (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_MAX_FDS	   8 /* fds one message carries at most */
#define VU_VRING_IDX_MASK  0xffu
#define VU_VRING_NOFD	   (1ull << 8)

/* Feature bits ("Communication", "Protocol features"). */
#define VU_F_PROTOCOL_FEATURES (1ull << 30)
#define VU_PF_MQ	       (1ull << 0)
#define VU_PF_REPLY_ACK	       (1ull << 3)
#define VU_PROTOCOL_FEATURES   (VU_PF_MQ | VU_PF_REPLY_ACK)

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
};

struct vu_header {
	uint32_t request, flags, size;
};

struct vu_state { /* "A vring state description" */
	uint32_t index, num;
};

struct vu_addr { /* "A vring address description" */
	uint32_t index, flags;
	uint64_t desc, used, avail, log;
};

struct vu_region { /* "Memory regions description" */
	uint64_t gpa, size, uva, mmap_offset;
};

struct vu_memory {
	uint32_t nregions, padding;
	struct vu_region r[VQ_MAX_REGIONS];
};

union vu_payload {
	uint64_t u64;
	struct vu_state state;
	struct vu_addr addr;
	struct vu_memory mem;
};

struct vu_msg {
	struct vu_header h;
	union vu_payload p;
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

/* --- state --- */

struct vu_dev;

struct vu_queue {
	struct vu_dev *d;
	unsigned index;
	unsigned num;		    /* SET_VRING_NUM */
	uint64_t desc, avail, used; /* SET_VRING_ADDR (front-end addresses) */
	bool addr_set;
	uint16_t base;		 /* SET_VRING_BASE, and where a stopped ring stopped */
	int kick_fd;		 /* owned */
	pthread_mutex_t call_mu; /* the front-end swaps call fds while running */
	int call_fd;		 /* protected by call_mu; owned */
	_Atomic bool enabled;	 /* SET_VRING_ENABLE */
	bool running;		 /* a thread serves the ring */
	_Atomic bool stop;	 /* asks the thread to end */
	int wake_fd;		 /* eventfd: look at `stop` and `enabled` */
	bool told_bad;		 /* a refused chain was logged */
	pthread_t thread;
	struct virtqueue vq;	/* owned by the thread while running */
	struct vq_chain *chain; /* the thread's */
	void *scratch;		/* the thread's */
};

struct vu_dev {
	const struct vhost_user_device *dev;
	int sock;
	uint64_t features;	   /* acknowledged virtio features */
	uint64_t protocol;	   /* acknowledged protocol features */
	struct vq_mem mem;	   /* read by running queues: changed only when all stopped */
	void *map[VQ_MAX_REGIONS]; /* our mappings, for munmap */
	size_t map_len[VQ_MAX_REGIONS];
	struct vu_queue *q;
	unsigned nq;
};

static uint64_t offered_features(const struct vu_dev *d)
{
	return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
	       VU_F_PROTOCOL_FEATURES | d->dev->features;
}

static int proto_err(const char *what)
{
	return sf_err(-EPROTO, "%s", what);
}

/* --- queue threads --- */

static void queue_notify(struct vu_queue *q)
{
	if (!vq_should_notify(&q->vq))
		return;
	pthread_mutex_lock(&q->call_mu);
	if (q->call_fd >= 0 && eventfd_write(q->call_fd, 1) < 0)
		log_debug("virtiofs: queue %u: cannot signal the guest: %s", q->index,
			  strerror(errno));
	pthread_mutex_unlock(&q->call_mu);
}

/* A refused chain is said once per queue: a hostile guest must not be
 * able to flood the log. */
static void queue_refused(struct vu_queue *q, int rc)
{
	if (!q->told_bad)
		log_warn("virtiofs: queue %u: %s (further ones are not logged)", q->index,
			 sf_errmsg(rc));
	q->told_bad = true;
}

/* Serves every available chain, or until asked to stop (a guest that
 * keeps the queue full must not delay GET_VRING_BASE or SIGTERM). */
static void queue_drain(struct vu_queue *q)
{
	const struct vhost_user_device *dev = q->d->dev;

	while (!atomic_load(&q->stop)) {
		int rc = vq_pop(&q->vq, &q->d->mem, q->chain);
		uint32_t len = 0;

		if (rc == 0)
			return;
		if (rc == -EPROTO) {
			log_error("virtiofs: queue %u: %s; the queue stops", q->index,
				  sf_errmsg(rc));
			return;
		}
		if (rc < 0)
			queue_refused(q, rc);
		else
			len = dev->handle(dev->ctx, q->index, q->chain, q->scratch);
		if (len > q->chain->write_len)
			len = (uint32_t)q->chain->write_len;
		vq_push(&q->vq, q->chain->head, len);
		queue_notify(q);
	}
}

static void drain_fd(int fd)
{
	eventfd_t v;

	(void)eventfd_read(fd, &v);
}

static void *queue_main(void *arg)
{
	struct vu_queue *q = arg;
	struct pollfd p[2] = {{.fd = q->kick_fd, .events = POLLIN},
			      {.fd = q->wake_fd, .events = POLLIN}};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtiofs: queue %u: poll: %s", q->index, strerror(errno));
			break;
		}
		if (p[1].revents)
			drain_fd(q->wake_fd);
		if (atomic_load(&q->stop))
			break;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			log_error("virtiofs: queue %u: the kick descriptor failed", q->index);
			break;
		}
		if (p[0].revents & POLLIN)
			drain_fd(q->kick_fd);
		if (atomic_load(&q->enabled))
			queue_drain(q);
	}
	return NULL;
}

static int queue_alloc(struct vu_queue *q)
{
	if (!q->chain)
		q->chain = malloc(sizeof(*q->chain));
	if (!q->scratch && q->d->dev->scratch)
		q->scratch = malloc(q->d->dev->scratch);
	if (!q->chain || (!q->scratch && q->d->dev->scratch))
		return -ENOMEM;
	return 0;
}

/* Starts serving the ring ("Ring states": started by its kick fd). */
static int queue_start(struct vu_queue *q)
{
	struct vu_dev *d = q->d;
	bool indirect = d->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	int rc;

	if (!q->num || !q->addr_set || !d->mem.n)
		return sf_err(-EPROTO,
			      "queue %u was kicked before its size, addresses and the "
			      "memory table were set",
			      q->index);
	rc = vq_init(&q->vq, &d->mem, q->num, q->desc, q->avail, q->used, indirect, q->base);
	if (rc == 0)
		rc = queue_alloc(q);
	if (rc)
		return sf_err(-EPROTO, "queue %u: %s", q->index, sf_errmsg(rc));
	atomic_store(&q->stop, false);
	rc = pthread_create(&q->thread, NULL, queue_main, q);
	if (rc)
		return sf_err(-rc, "cannot start a queue thread: %s", strerror(rc));
	q->running = true;
	return 0;
}

/* Stops the thread; the ring keeps its position for a restart. */
static void queue_stop(struct vu_queue *q)
{
	if (!q->running)
		return;
	atomic_store(&q->stop, true);
	(void)eventfd_write(q->wake_fd, 1);
	pthread_join(q->thread, NULL);
	q->running = false;
	q->base = q->vq.avail;
}

static void queue_wake(struct vu_queue *q)
{
	if (q->running)
		(void)eventfd_write(q->wake_fd, 1);
}

static void fd_replace(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

/* --- guest memory ("Memory access") --- */

static void mem_unmap(struct vu_dev *d)
{
	for (unsigned i = 0; i < d->mem.n; i++)
		munmap(d->map[i], d->map_len[i]);
	d->mem.n = 0;
}

/* Maps region `r` from `fd` into d->map[i] / d->mem.r[i]. The mapping
 * starts at the offset rounded down to the file's block size (a huge page
 * for hugetlbfs) and must not reach past the file's end (SIGBUS). */
static int mem_map_region(struct vu_dev *d, unsigned i, const struct vu_region *r, int fd)
{
	struct stat st;
	uint64_t align, start, delta;
	void *p;

	if (r->size == 0 || r->gpa > UINT64_MAX - r->size || r->uva > UINT64_MAX - r->size ||
	    r->mmap_offset > UINT64_MAX - r->size || r->size > SIZE_MAX / 2)
		return proto_err("a memory region of a bad size");
	if (fstat(fd, &st) < 0)
		return sf_err_errno(-EPROTO, errno, "cannot stat a guest memory descriptor");
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->mmap_offset + r->size)
		return proto_err("a memory region beyond the end of its file");
	align = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
	start = r->mmap_offset - r->mmap_offset % align;
	delta = r->mmap_offset - start;
	p = mmap(NULL, r->size + delta, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		 (off_t)start);
	if (p == MAP_FAILED)
		return sf_err_errno(-EPROTO, errno, "cannot map guest memory");
	d->map[i] = p;
	d->map_len[i] = r->size + delta;
	d->mem.r[i] = (struct vq_region){
	    .gpa = r->gpa, .uva = r->uva, .size = r->size, .host = (uint8_t *)p + delta};
	d->mem.n = i + 1;
	return 0;
}

static int mem_set(struct vu_dev *d, const struct vu_msg *m)
{
	const struct vu_memory *mem = &m->p.mem;
	int rc = 0;

	if (m->h.size < 8 || mem->nregions == 0 || mem->nregions > VQ_MAX_REGIONS ||
	    m->h.size < 8 + mem->nregions * sizeof(struct vu_region))
		return proto_err("a memory table of a bad size");
	if (m->nfds != mem->nregions)
		return proto_err("a memory table without one descriptor per region");
	mem_unmap(d);
	for (unsigned i = 0; i < mem->nregions && rc == 0; i++)
		rc = mem_map_region(d, i, &mem->r[i], m->fds[i]);
	if (rc)
		mem_unmap(d);
	return rc;
}

/* --- requests --- */

static int need(const struct vu_msg *m, size_t size)
{
	if (m->h.size < size)
		return proto_err("a message payload that is too short");
	return 0;
}

/* The queue a message names, or NULL with a message. */
static struct vu_queue *queue_of(struct vu_dev *d, uint32_t index)
{
	if (index >= d->nq) {
		sf_err(-EPROTO,
		       "the front-end uses queue %u but at most %u are served (see --threads)",
		       index, d->nq);
		return NULL;
	}
	return &d->q[index];
}

/* A queue for a message that may only change a stopped ring. */
static int stopped_queue(struct vu_dev *d, uint32_t index, struct vu_queue **out)
{
	struct vu_queue *q = queue_of(d, index);

	if (!q)
		return -EPROTO;
	if (q->running)
		return sf_err(-EPROTO, "queue %u was reconfigured while running", index);
	*out = q;
	return 0;
}

static int send_reply(struct vu_dev *d, const struct vu_msg *m, const void *payload, uint32_t size)
{
	struct vu_header h = {
	    .request = m->h.request, .flags = VU_VERSION | VU_FLAG_REPLY, .size = size};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	do
		n = sendmsg(d->sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/* A reply is at most a few bytes: a short send means a broken socket. */
	if (n != (ssize_t)(sizeof(h) + size))
		return sf_err_errno(-EPROTO, n < 0 ? errno : EIO, "cannot reply to the front-end");
	return 0;
}

static int reply_u64(struct vu_dev *d, const struct vu_msg *m, uint64_t v)
{
	return send_reply(d, m, &v, sizeof(v));
}

static int req_set_features(struct vu_dev *d, const struct vu_msg *m)
{
	int rc = need(m, 8);

	if (rc)
		return rc;
	if (m->p.u64 & ~offered_features(d))
		return sf_err(-EPROTO, "the front-end acknowledged features 0x%llx never offered",
			      (unsigned long long)(m->p.u64 & ~offered_features(d)));
	d->features = m->p.u64;
	/* Without protocol features rings start enabled ("Ring states"). */
	if (!(d->features & VU_F_PROTOCOL_FEATURES))
		for (unsigned i = 0; i < d->nq; i++)
			atomic_store(&d->q[i].enabled, true);
	return 0;
}

static int req_set_protocol_features(struct vu_dev *d, const struct vu_msg *m)
{
	int rc = need(m, 8);

	if (rc)
		return rc;
	if (m->p.u64 & ~VU_PROTOCOL_FEATURES)
		return proto_err("the front-end acknowledged protocol features never offered");
	d->protocol = m->p.u64;
	return 0;
}

/* A new memory table: running rings hold pointers into the old one, so
 * they stop while it is replaced and restart at the same position. */
static int req_set_mem_table(struct vu_dev *d, const struct vu_msg *m)
{
	bool was[VHOST_USER_MAX_QUEUES];
	int rc;

	for (unsigned i = 0; i < d->nq; i++) {
		was[i] = d->q[i].running;
		queue_stop(&d->q[i]);
	}
	rc = mem_set(d, m);
	for (unsigned i = 0; i < d->nq && rc == 0; i++)
		if (was[i])
			rc = queue_start(&d->q[i]);
	return rc;
}

static int req_set_vring_num(struct vu_dev *d, const struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int rc = need(m, sizeof(struct vu_state));

	if (rc == 0)
		rc = stopped_queue(d, m->p.state.index, &q);
	if (rc)
		return rc;
	if (m->p.state.num == 0 || m->p.state.num > VQ_MAX_SIZE ||
	    (m->p.state.num & (m->p.state.num - 1)))
		return sf_err(-EPROTO, "queue size %u is not a power of 2 up to %u", m->p.state.num,
			      VQ_MAX_SIZE);
	q->num = m->p.state.num;
	return 0;
}

static int req_set_vring_addr(struct vu_dev *d, const struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int rc = need(m, sizeof(struct vu_addr));

	if (rc == 0)
		rc = stopped_queue(d, m->p.addr.index, &q);
	if (rc)
		return rc;
	q->desc = m->p.addr.desc;
	q->avail = m->p.addr.avail;
	q->used = m->p.addr.used;
	q->addr_set = true;
	return 0;
}

static int req_set_vring_base(struct vu_dev *d, const struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int rc = need(m, sizeof(struct vu_state));

	if (rc == 0)
		rc = stopped_queue(d, m->p.state.index, &q);
	if (rc)
		return rc;
	if (m->p.state.num > UINT16_MAX)
		return proto_err("a ring base beyond 16 bits");
	q->base = (uint16_t)m->p.state.num;
	return 0;
}

/* Stops the ring and tells where it stopped. */
static int req_get_vring_base(struct vu_dev *d, const struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	struct vu_state s;
	int rc = need(m, sizeof(struct vu_state));

	if (rc)
		return rc;
	q = queue_of(d, m->p.state.index);
	if (!q)
		return -EPROTO;
	queue_stop(q);
	fd_replace(&q->kick_fd, -1);
	s = (struct vu_state){.index = q->index, .num = q->base};
	return send_reply(d, m, &s, sizeof(s));
}

/* The fd a SET_VRING_KICK/CALL/ERR carries (or -1 with the no-fd bit). */
static int vring_fd(struct vu_dev *d, const struct vu_msg *m, struct vu_queue **q, int *fd)
{
	int rc = need(m, 8);

	if (rc)
		return rc;
	*q = queue_of(d, (uint32_t)(m->p.u64 & VU_VRING_IDX_MASK));
	if (!*q)
		return -EPROTO;
	if (m->p.u64 & VU_VRING_NOFD) {
		*fd = -1;
		return m->nfds ? proto_err("a descriptor next to the no-fd flag") : 0;
	}
	if (m->nfds != 1)
		return proto_err("a vring message without its descriptor");
	*fd = m->fds[0];
	return 0;
}

static int req_set_vring_kick(struct vu_dev *d, struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int fd, rc = vring_fd(d, m, &q, &fd);

	if (rc)
		return rc;
	if (fd < 0)
		return proto_err("polling a ring without a kick descriptor is not supported");
	m->nfds = 0; /* the queue owns it now */
	queue_stop(q);
	fd_replace(&q->kick_fd, fd);
	return queue_start(q);
}

static int req_set_vring_call(struct vu_dev *d, struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int fd, rc = vring_fd(d, m, &q, &fd);

	if (rc)
		return rc;
	m->nfds = 0;
	pthread_mutex_lock(&q->call_mu);
	fd_replace(&q->call_fd, fd);
	pthread_mutex_unlock(&q->call_mu);
	return 0;
}

/* We never report ring errors through it: the log says why a ring stops. */
static int req_set_vring_err(struct vu_dev *d, struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int fd;

	return vring_fd(d, m, &q, &fd);
}

static int req_set_vring_enable(struct vu_dev *d, const struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	int rc = need(m, sizeof(struct vu_state));

	if (rc)
		return rc;
	q = queue_of(d, m->p.state.index);
	if (!q)
		return -EPROTO;
	if (m->p.state.num > 1)
		return proto_err("a ring enable flag other than 0 or 1");
	atomic_store(&q->enabled, m->p.state.num == 1);
	queue_wake(q); /* kicks that came while disabled were left pending */
	return 0;
}

static void queues_stop(struct vu_dev *d)
{
	for (unsigned i = 0; i < d->nq; i++)
		queue_stop(&d->q[i]);
}

/* Handles one request; replies to those that have a reply. */
static int request(struct vu_dev *d, struct vu_msg *m, bool *replied)
{
	*replied = true;
	switch (m->h.request) {
	case VU_GET_FEATURES:
		return reply_u64(d, m, offered_features(d));
	case VU_GET_PROTOCOL_FEATURES:
		return reply_u64(d, m, VU_PROTOCOL_FEATURES);
	case VU_GET_QUEUE_NUM:
		return reply_u64(d, m, d->nq);
	case VU_GET_VRING_BASE:
		return req_get_vring_base(d, m);
	}
	*replied = false;
	switch (m->h.request) {
	case VU_SET_FEATURES:
		return req_set_features(d, m);
	case VU_SET_PROTOCOL_FEATURES:
		return req_set_protocol_features(d, m);
	case VU_SET_OWNER:
		return 0;
	case VU_RESET_OWNER: /* deprecated: "disable all rings" */
		queues_stop(d);
		return 0;
	case VU_SET_MEM_TABLE:
		return req_set_mem_table(d, m);
	case VU_SET_VRING_NUM:
		return req_set_vring_num(d, m);
	case VU_SET_VRING_ADDR:
		return req_set_vring_addr(d, m);
	case VU_SET_VRING_BASE:
		return req_set_vring_base(d, m);
	case VU_SET_VRING_KICK:
		return req_set_vring_kick(d, m);
	case VU_SET_VRING_CALL:
		return req_set_vring_call(d, m);
	case VU_SET_VRING_ERR:
		return req_set_vring_err(d, m);
	case VU_SET_VRING_ENABLE:
		return req_set_vring_enable(d, m);
	}
	return sf_err(-EPROTO, "unsupported vhost-user request %u", m->h.request);
}

/* --- receiving --- */

static void msg_close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static void msg_take_fds(struct vu_msg *m, struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
}

static ssize_t recv_all(int sock, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(sock, buf, len, MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Reads one message. 1: got it; 0: the front-end disconnected; or a
 * negative errno with a message. */
static int msg_recv(int sock, struct vu_msg *m)
{
	char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov = {&m->h, sizeof(m->h)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n;

	m->nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n < 0)
		return sf_err_errno(-EPROTO, errno, "cannot read from the front-end");
	msg_take_fds(m, &mh);
	if (n != sizeof(m->h) || (mh.msg_flags & MSG_CTRUNC))
		return proto_err("a truncated message header");
	if ((m->h.flags & VU_VERSION_MASK) != VU_VERSION)
		return proto_err("a message of an unknown protocol version");
	if (m->h.size > sizeof(m->p))
		return sf_err(-EPROTO, "a message payload of %u bytes is too large", m->h.size);
	memset(&m->p, 0, sizeof(m->p));
	if (m->h.size && recv_all(sock, &m->p, m->h.size) != (ssize_t)m->h.size)
		return proto_err("a truncated message payload");
	return 1;
}

/* Handles one message, with the REPLY_ACK answer when one is asked for. */
static int msg_handle(struct vu_dev *d, struct vu_msg *m)
{
	bool replied;
	int rc = request(d, m, &replied);

	msg_close_fds(m);
	if (!replied && (d->protocol & VU_PF_REPLY_ACK) && (m->h.flags & VU_FLAG_NEED_REPLY)) {
		int rc2 = reply_u64(d, m, rc ? 1 : 0);

		if (rc == 0)
			rc = rc2;
	}
	return rc;
}

/* --- the session --- */

static int signals_fd(sigset_t *old)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, old);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0) {
		fd = sf_err_sys(errno, "cannot watch for signals");
		pthread_sigmask(SIG_SETMASK, old, NULL);
	}
	return fd;
}

/* Waits until `fd` is readable (1) or a signal arrived (0). */
static int wait_fd(int fd, int sigfd)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
	struct signalfd_siginfo si;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return sf_err_sys(errno, "poll");
		}
		if (p[1].revents & POLLIN) {
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				log_info("virtiofs: %s: stopping", strsignal((int)si.ssi_signo));
			return 0;
		}
		if (p[0].revents)
			return 1;
	}
}

/* Serves the connection until the front-end leaves or a signal comes (0).
 * 1: it left without a message (someone checked that the socket is
 * served, as a second daemon does): the caller accepts again. The
 * listening socket is closed at the first message: one VM is served. */
static int serve_connection(struct vu_dev *d, int sigfd, int *lfd)
{
	struct vu_msg m;
	bool any = false;
	int rc;

	for (;;) {
		rc = wait_fd(d->sock, sigfd);
		if (rc <= 0)
			return rc;
		rc = msg_recv(d->sock, &m);
		if (rc == 0 && !any)
			return 1;
		if (rc == 0)
			log_info("virtiofs: the front-end disconnected");
		if (rc <= 0) {
			msg_close_fds(&m);
			return rc;
		}
		if (!any && *lfd >= 0) {
			close(*lfd);
			*lfd = -1;
		}
		any = true;
		rc = msg_handle(d, &m);
		if (rc)
			return rc;
	}
}

static int dev_init(struct vu_dev *d, const struct vhost_user_device *dev)
{
	*d = (struct vu_dev){.dev = dev, .sock = -1, .nq = dev->queues};
	if (dev->queues == 0 || dev->queues > VHOST_USER_MAX_QUEUES)
		return sf_err(-EINVAL, "a device with %u queues", dev->queues);
	d->q = calloc(dev->queues, sizeof(*d->q));
	if (!d->q)
		return -ENOMEM;
	for (unsigned i = 0; i < d->nq; i++) {
		d->q[i] = (struct vu_queue){
		    .d = d, .index = i, .kick_fd = -1, .call_fd = -1, .wake_fd = -1};
		pthread_mutex_init(&d->q[i].call_mu, NULL);
	}
	for (unsigned i = 0; i < d->nq; i++) {
		d->q[i].wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->q[i].wake_fd < 0)
			return sf_err_sys(errno, "cannot create an eventfd");
	}
	return 0;
}

static void dev_release(struct vu_dev *d)
{
	if (d->q) {
		queues_stop(d);
		for (unsigned i = 0; i < d->nq; i++) {
			struct vu_queue *q = &d->q[i];

			fd_replace(&q->kick_fd, -1);
			fd_replace(&q->call_fd, -1);
			fd_replace(&q->wake_fd, -1);
			pthread_mutex_destroy(&q->call_mu);
			free(q->chain);
			free(q->scratch);
		}
	}
	free(d->q);
	mem_unmap(d);
	if (d->sock >= 0)
		close(d->sock);
}

/* --- the listening socket --- */

static int sockaddr_of(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return sf_err(-ENAMETOOLONG, "socket path '%s' is too long", path);
	strcpy(sa->sun_path, path);
	return 0;
}

/* Removes a socket nobody listens on; refuses to touch anything else. */
static int clear_stale(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : sf_err_sys(errno, "cannot use '%s'", path);
	if (!S_ISSOCK(st.st_mode))
		return sf_err(-EEXIST, "'%s' exists and is not a socket", path);
	rc = sockaddr_of(path, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sf_err_sys(errno, "socket");
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return sf_err(-EADDRINUSE, "'%s' is served by another process", path);
	return 0; /* replaced by the rename */
}

static int listen_at(const char *path, int *out)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path) + 32];
	struct sockaddr_un sa;
	int fd, rc;

	rc = clear_stale(path);
	if (rc)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	rc = sockaddr_of(tmp, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sf_err_sys(errno, "socket");
	unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    rename(tmp, path) < 0) {
		rc = sf_err_sys(errno, "cannot listen on '%s'", path);
		unlink(tmp);
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* Accepts the one front-end. 1: connected; 0: a signal came first. */
static int accept_one(int lfd, int sigfd, int *out)
{
	int rc = wait_fd(lfd, sigfd);

	if (rc <= 0)
		return rc;
	*out = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*out < 0)
		return sf_err_sys(errno, "accept");
	return 1;
}

/* Accepts front-ends until one has been served, or a signal comes. */
static int serve(struct vu_dev *d, int sigfd, int *lfd)
{
	int rc;

	for (;;) {
		rc = accept_one(*lfd, sigfd, &d->sock);
		if (rc <= 0)
			return rc;
		log_info("virtiofs: a front-end connected");
		rc = serve_connection(d, sigfd, lfd);
		if (rc != 1)
			return rc;
		log_info("virtiofs: it left without a word; waiting for another");
		close(d->sock);
		d->sock = -1;
	}
}

int vhost_user_serve(const char *path, const struct vhost_user_device *dev)
{
	struct vu_dev d;
	sigset_t old;
	int lfd = -1, sigfd, rc;

	rc = dev_init(&d, dev);
	if (rc)
		goto out;
	sigfd = signals_fd(&old);
	if (sigfd < 0) {
		rc = sigfd;
		goto out;
	}
	rc = listen_at(path, &lfd);
	if (rc == 0) {
		log_info("virtiofs: listening on '%s'", path);
		rc = serve(&d, sigfd, &lfd);
		if (lfd >= 0)
			close(lfd);
		unlink(path);
	}
	close(sigfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
	dev_release(&d);
	return rc < 0 ? rc : 0;
}
