/* digest_list.h - a growing list of digests behind its own lock: what the
 * blob and Directory trackers (blob_tracker.h, dir_tracker.h) record of
 * the objects their writers created, from any number of threads. */
#ifndef STOREFS_DIGEST_LIST_H
#define STOREFS_DIGEST_LIST_H

#include "castore/digest.h"

#include <pthread.h>
#include <stddef.h>

struct digest_list {
	pthread_mutex_t lock;
	struct b3_digest *v; /* protected by lock */
	size_t n, cap;
};

void digest_list_init(struct digest_list *l);
/* Appends `d`: 0, or -ENOMEM (the list is unchanged). */
int digest_list_add(struct digest_list *l, const struct b3_digest *d);
/* The digests so far, in order (valid until the next add or take). */
size_t digest_list_peek(struct digest_list *l, const struct b3_digest **v);
/* Hands the list over (*v malloc'd, NULL if empty) and starts a new one. */
void digest_list_take(struct digest_list *l, struct b3_digest **v, size_t *n);
void digest_list_release(struct digest_list *l);

#endif
