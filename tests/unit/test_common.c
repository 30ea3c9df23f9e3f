/* test_common.c - common/: the error convention's errno mapping, the
 * whole-read/whole-write helpers, secret files, the deadline written in a
 * URL. */
#include "harness.h"

#include "common/deadline.h"
#include "common/err.h"
#include "common/io.h"
#include "common/secret_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(err_sys_keeps_actionable_errnos)
{
	static const int kept[] = {ENOSPC, EDQUOT,  EROFS,  EACCES, EPERM,
				   ENOENT, ENOTDIR, EMFILE, ENFILE, ENOMEM};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		CHECK_EQ(sf_errno_code(kept[i]), -kept[i]);
	CHECK_EQ(sf_errno_code(EBADF), -EIO);
	CHECK_EQ(sf_errno_code(ELOOP), -EIO);
	CHECK_EQ(sf_errno_code(EIO), -EIO);
}

TEST(err_sys_records_the_cause)
{
	CHECK_EQ(sf_err_sys(EXDEV, "cannot move '%s'", "x"), -EIO);
	CHECK_STR(sf_errmsg(-EIO), "cannot move 'x': Invalid cross-device link");
	CHECK_EQ(sf_err_sys(ENOSPC, "cannot write"), -ENOSPC);
	CHECK_STR(sf_errmsg(-ENOSPC), "cannot write: No space left on device");
	sf_err_clear();
}

TEST(io_write_all_and_read_full_over_a_pipe)
{
	static char big[200000], back[200001];
	int p[2];
	size_t got = 0;
	pid_t pid;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	CHECK(pipe(p) == 0);
	/* More than a pipe holds: the writer must loop over short writes. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(write_all(p[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(p[1]);
	CHECK_OK(read_full(p[0], back, sizeof(back), &got));
	close(p[0]);
	CHECK_EQ(got, sizeof(big)); /* short only at end of file */
	CHECK(memcmp(big, back, sizeof(big)) == 0);
}

TEST(io_pread_full_and_errors)
{
	char path[] = "/tmp/storefs-io-XXXXXX", buf[8];
	int fd = mkstemp(path);
	size_t got = 0;

	CHECK(fd >= 0);
	unlink(path);
	CHECK_OK(write_all(fd, "0123456789", 10));
	CHECK_OK(pread_full(fd, buf, sizeof(buf), 4, &got));
	CHECK_EQ(got, 6);
	CHECK(memcmp(buf, "456789", 6) == 0);
	close(fd);
	CHECK_ERR(write_all(fd, "x", 1), -EBADF);
	CHECK_ERR(read_full(fd, buf, 1, &got), -EBADF);
	CHECK_EQ(read_retry(fd, buf, 1), -EBADF);
}

/* Writes `len` bytes of `data` to a new file in `dir` named `name`. */
static void put_file(const char *dir, const char *name, const char *data, size_t len, char *path)
{
	int fd;

	snprintf(path, 256, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		write_all(fd, data, len);
		close(fd);
	}
}

TEST(secret_file_rule)
{
	char dir[] = "/tmp/storefs-secret-XXXXXX", path[256], *s = NULL, big[SECRET_FILE_MAX + 1];
	size_t len = 0;

	CHECK(mkdtemp(dir) != NULL);
	put_file(dir, "ok", "s3cret\r\n\n", 9, path);
	CHECK_OK(secret_file_load(path, "upload token", &s, &len));
	CHECK(len == 6 && !strcmp(s, "s3cret"));
	secret_free(s);
	put_file(dir, "empty", "\n", 1, path);
	CHECK_ERR(secret_file_load(path, "upload token", &s, &len), -EINVAL);
	CHECK(strstr(sf_errmsg(-EINVAL), "is empty") != NULL);
	put_file(dir, "space", "a b\n", 4, path);
	CHECK_ERR(secret_file_load(path, "upload token", &s, &len), -EINVAL);
	/* The message names the file, never the secret. */
	CHECK(strstr(sf_errmsg(-EINVAL), "space or control") && !strstr(sf_errmsg(-EINVAL), "a b"));
	memset(big, 'x', sizeof(big));
	put_file(dir, "big", big, sizeof(big), path);
	CHECK_ERR(secret_file_load(path, "upload token", &s, &len), -EINVAL);
	put_file(dir, "max", big, SECRET_FILE_MAX, path);
	CHECK_OK(secret_file_load(path, "upload token", &s, &len));
	CHECK(len == SECRET_FILE_MAX);
	secret_free(s);
	CHECK_ERR(secret_file_load(dir, "upload token", &s, &len), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing", dir);
	CHECK_ERR(secret_file_load(path, "upload token", &s, &len), -ENOENT);
	secret_free(NULL);
	for (const char *n = "ok\0empty\0space\0big\0max\0"; *n; n += strlen(n) + 1) {
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		unlink(path);
	}
	rmdir(dir);
}

TEST(deadline_parse_seconds)
{
	static const char *const bad[] = {
	    "", "0", "00", "-1", "+5", "5s", " 5", "86401", "99999999999999999999999"};
	unsigned s = 0;

	CHECK_OK(deadline_parse_s("7", 1, &s));
	CHECK_EQ(s, 7u);
	CHECK_OK(deadline_parse_s("86400&x", 5, &s));
	CHECK_EQ(s, 86400u);
	CHECK_OK(deadline_parse_s("0012", 4, &s));
	CHECK_EQ(s, 12u);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(deadline_parse_s(bad[i], strlen(bad[i]), &s) == -EINVAL, "accepted '%s'",
			  bad[i]);
}
