/* memory_dirs.c - a Directory service keeping canonical encodings in a map. */
#include "backends/memory/memory.h"

#include "castore/digest_map.h"
#include "common/err.h"

#include <pthread.h>
#include <stdlib.h>

/* The canonical encoding; decoding it on every get hands out a private copy
 * and re-checks it. */
struct mem_dir {
	size_t len;
	uint8_t bytes[];
};

struct mem_dirs {
	struct dir_service base;
	pthread_mutex_t lock;
	struct digest_map dirs; /* -> struct mem_dir, protected by lock */
};

static int mem_dirs_get(struct dir_service *ds, const struct b3_digest *d, struct directory **out)
{
	struct mem_dirs *s = (struct mem_dirs *)ds;
	struct mem_dir *md;
	int rc;

	pthread_mutex_lock(&s->lock);
	md = digest_map_get(&s->dirs, d);
	pthread_mutex_unlock(&s->lock);
	/* Entries are neither changed nor removed before free. */
	rc = md ? directory_decode(md->bytes, md->len, out) : -ENOENT;
	return rc;
}

static int mem_dir_new(const struct directory *d, const struct b3_digest *digest,
		       struct mem_dir **out)
{
	struct b3_digest got;
	uint8_t *buf;
	size_t len;
	int rc = directory_encode(d, &buf, &len);

	if (rc < 0)
		return rc;
	b3_digest_of(buf, len, &got);
	if (!b3_digest_eq(&got, digest)) {
		free(buf);
		return sf_err(-EINVAL, "directory does not match its digest");
	}
	*out = malloc(sizeof(**out) + len);
	if (!*out) {
		free(buf);
		return -ENOMEM;
	}
	(*out)->len = len;
	if (len)
		memcpy((*out)->bytes, buf, len);
	free(buf);
	return 0;
}

static void mem_dirs_release(struct mem_dir **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Inserts under the lock. An allocation failure half-way leaves only
 * children visible without their parents (leaves come first), which no
 * reader can reach, so the closure invariant holds. */
static int mem_dirs_insert(struct mem_dirs *s, struct mem_dir **v, const struct b3_digest *digests,
			   size_t n)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (digest_map_get(&s->dirs, &digests[i]))
			continue;
		rc = digest_map_put(&s->dirs, &digests[i], v[i], NULL);
		if (rc == 0)
			v[i] = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int mem_dirs_put_batch(struct dir_service *ds, struct directory *const *dirs,
			      const struct b3_digest *digests, size_t n)
{
	struct mem_dir **v = calloc(n ? n : 1, sizeof(*v));
	int rc = v ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = mem_dir_new(dirs[i], &digests[i], &v[i]);
	if (rc == 0)
		rc = mem_dirs_insert((struct mem_dirs *)ds, v, digests, n);
	if (v)
		mem_dirs_release(v, n);
	return rc;
}

static void mem_dirs_free(struct dir_service *ds)
{
	struct mem_dirs *s = (struct mem_dirs *)ds;

	digest_map_foreach(&s->dirs, slot) free(slot->value);
	digest_map_release(&s->dirs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct dir_service_ops mem_dirs_ops = {
    .get = mem_dirs_get,
    .put_batch = mem_dirs_put_batch,
    .free = mem_dirs_free,
    .partial_batches = true,
};

int memory_dir_service_new(struct dir_service **out)
{
	struct mem_dirs *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &mem_dirs_ops;
	pthread_mutex_init(&s->lock, NULL);
	digest_map_init(&s->dirs);
	*out = &s->base;
	return 0;
}
