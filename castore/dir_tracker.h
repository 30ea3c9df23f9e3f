/* dir_tracker.h - a Directory service over another that remembers which
 * Directories its puts created (they were absent before), so that a writer
 * that fails can take back exactly what it added and nothing that was
 * there before (docs/trust.md "Orphans"). Gets go to the inner service
 * unchanged. Thread-safe as far as the inner service is; the list has its
 * own lock. */
#ifndef STOREFS_DIR_TRACKER_H
#define STOREFS_DIR_TRACKER_H

#include "castore/dir_service.h"

struct dir_tracker;

/* Wraps `inner` (borrowed: it must outlive the tracker). -ENOMEM. */
int dir_tracker_new(struct dir_service *inner, struct dir_tracker **out);
/* The service to write through; it belongs to the tracker (dir_tracker_free
 * frees it; dir_service_free on it does the same). */
struct dir_service *dir_tracker_service(struct dir_tracker *t);
/* Hands the list over (*v malloc'd, NULL if empty) and starts a new one. */
void dir_tracker_take(struct dir_tracker *t, struct b3_digest **v, size_t *n);
/* NULL is a no-op. */
void dir_tracker_free(struct dir_tracker *t);

#endif
