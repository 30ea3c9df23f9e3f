/* deadline.c - see deadline.h. */
#include "common/deadline.h"

#include <errno.h>

uint64_t deadline_ms(const struct deadline_rule *r, uint64_t bytes)
{
	uint64_t base = r && r->base_s ? r->base_s : DEADLINE_BASE_S_DEFAULT;
	uint64_t rate = r && r->min_rate ? r->min_rate : DEADLINE_MIN_RATE_DEFAULT;
	/* bytes / rate in ms without overflow for any 64-bit size */
	uint64_t body = bytes / rate * 1000 + bytes % rate * 1000 / rate;

	return base * 1000 + body;
}

int deadline_parse_s(const char *v, size_t n, unsigned *out)
{
	unsigned long s = 0;

	for (size_t i = 0; i < n && s <= DEADLINE_BASE_S_MAX; i++)
		s = v[i] >= '0' && v[i] <= '9' ? s * 10 + (unsigned long)(v[i] - '0')
					       : DEADLINE_BASE_S_MAX + 1ul;
	if (s == 0 || s > DEADLINE_BASE_S_MAX)
		return -EINVAL;
	*out = (unsigned)s;
	return 0;
}

uint64_t deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct timespec deadline_abs(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}
