/* blob_tracker.h - a blob service over another that remembers which blobs
 * its writers created (their commit made the blob exist), so that a writer
 * that fails can take back exactly what it added and nothing that was
 * there before (docs/trust.md "Orphans"). Reads, stats and flushes go to
 * the inner service unchanged. Thread-safe as far as the inner service
 * is; the list has its own lock. */
#ifndef STOREFS_BLOB_TRACKER_H
#define STOREFS_BLOB_TRACKER_H

#include "castore/blob_service.h"

struct blob_tracker;

/* Wraps `inner` (borrowed: it must outlive the tracker). -ENOMEM. */
int blob_tracker_new(struct blob_service *inner, struct blob_tracker **out);
/* The service to write through; it belongs to the tracker (blob_tracker_free
 * frees it; blob_service_free on it does the same). */
struct blob_service *blob_tracker_service(struct blob_tracker *t);
/* The digests created so far, in commit order (valid until the next commit
 * or blob_tracker_take). */
size_t blob_tracker_created(struct blob_tracker *t, const struct b3_digest **v);
/* Hands the list over (*v malloc'd, NULL if empty) and starts a new one. */
void blob_tracker_take(struct blob_tracker *t, struct b3_digest **v, size_t *n);
/* NULL is a no-op. */
void blob_tracker_free(struct blob_tracker *t);

#endif
