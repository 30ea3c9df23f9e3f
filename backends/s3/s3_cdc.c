/* s3_cdc.c - FastCDC content-defined chunking (Xia et al., USENIX ATC
 * 2016: gear hash, normalized chunking with a harder mask before the
 * average size and an easier one after): 64 KiB minimum, 256 KiB average,
 * 1 MiB maximum (docs/s3.md "Chunks").
 * Written here because Debian ships no C library for it. */
#include "backends/s3/s3_internal.h"

#include <pthread.h>

/* The gear table: 256 pseudo-random words from splitmix64 with a fixed
 * seed. Any fixed table works; changing it changes every cut point, so
 * it is part of the format: never change it. */
static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
	uint64_t x = 0x73746f7265667321ull; /* "storefs!" */

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		gear[i] = z ^ (z >> 31);
	}
}

/* Normalized chunking: 18 bits before the normal size of 256 KiB (a cut
 * there 1 in 2^18 bytes), 16 after (1 in 2^16), so chunks crowd around
 * 256 KiB (240 KiB on average over random bytes). The bits are spread
 * over 16..63, so each depends on 17 to 64 bytes of input. The hard mask
 * is the easy one plus two bits: every cut taken before the normal size is
 * also a candidate after it, so two chunkings that started at different
 * offsets (after a change) take the same cuts again sooner. Measured with
 * s3_cdc_cut() over 300 random 16 MiB inputs with 1 MiB changed in the
 * middle: 1.44 MiB of new chunks on average, more than 2 MiB for 5 of
 * the 300; the former masks (20 and 16 bits sharing 3, 128 KiB minimum,
 * 512 KiB maximum) stored 1.97 MiB on average, more than 2 MiB for 108
 * (docs/s3.md "Chunks"). Part of the format: never change them. */
#define MASK_EASY 0x0a250a90227c0000ull
#define MASK_HARD 0x1a250e90227c0000ull

size_t s3_cdc_cut(const uint8_t *buf, size_t len)
{
	size_t i = S3_CDC_MIN, normal = S3_CDC_AVG, n = len < S3_CDC_MAX ? len : S3_CDC_MAX;
	uint64_t fp = 0;

	pthread_once(&gear_once, gear_init);
	if (len <= S3_CDC_MIN)
		return len;
	if (normal > n)
		normal = n;
	for (; i < normal; i++) {
		fp = (fp << 1) + gear[buf[i]];
		if (!(fp & MASK_HARD))
			return i + 1;
	}
	for (; i < n; i++) {
		fp = (fp << 1) + gear[buf[i]];
		if (!(fp & MASK_EASY))
			return i + 1;
	}
	return n;
}
