/* secret_file.c - a secret read from a file (secret_file.h). */
#include "common/secret_file.h"

#include "common/err.h"
#include "common/io.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads at most SECRET_FILE_MAX + 1 bytes of a regular file: -1 if it is
 * not one or cannot be read. */
static ssize_t read_regular(int fd, char *buf)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return -1;
	return read_retry(fd, buf, SECRET_FILE_MAX + 1);
}

static int check(const char *file, const char *what, const char *s, size_t len)
{
	if (len == 0)
		return sf_err(-EINVAL, "%s file '%s' is empty", what, file);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return sf_err(-EINVAL, "%s in '%s' holds a space or control character",
				      what, file);
	return 0;
}

int secret_file_load(const char *file, const char *what, char **out, size_t *len)
{
	char buf[SECRET_FILE_MAX + 1];
	int fd = open(file, O_RDONLY | O_CLOEXEC), rc;
	ssize_t n;
	size_t l;

	if (fd < 0)
		return sf_err_sys(errno, "cannot open %s file '%s'", what, file);
	n = read_regular(fd, buf);
	close(fd);
	if (n < 0 || n > SECRET_FILE_MAX)
		return sf_err(-EINVAL, "%s file '%s' is not a regular file of at most %d bytes",
			      what, file, SECRET_FILE_MAX);
	l = (size_t)n;
	while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
		l--;
	rc = check(file, what, buf, l);
	if (rc == 0 && !(*out = strndup(buf, l)))
		rc = -ENOMEM;
	/* explicit_bzero: a memset before the buffer dies may be optimised away. */
	explicit_bzero(buf, sizeof(buf));
	if (rc == 0)
		*len = l;
	return rc;
}

void secret_free(char *secret)
{
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}
