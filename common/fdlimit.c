/* fdlimit.c - the descriptor budget, see fdlimit.h. */
#include "common/fdlimit.h"

#include <sys/resource.h>

#define FDLIMIT_CAP (1u << 20)

static unsigned capped(rlim_t v)
{
	return v == RLIM_INFINITY || v > FDLIMIT_CAP ? FDLIMIT_CAP : (unsigned)v;
}

unsigned fdlimit_soft(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024; /* the usual default; cannot happen on Linux */
	return capped(rl.rlim_cur);
}

unsigned fdlimit_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		/* Ignored: the limit read back below is the one that counts. */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return fdlimit_soft();
}

unsigned fdlimit_cache_size(unsigned min, unsigned max)
{
	unsigned soft = fdlimit_soft();
	unsigned n = soft > FDLIMIT_RESERVE ? (soft - FDLIMIT_RESERVE) / 2 : 0;

	return n < min ? min : n > max ? max : n;
}
