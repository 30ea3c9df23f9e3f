/* err.h - the one error convention of storefs.
 *
 * Every fallible function returns an int: 0 on success, a negative errno on
 * failure (-ENOENT, -EINVAL, -EIO, -ENOSPC, ...). Results go through
 * out-parameters that are left untouched on failure.
 *
 * The code that detects a failure describes it once with sf_err(), which
 * records a one-line message (git's style: lowercase, subject in quotes, no
 * full stop) in thread-local storage and returns the code, so the idiom is
 *
 *	return sf_err(-EINVAL, "name '%s' is too long", name);
 *
 * Callers that only pass a failure up do not add messages. The CLI prints
 * sf_errmsg(rc); the FUSE layer logs it. "Absent" is a normal result
 * (-ENOENT from a lookup) and is not recorded.
 *
 * A failed system call is reported with sf_err_sys(errno, ...): the code
 * keeps the errno a caller (or a user) can act on and folds the rest into
 * -EIO, whose message carries strerror() for the details.
 *
 * -ENOMEM carries no message: `return -ENOMEM;` is the whole idiom.
 * strerror(ENOMEM) says all there is to say, the place it happened is of
 * no use to the user, and formatting under memory pressure is best
 * avoided. (A stale message cannot show: sf_errmsg() only returns a
 * message recorded for the same code.)
 *
 * An error deliberately ignored gets a comment saying why. */
#ifndef STOREFS_ERR_H
#define STOREFS_ERR_H

#include <errno.h>

/* Records a message for the failure `code` (negative errno) and returns it. */
int sf_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As sf_err(), appending ": <strerror(errno)>" of the saved errno value. */
int sf_err_errno(int code, int saved_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The code to return for a failed system call's `saved_errno` (positive):
 * -ENOSPC, -EDQUOT (make room), -EROFS (read-only filesystem), -EACCES,
 * -EPERM (permissions), -ENOENT, -ENOTDIR (a path that is not there),
 * -EMFILE, -ENFILE (out of descriptors: close some and retry) and -ENOMEM
 * are kept; anything else is -EIO. */
int sf_errno_code(int saved_errno);

/* sf_err_errno(sf_errno_code(saved_errno), saved_errno, ...): the way to
 * report a failed system call. */
int sf_err_sys(int saved_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message recorded by the last sf_err() on this thread if it was for
 * `code`, else strerror(-code). Valid until the next sf_err() on the thread. */
const char *sf_errmsg(int code);

/* Forgets the recorded message (e.g. after an error was handled). */
void sf_err_clear(void);

#endif
