/* local_gc.c - roots and collection for a local store (docs/gc.md):
 *
 *	<dir>/gcroots/<name>	a symlink to /nix/store/<hash>-<name> (or a file
 *				holding that path): a root
 *	<dir>/temproots/<pid>	store paths a running process (a mount) uses,
 *				one basename per line, appended
 *	<dir>/gc.lock		shared while a temporary root is appended,
 *				exclusive while a collection runs */
#include "backends/local/local_internal.h"
#include "store/gc.h"

#include "common/err.h"
#include "common/log.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static struct local_store *ls_of(struct store *st)
{
	return (struct local_store *)st;
}

static int mkdir_in(struct local_store *ls, const char *name)
{
	if (mkdirat(ls->rootfd, name, 0755) < 0 && errno != EEXIST)
		return sf_err_errno(-errno, errno, "cannot create '%s/%s'", ls->root, name);
	return 0;
}

/* --- roots --- */

static int local_root_add(struct store *st, const char *name, const struct store_path *p)
{
	struct local_store *ls = ls_of(st);
	char full[STORE_PATH_FULL_MAX], tmp[STORE_ROOT_NAME_MAX + 64],
	    rel[STORE_ROOT_NAME_MAX + 16];
	int rc = store_root_name_check(name);

	if (rc == 0)
		rc = mkdir_in(ls, LOCAL_ROOTS_DIR);
	if (rc < 0)
		return rc;
	store_path_full(p, full);
	snprintf(tmp, sizeof(tmp), LOCAL_ROOTS_DIR "/.%ld.%s", (long)getpid(), name);
	snprintf(rel, sizeof(rel), LOCAL_ROOTS_DIR "/%s", name);
	unlinkat(ls->rootfd, tmp, 0);
	if (symlinkat(full, ls->rootfd, tmp) < 0)
		return sf_err_errno(-errno, errno, "cannot create root '%s'", name);
	/* Renamed into place: a root is replaced, never missing. */
	if (renameat(ls->rootfd, tmp, ls->rootfd, rel) < 0) {
		rc = sf_err_errno(-errno, errno, "cannot create root '%s'", name);
		unlinkat(ls->rootfd, tmp, 0);
	}
	return rc;
}

static int local_root_remove(struct store *st, const char *name)
{
	struct local_store *ls = ls_of(st);
	char rel[STORE_ROOT_NAME_MAX + 16];
	int rc = store_root_name_check(name);

	if (rc < 0)
		return rc;
	snprintf(rel, sizeof(rel), LOCAL_ROOTS_DIR "/%s", name);
	if (unlinkat(ls->rootfd, rel, 0) < 0)
		return errno == ENOENT
			   ? sf_err(-ENOENT, "there is no root named '%s'", name)
			   : sf_err_errno(-errno, errno, "cannot remove root '%s'", name);
	return 0;
}

/* The target of root `name`: a symlink's target, or a file's first line. */
static int root_target(int dirfd, const char *name, char *buf, size_t len)
{
	ssize_t n = readlinkat(dirfd, name, buf, len - 1);
	int fd;

	if (n < 0 && errno == EINVAL) {
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		n = fd >= 0 ? read(fd, buf, len - 1) : -1;
		if (fd >= 0)
			close(fd);
	}
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int roots_each(struct local_store *ls, store_root_fn cb, void *ctx)
{
	char target[PATH_MAX];
	struct store_path p;
	struct dirent *de;
	DIR *d = local_opendirat(ls->rootfd, LOCAL_ROOTS_DIR);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0
				       : sf_err_errno(-EIO, errno, "cannot list '%s/%s'", ls->root,
						      LOCAL_ROOTS_DIR);
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		rc = root_target(dirfd(d), de->d_name, target, sizeof(target));
		if (rc == -ENOENT) {
			rc = 0;
			continue;
		}
		if (rc < 0) {
			rc = sf_err_errno(-EIO, -rc, "cannot read root '%s'", de->d_name);
			break;
		}
		if (store_path_parse(target, strlen(target), true, &p) < 0) {
			log_warn("root '%s/%s/%s' does not name a store path ('%s'); ignored",
				 ls->root, LOCAL_ROOTS_DIR, de->d_name, target);
			sf_err_clear();
			continue;
		}
		rc = cb(ctx, de->d_name, &p, false);
	}
	closedir(d);
	return rc;
}

/* --- temporary roots --- */

