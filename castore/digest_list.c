/* digest_list.c - a growing list of digests behind its own lock. */
#include "castore/digest_list.h"

#include <errno.h>
#include <stdlib.h>

void digest_list_init(struct digest_list *l)
{
	*l = (struct digest_list){0};
	pthread_mutex_init(&l->lock, NULL);
}

int digest_list_add(struct digest_list *l, const struct b3_digest *d)
{
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct b3_digest *v = reallocarray(l->v, cap, sizeof(*v));

		if (v)
			l->v = v, l->cap = cap;
		else
			rc = -ENOMEM;
	}
	if (rc == 0)
		l->v[l->n++] = *d;
	pthread_mutex_unlock(&l->lock);
	return rc;
}

size_t digest_list_peek(struct digest_list *l, const struct b3_digest **v)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	*v = l->v;
	n = l->n;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void digest_list_take(struct digest_list *l, struct b3_digest **v, size_t *n)
{
	pthread_mutex_lock(&l->lock);
	*v = l->v;
	*n = l->n;
	l->v = NULL;
	l->n = l->cap = 0;
	pthread_mutex_unlock(&l->lock);
}

void digest_list_release(struct digest_list *l)
{
	pthread_mutex_destroy(&l->lock);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
