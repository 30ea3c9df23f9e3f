/* err.c - thread-local error messages for the negative-errno convention. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[512];
static _Thread_local int err_code;

static int err_vset(int code, int saved_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int err_vset(int code, int saved_errno, const char *fmt, va_list ap)
{
	/* Formatted aside first: callers may wrap the previous message, e.g.
	 * sf_err(-EIO, "cannot read '%s': %s", name, sf_errmsg(rc)). */
	char buf[sizeof(err_msg)];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		buf[0] = '\0';
	if (saved_errno && n >= 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(saved_errno));
	memcpy(err_msg, buf, sizeof(err_msg));
	err_code = code;
	return code;
}

int sf_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int sf_err_errno(int code, int saved_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(code, saved_errno, fmt, ap);
	va_end(ap);
	return code;
}

int sf_errno_code(int saved_errno)
{
	switch (saved_errno) {
	case ENOSPC:
	case EDQUOT:
	case EROFS:
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENOTDIR:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return -saved_errno;
	default:
		return -EIO;
	}
}

int sf_err_sys(int saved_errno, const char *fmt, ...)
{
	int code = sf_errno_code(saved_errno);
	va_list ap;

	va_start(ap, fmt);
	err_vset(code, saved_errno, fmt, ap);
	va_end(ap);
	return code;
}

const char *sf_errmsg(int code)
{
	if (err_code == code && code != 0 && err_msg[0])
		return err_msg;
	return strerror(code < 0 ? -code : code);
}

void sf_err_clear(void)
{
	err_code = 0;
	err_msg[0] = '\0';
}
