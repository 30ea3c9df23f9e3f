/* local_map.c - giving back the pages of LMDB's map that a read touched.
 *
 * LMDB reads through a shared read-only mapping of its file, so every
 * record a long-lived reader (a mount) has copied out stays mapped and
 * counts in its resident size, though the page cache, not the process,
 * holds it. A mount reads each Directory once per population and each
 * small blob once per open, and keeps only its own copy: the mapping of
 * those bytes is dropped right away (the pages stay in the page cache; a
 * later read faults them back in without I/O). */
#include "backends/local/local_internal.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void local_map_drop(const MDB_val *v)
{
	static long page;
	uintptr_t start, end;

	if (!page)
		page = sysconf(_SC_PAGESIZE);
	if (page <= 0 || v->mv_size < (size_t)page)
		return;
	/* Only whole pages inside the value: those hold no other record
	 * (a value of a page or more lives on pages of its own). */
	start = ((uintptr_t)v->mv_data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	end = ((uintptr_t)v->mv_data + v->mv_size) & ~((uintptr_t)page - 1);
	/* Best effort: on failure the pages simply stay mapped. */
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_DONTNEED);
}

void local_map_span_add(struct local_map_span *s, const MDB_val *v)
{
	uintptr_t a = (uintptr_t)v->mv_data, b = a + v->mv_size;

	if (!s->hi || a < s->lo)
		s->lo = a;
	if (b > s->hi)
		s->hi = b;
}

void local_map_span_drop(const struct local_map_span *s)
{
	MDB_val v = {s->hi - s->lo, (void *)s->lo};

	if (s->hi > s->lo)
		local_map_drop(&v);
}
