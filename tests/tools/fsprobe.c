/* fsprobe.c - one file system call, its outcome printed as one line
 * ("OP PATH: ok DETAILS" or "OP PATH: ENAME"), so that two mounts of the
 * same store (the FUSE mount on the host, virtio-fs in a guest) can be
 * compared by their output. t70-virtiofs.sh links it statically for the
 * guest. Usage: fsprobe OP PATH [ARG] */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

static int report(const char *op, const char *path, int rc, const char *details)
{
	const char *name = rc < 0 ? strerrorname_np(errno) : NULL;

	printf("%s %s: %s%s%s\n", op, path, rc < 0 ? (name ? name : "?") : "ok",
	       details && rc >= 0 ? " " : "", details && rc >= 0 ? details : "");
	return 0;
}

/* Entries of a directory, or the error of opendir/readdir. */
static int probe_readdir(const char *path)
{
	DIR *d = opendir(path);
	char buf[32];
	long n = 0;

	if (!d)
		return report("readdir", path, -1, NULL);
	errno = 0;
	while (readdir(d))
		n++;
	if (errno) {
		int e = errno;

		closedir(d);
		errno = e;
		return report("readdir", path, -1, NULL);
	}
	closedir(d);
	snprintf(buf, sizeof(buf), "%ld entries", n);
	return report("readdir", path, 0, buf);
}

static int probe_open(const char *op, const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd >= 0)
		close(fd);
	return report(op, path, fd, NULL);
}

static int probe_getxattr(const char *path, const char *name)
{
	char buf[256];
	ssize_t n = getxattr(path, name, buf, sizeof(buf) - 1);

	if (n >= 0)
		buf[n] = '\0';
	return report("getxattr", path, n < 0 ? -1 : 0, n >= 0 ? buf : NULL);
}

static int probe_listxattr(const char *path)
{
	char buf[256];
	ssize_t n = listxattr(path, buf, sizeof(buf) - 1);

	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = i + 1 < n ? ',' : '\0';
	if (n >= 0)
		buf[n] = '\0';
	return report("listxattr", path, n < 0 ? -1 : 0, n >= 0 ? buf : NULL);
}

static int probe_readlink(const char *path)
{
	char buf[4096];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n >= 0)
		buf[n] = '\0';
	return report("readlink", path, n < 0 ? -1 : 0, n >= 0 ? buf : NULL);
}

static int probe_statfs(const char *path)
{
	struct statvfs sv;
	char buf[64];
	int rc = statvfs(path, &sv);

	snprintf(buf, sizeof(buf), "bsize=%lu namemax=%lu", sv.f_bsize, sv.f_namemax);
	return report("statfs", path, rc, rc == 0 ? buf : NULL);
}

int main(int argc, char **argv)
{
	const char *op = argc > 2 ? argv[1] : "", *p = argc > 2 ? argv[2] : "";
	const char *arg = argc > 3 ? argv[3] : "x";
	struct stat st;

	if (!strcmp(op, "readdir"))
		return probe_readdir(p);
	if (!strcmp(op, "stat"))
		return report(op, p, lstat(p, &st), NULL);
	if (!strcmp(op, "open-r"))
		return probe_open(op, p, O_RDONLY);
	if (!strcmp(op, "open-w"))
		return probe_open(op, p, O_WRONLY);
	if (!strcmp(op, "creat"))
		return probe_open(op, p, O_WRONLY | O_CREAT | O_EXCL);
	if (!strcmp(op, "mkdir"))
		return report(op, p, mkdir(p, 0755), NULL);
	if (!strcmp(op, "rmdir"))
		return report(op, p, rmdir(p), NULL);
	if (!strcmp(op, "unlink"))
		return report(op, p, unlink(p), NULL);
	if (!strcmp(op, "rename"))
		return report(op, p, rename(p, arg), NULL);
	if (!strcmp(op, "symlink"))
		return report(op, p, symlink(arg, p), NULL);
	if (!strcmp(op, "chmod"))
		return report(op, p, chmod(p, 0777), NULL);
	if (!strcmp(op, "truncate"))
		return report(op, p, truncate(p, 0), NULL);
	if (!strcmp(op, "setxattr"))
		return report(op, p, setxattr(p, "user.x", "1", 1, 0), NULL);
	if (!strcmp(op, "getxattr"))
		return probe_getxattr(p, arg);
	if (!strcmp(op, "listxattr"))
		return probe_listxattr(p);
	if (!strcmp(op, "readlink"))
		return probe_readlink(p);
	if (!strcmp(op, "statfs"))
		return probe_statfs(p);
	fprintf(stderr, "usage: fsprobe OP PATH [ARG]\n");
	return 2;
}