static int collect_lock_open(struct local_store *ls, int *out)
{
	int fd = openat(ls->rootfd, LOCAL_COLLECT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return sf_err_errno(-errno, errno, "cannot open '%s/%s'", ls->root,
				    LOCAL_COLLECT_LOCK);
	*out = fd;
	return 0;
}

static int flock_wait(int fd, int op)
{
	while (flock(fd, op) < 0)
		if (errno != EINTR)
			return sf_err_errno(-EIO, errno, "cannot lock the store's gc.lock");
	return 0;
}

/* Appends under a shared gc.lock, so a collection that holds it
 * exclusively has either read the line or makes us wait until it is done:
 * then the path is either kept or already gone when we look it up. */
static int local_temp_root_add(struct store *st, const struct store_path *p)
{
	struct local_store *ls = ls_of(st);
	char line[STORE_PATH_MAX_BASENAME + 2], rel[64];
	int lock = -1, fd, rc = mkdir_in(ls, LOCAL_TEMPROOTS_DIR);
	size_t len;

	if (rc == 0)
		rc = collect_lock_open(ls, &lock);
	if (rc < 0)
		return rc;
	rc = flock_wait(lock, LOCK_SH);
	snprintf(rel, sizeof(rel), LOCAL_TEMPROOTS_DIR "/%ld", (long)getpid());
	fd =
	    rc == 0 ? openat(ls->rootfd, rel, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
	if (rc == 0 && fd < 0)
		rc = sf_err_errno(-errno, errno, "cannot open '%s/%s'", ls->root, rel);
	if (fd >= 0) {
		store_path_basename(p, line);
		len = strlen(line);
		line[len++] = '\n';
		if (write(fd, line, len) != (ssize_t)len)
			rc = sf_err_errno(-EIO, errno, "cannot write '%s/%s'", ls->root, rel);
		close(fd);
	}
	close(lock);
	return rc;
}

static int local_collect_lock(struct store *st)
{
	struct local_store *ls = ls_of(st);
	int rc = ls->collect_fd >= 0 ? 0 : collect_lock_open(ls, &ls->collect_fd);

	if (rc == 0)
		rc = flock_wait(ls->collect_fd, LOCK_EX);
	return rc;
}

static bool pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Reports every line of one process's file; removes the file of a process
 * that is gone. */
static int temproots_file(struct local_store *ls, int dirfd, const char *name, store_root_fn cb,
			  void *ctx)
{
	char line[STORE_PATH_MAX_BASENAME + 2];
	struct store_path p;
	char *end;
	long pid = strtol(name, &end, 10);
	FILE *f;
	int fd, rc = 0;

	if (*end || end == name)
		return 0;
	if (!pid_alive(pid)) {
		unlinkat(dirfd, name, 0);
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? 0
				       : sf_err_errno(-EIO, errno, "cannot read temporary roots");
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (store_path_parse_basename(line, strlen(line), &p) < 0) {
			sf_err_clear();
			continue;
		}
		rc = cb(ctx, name, &p, true);
	}
	fclose(f);
	return rc;
}

static int temproots_each(struct local_store *ls, store_root_fn cb, void *ctx)
{
	struct dirent *de;
	DIR *d = local_opendirat(ls->rootfd, LOCAL_TEMPROOTS_DIR);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0
				       : sf_err_errno(-EIO, errno, "cannot list '%s/%s'", ls->root,
						      LOCAL_TEMPROOTS_DIR);
	while (rc == 0 && (de = readdir(d)))
		if (de->d_name[0] != '.')
			rc = temproots_file(ls, dirfd(d), de->d_name, cb, ctx);
	closedir(d);
	return rc;
}

static int local_roots_each(struct store *st, store_root_fn cb, void *ctx)
{
	struct local_store *ls = ls_of(st);
	int rc = roots_each(ls, cb, ctx);

	if (rc == 0 && ls->collect_fd >= 0)
		rc = temproots_each(ls, cb, ctx);
	return rc;
}

/* --- deletion --- */

static int local_paths_del(struct store *st, const struct store_path *v, size_t n)
{
	return local_paths_delete(st->paths, v, n);
}

static int local_dirs_del(struct store *st, const struct b3_digest *v, size_t n)
{
	return local_dirs_delete(st->dirs, v, n);
}

static int local_blob_del(struct store *st, const struct b3_digest *d,
			  const struct timespec *before, uint64_t *freed)
{
	return local_blobs_delete(st->blobs, d, before, freed);
}

static int local_describe(struct store *st, char *format, size_t len, uint64_t *db_bytes)
{
	struct local_store *ls = ls_of(st);
	struct stat sb;

	snprintf(format, len, "%s %d, dir-size %s", LOCAL_STORE_MAGIC,
		 atomic_load(&ls->env->format),
		 st->size_formula == DIR_SIZE_NATIVE ? "native" : "spec");
	if (fstatat(ls->rootfd, LOCAL_DB_DIR "/data.mdb", &sb, 0) < 0)
		return sf_err_errno(-EIO, errno, "cannot stat '%s/%s/data.mdb'", ls->root,
				    LOCAL_DB_DIR);
	*db_bytes = (uint64_t)sb.st_size;
	return 0;
}

void local_gc_set_ops(struct store *st)
{
	st->describe = local_describe;
	st->root_add = local_root_add;
	st->root_remove = local_root_remove;
	st->temp_root_add = local_temp_root_add;
	st->collect_lock = local_collect_lock;
	st->roots_each = local_roots_each;
	st->paths_delete = local_paths_del;
	st->dirs_delete = local_dirs_del;
	st->blob_delete = local_blob_del;
}
