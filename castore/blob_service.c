/* blob_service.c - helpers shared by every blob service backend. */
#include "castore/blob_service.h"

#include "common/err.h"

int blob_service_put(struct blob_service *s, const void *buf, size_t len, struct b3_digest *out)
{
	struct blob_writer *w;
	int rc = blob_service_open_write(s, &w);

	if (rc < 0)
		return rc;
	rc = blob_writer_write(w, buf, len);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	return blob_writer_commit(w, NULL, out);
}

int blob_reader_pread_full(struct blob_reader *r, void *buf, size_t len, uint64_t off)
{
	size_t n;
	int rc = blob_reader_pread(r, buf, len, off, &n);

	if (rc < 0)
		return rc;
	if (n != len)
		return sf_err(-EIO, "blob ends at %llu, before %llu", (unsigned long long)(off + n),
			      (unsigned long long)(off + len));
	return 0;
}
