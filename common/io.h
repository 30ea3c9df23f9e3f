/* io.h - whole reads and writes on file descriptors: the loops every
 * caller would otherwise write by hand (short transfers, EINTR).
 *
 * These return 0 or -errno of the failed call and record no message: the
 * caller knows what it was reading or writing and reports it, usually
 * with sf_err_sys(). */
#ifndef STOREFS_IO_H
#define STOREFS_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all `len` bytes of `buf`. */
int write_all(int fd, const void *buf, size_t len);

/* Reads until `len` bytes or end of file: *got < len only at end of file. */
int read_full(int fd, void *buf, size_t len, size_t *got);

/* As read_full(), from offset `off` (pread: the file offset is unused). */
int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got);

/* One read(): what it returned, or -errno; EINTR is retried. For streams,
 * where a short read is normal, and for the one read a regular file of
 * known size needs. */
ssize_t read_retry(int fd, void *buf, size_t len);

#endif
