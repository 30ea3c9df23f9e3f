/* virtiofs.c - the virtio-fs device: vhost-user queues carrying FUSE
 * requests (virtio 1.2 section 5.11; see virtiofs.h). */
#include "fs/virtio/virtiofs.h"

#include "common/err.h"
#include "fs/fuse_wire.h"
#include "fs/virtio/vhost_user.h"

#include <string.h>

/* Copies the request out of guest memory (the guest cannot change it
 * under us then) and answers it into the chain's writable buffers. A
 * request larger than any we answer is cut short; its header then no
 * longer matches its length and fuse_wire refuses it. */
static uint32_t virtiofs_handle(void *ctx, unsigned q, const struct vq_chain *c, void *scratch)
{
	uint8_t *buf = scratch;
	size_t len = 0;

	for (unsigned i = 0; i < c->nread && len < FUSE_WIRE_MAX_REQUEST; i++) {
		size_t n = c->iov[i].iov_len;

		if (n > FUSE_WIRE_MAX_REQUEST - len)
			n = FUSE_WIRE_MAX_REQUEST - len;
		memcpy(buf + len, c->iov[i].iov_base, n);
		len += n;
	}
	return (uint32_t)fuse_wire_handle(ctx, buf, len, &c->iov[c->nread], c->nwrite);
}

int virtiofs_serve(struct fs *fs, const struct virtiofs_config *cfg)
{
	struct vhost_user_device dev = {
	    .queues = 1 + cfg->threads,
	    .scratch = FUSE_WIRE_MAX_REQUEST,
	    .handle = virtiofs_handle,
	};
	struct fuse_wire *w;
	int rc;

	if (cfg->threads == 0 || cfg->threads >= VHOST_USER_MAX_QUEUES)
		return sf_err(-EINVAL, "%u request queues cannot be served", cfg->threads);
	rc = fuse_wire_new(fs, &w);
	if (rc)
		return rc;
	dev.ctx = w;
	rc = vhost_user_serve(cfg->socket, &dev);
	fuse_wire_free(w);
	return rc;
}
