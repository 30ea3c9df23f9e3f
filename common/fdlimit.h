/* fdlimit.h - the process's descriptor budget (RLIMIT_NOFILE).
 *
 * The rule (docs/limits.md): at start every command raises its soft limit
 * to the hard limit, and caches that keep descriptors open size themselves
 * from the soft limit, leaving room for everything else the process opens
 * (LMDB, /dev/fuse clones, sockets, substituter downloads). */
#ifndef STOREFS_FDLIMIT_H
#define STOREFS_FDLIMIT_H

/* Descriptors kept for everything that is not a cache. */
#define FDLIMIT_RESERVE 128

/* Raises the soft RLIMIT_NOFILE to the hard limit (best effort: a failure
 * keeps the old limit) and returns the soft limit now in force, capped at
 * 1 << 20. */
unsigned fdlimit_raise(void);

/* The soft limit in force, capped at 1 << 20. */
unsigned fdlimit_soft(void);

/* How many descriptors a cache may keep open: half of what the reserve
 * leaves, between `min` and `max`. */
unsigned fdlimit_cache_size(unsigned min, unsigned max);

#endif
