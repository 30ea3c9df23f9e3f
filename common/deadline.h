/* deadline.h - the one rule for how long a remote operation may take
 * (docs/limits.md "Deadlines"), shared by every backend that talks to a
 * peer (binary cache today; gRPC and S3 later).
 *
 * Every remote operation gets a total deadline: `base_s` seconds, plus,
 * for a body of known size, the time it takes at `min_rate` bytes per
 * second. Waits for another thread's remote operation are timed by the
 * same deadline. A missed deadline is -EIO with one message; nothing of
 * the operation is kept, and a later request tries again. */
#ifndef STOREFS_DEADLINE_H
#define STOREFS_DEADLINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Defaults: a narinfo (or any small request) within 60 s; a NAR body of
 * N bytes within 60 s + N / 256 KiB/s (1 GiB: ~69 min). */
#define DEADLINE_BASE_S_DEFAULT	  60
#define DEADLINE_MIN_RATE_DEFAULT (256u * 1024)
#define DEADLINE_BASE_S_MAX	  86400

struct deadline_rule {
	unsigned base_s;   /* 0: DEADLINE_BASE_S_DEFAULT */
	unsigned min_rate; /* bytes per second; 0: DEADLINE_MIN_RATE_DEFAULT */
};

/* Milliseconds allowed for an operation moving `bytes` of body (0 for a
 * small request). `r` may be NULL (the defaults). */
uint64_t deadline_ms(const struct deadline_rule *r, uint64_t bytes);

/* A base deadline written in a URL (`timeout=SECONDS`): the `n` bytes at
 * `v` must be decimal digits worth 1 to DEADLINE_BASE_S_MAX. -EINVAL
 * otherwise, with no message (the caller names where it was written). */
int deadline_parse_s(const char *v, size_t n, unsigned *out);

/* CLOCK_MONOTONIC now, in milliseconds. */
uint64_t deadline_now_ms(void);

/* The CLOCK_MONOTONIC time `ms` milliseconds from now, for
 * pthread_cond_timedwait() on a condition variable set to that clock. */
struct timespec deadline_abs(uint64_t ms);

#endif
