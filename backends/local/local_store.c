/* local_store.c - opens a local store directory: marker, layout, import
 * lock, and the bundle of its three services. */
#include "backends/local/local_internal.h"

#include "common/err.h"
#include "common/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MARKER_MAX	  256
#define MARKER_TMP_PREFIX "." LOCAL_STORE_MARKER "."

#define USAGE_TTL_S 5

/* --- the store directory and its marker --- */

/* mkdir -p: creates `path` and its missing parents. */
static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return sf_err(-ENAMETOOLONG, "store path '%s' is too long", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return sf_err_sys(errno, "cannot create '%s'", buf);
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return sf_err_sys(errno, "cannot create store '%s'", path);
	return 0;
}

/* Opens the store directory, creating it if allowed. */
static int store_dir_open(const char *dir, unsigned flags, int *out)
{
	bool may_create = (flags & STORE_OPEN_CREATE) && !(flags & STORE_OPEN_READONLY);
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && may_create) {
		rc = mkdir_parents(dir);
		if (rc < 0)
			return rc;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 && errno == ENOENT)
		return sf_err(-ENOENT, "store '%s' does not exist", dir);
	if (fd < 0 && errno == ENOTDIR)
		return sf_err(-ENOTDIR, "store '%s' is not a directory", dir);
	if (fd < 0)
		return sf_err_sys(errno, "cannot open store '%s'", dir);
	*out = fd;
	return 0;
}

/* Empty, ignoring markers half-written by a concurrent creator. */
static int dir_is_empty(int rootfd, bool *empty)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		int rc = -errno;

		if (fd >= 0)
			close(fd);
		return rc;
	}
	*empty = true;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strncmp(de->d_name, MARKER_TMP_PREFIX, sizeof(MARKER_TMP_PREFIX) - 1)) {
			*empty = false;
			break;
		}
	}
	closedir(d);
	return 0;
}

/* The version of a first line "storefs local store N", or 0. */
static int marker_version(const char *line)
{
	size_t n = sizeof(LOCAL_STORE_MAGIC) - 1;

	if (strncmp(line, LOCAL_STORE_MAGIC " ", n + 1) || strlen(line) != n + 2)
		return 0;
	return line[n + 1] >= '1' && line[n + 1] <= '9' ? line[n + 1] - '0' : 0;
}

static int marker_parse(const char *dir, char *text, enum dir_size_formula *f, int *format)
{
	char *nl = strchr(text, '\n');
	char *second = nl ? nl + 1 : NULL;
	size_t slen;

	if (nl)
		*nl = '\0';
	*format = marker_version(text);
	if (*format < 1 || *format > LOCAL_STORE_FORMAT) {
		if (!strncmp(text, LOCAL_STORE_MAGIC " ", sizeof(LOCAL_STORE_MAGIC)))
			return sf_err(-EINVAL, "store '%s' has format '%s', not '%s 1' or '%s %d'",
				      dir, text, LOCAL_STORE_MAGIC, LOCAL_STORE_MAGIC,
				      LOCAL_STORE_FORMAT);
		return sf_err(-EINVAL, "'%s' is not a storefs store", dir);
	}
	slen = second ? strlen(second) : 0;
	if (slen && second[slen - 1] == '\n')
		second[--slen] = '\0';
	if (second && !strcmp(second, "dir-size spec"))
		*f = DIR_SIZE_SPEC;
	else if (second && !strcmp(second, "dir-size native"))
		*f = DIR_SIZE_NATIVE;
	else
		return sf_err(-EINVAL, "store marker '%s/%s' is damaged", dir, LOCAL_STORE_MARKER);
	return 0;
}

/* -ENOENT (no message) if there is no marker. */
static int marker_read(int rootfd, const char *dir, enum dir_size_formula *f, int *format)
{
	char text[MARKER_MAX + 1];
	size_t n = 0;
	int fd = openat(rootfd, LOCAL_STORE_MARKER, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s/%s'", dir, LOCAL_STORE_MARKER);
	rc = read_full(fd, text, MARKER_MAX, &n);
	close(fd);
	if (rc < 0)
		return sf_err_sys(-rc, "cannot read '%s/%s'", dir, LOCAL_STORE_MARKER);
	text[n] = '\0';
	if (n != strlen(text))
		return sf_err(-EINVAL, "store marker '%s/%s' is damaged", dir, LOCAL_STORE_MARKER);
	return marker_parse(dir, text, f, format);
}

/* Writes the marker under a temporary name and links it into place, so a
 * concurrent creator either wins or sees a complete marker. */
static int marker_write(int rootfd, const char *dir, enum dir_size_formula f, int format, char *tmp,
			size_t tmplen)
{
	char text[MARKER_MAX];
	int len = snprintf(text, sizeof(text), "%s %d\ndir-size %s\n", LOCAL_STORE_MAGIC, format,
			   f == DIR_SIZE_NATIVE ? "native" : "spec");
	int fd, rc = 0;

	snprintf(tmp, tmplen, MARKER_TMP_PREFIX "%ld", (long)getpid());
	fd = openat(rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (fd < 0)
		return sf_err_sys(errno, "cannot create a marker in '%s'", dir);
	rc = write_all(fd, text, (size_t)len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc < 0)
		rc = sf_err_sys(-rc, "cannot write a marker in '%s'", dir);
	close(fd);
	return rc;
}

/* Format 2 from now on (docs/store-format.md "Format versions"): the marker
 * is replaced whole (rename), and the store directory synced, before the
 * first inline blob is committed, so no format-1 reader meets one. */
int local_marker_upgrade(int rootfd, const char *dir)
{
	enum dir_size_formula f;
	char tmp[64];
	int format, rc = marker_read(rootfd, dir, &f, &format);

	if (rc == -ENOENT)
		rc = sf_err(-EIO, "store marker '%s/%s' is gone", dir, LOCAL_STORE_MARKER);
	if (rc < 0 || format >= 2)
		return rc;
	rc = marker_write(rootfd, dir, f, 2, tmp, sizeof(tmp));
	if (rc == 0 && renameat(rootfd, tmp, rootfd, LOCAL_STORE_MARKER) < 0)
		rc = sf_err_sys(errno, "cannot replace '%s/%s'", dir, LOCAL_STORE_MARKER);
	if (rc == 0 && fsync(rootfd) < 0)
		rc = sf_err_sys(errno, "cannot sync '%s'", dir);
	if (rc < 0)
		unlinkat(rootfd, tmp, 0); /* ignored: the next writer of this pid truncates it */
	return rc;
}

static int marker_create(int rootfd, const char *dir, enum dir_size_formula f)
{
	char tmp[64];
	int rc = marker_write(rootfd, dir, f, 1, tmp, sizeof(tmp));

	if (rc == 0 && linkat(rootfd, tmp, rootfd, LOCAL_STORE_MARKER, 0) < 0 && errno != EEXIST)
		rc = sf_err_sys(errno, "cannot create '%s/%s'", dir, LOCAL_STORE_MARKER);
	/* Ignored: a leftover is truncated by the next creator of this pid. */
	unlinkat(rootfd, tmp, 0);
	return rc;
}

/* Reads the marker; initialises an empty directory when allowed. */
static int store_marker(int rootfd, const char *dir, unsigned flags, enum dir_size_formula *f,
			int *format)
{
	enum dir_size_formula want =
	    flags & STORE_OPEN_NATIVE_SIZE ? DIR_SIZE_NATIVE : DIR_SIZE_SPEC;
	bool empty = false;
	int rc = marker_read(rootfd, dir, f, format);

	if (rc != -ENOENT)
		return rc;
	rc = dir_is_empty(rootfd, &empty);
	if (rc < 0)
		return sf_err_sys(-rc, "cannot list '%s'", dir);
	if (!empty)
		return sf_err(-EINVAL, "'%s' is not a storefs store", dir);
	if (!(flags & STORE_OPEN_CREATE) || (flags & STORE_OPEN_READONLY))
		return sf_err(-ENOENT, "store '%s' does not exist", dir);
	rc = marker_create(rootfd, dir, want);
	return rc < 0 ? rc : marker_read(rootfd, dir, f, format);
}

static int store_layout(int rootfd, const char *dir)
{
	static const char *const subdirs[] = {LOCAL_BLOBS_DIR, LOCAL_TMP_DIR, LOCAL_DB_DIR,
					      LOCAL_NOTIFY_DIR};

	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++)
		if (mkdirat(rootfd, subdirs[i], 0755) < 0 && errno != EEXIST)
			return sf_err_sys(errno, "cannot create '%s/%s'", dir, subdirs[i]);
	return 0;
}

/* --- the import lock --- */

static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int import_lock(int rootfd, const char *dir, bool wait, int *out)
{
	char pid[32];
	int n, fd = openat(rootfd, LOCAL_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s/%s'", dir, LOCAL_LOCK_FILE);
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		if (e == EWOULDBLOCK) {
			long holder = lock_holder(fd);

			close(fd);
			if (holder <= 0)
				return sf_err(-EBUSY, "store '%s' is locked by another import",
					      dir);
			return sf_err(-EBUSY, "store '%s' is locked by another import (pid %ld)",
				      dir, holder);
		}
		close(fd);
		return sf_err_sys(e, "cannot lock '%s/%s'", dir, LOCAL_LOCK_FILE);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* The pid is only informative; the lock itself is held. */
	}
	*out = fd;
	return 0;
}

static void local_store_close(struct store *st)
{
	struct local_store *ls = (struct local_store *)st;

	if (ls->lock_fd >= 0) {
		if (ftruncate(ls->lock_fd, 0) < 0) {
			/* a stale pid in the file is harmless */
		}
		close(ls->lock_fd);
	}
	if (ls->collect_fd >= 0)
		close(ls->collect_fd);
	if (ls->rootfd >= 0)
		close(ls->rootfd);
	free(ls->root);
	if (ls->env)
		local_env_unref(ls->env);
	pthread_mutex_destroy(&ls->usage_lock);
}

/* --- assembly --- */

static int store_services(struct local_store *ls, int rootfd, const char *dir, unsigned flags)
{
	bool ro = flags & STORE_OPEN_READONLY;
	char db[PATH_MAX], abs[PATH_MAX];
	struct local_env *env;
	int rc;

	/* Services name files by absolute path, immune to later chdir(). */
	if (!realpath(dir, abs))
		return sf_err_sys(errno, "cannot resolve store path '%s'", dir);
	if (snprintf(db, sizeof(db), "%s/%s", abs, LOCAL_DB_DIR) >= (int)sizeof(db))
		return sf_err(-ENAMETOOLONG, "store path '%s' is too long", dir);
	rc = local_env_open(db, ro, &env);
	if (rc < 0)
		return rc;
	rc = local_blobs_new(env, rootfd, abs, ro, &ls->base.blobs);
	if (rc == 0)
		rc = local_dirs_new(env, ro, &ls->base.dirs);
	if (rc == 0)
		rc = local_paths_new(env, rootfd, abs, ro, &ls->base.paths);
	ls->env = env; /* our reference, for store_usage() */
	if (rc == 0 && !(ls->root = strdup(abs)))
		rc = -ENOMEM;
	if (rc == 0 && (ls->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
		rc = sf_err_errno(-EIO, errno, "cannot open store '%s'", dir);
	return rc;
}

static int store_prepare(struct local_store *ls, int rootfd, const char *dir, unsigned flags)
{
	int format = 1;
	int rc = store_marker(rootfd, dir, flags, &ls->base.size_formula, &format);

	if (rc == 0 && !(flags & STORE_OPEN_READONLY)) {
		rc = store_layout(rootfd, dir);
		if (rc == 0)
			local_blobs_clean_tmp(rootfd);
	}
	if (rc == 0 && (flags & STORE_OPEN_IMPORT))
		rc = import_lock(rootfd, dir, flags & STORE_OPEN_WAIT, &ls->lock_fd);
	if (rc == 0)
		rc = store_services(ls, rootfd, dir, flags);
	if (rc == 0)
		local_env_format_seen(ls->env, format);
	return rc;
}

/* --- the optional operations of struct store --- */

static int local_store_blobs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return local_blobs_each(st->blobs, cb, ctx);
}

static int local_store_blob_check(struct store *st, const struct b3_digest *digest, uint64_t *size)
{
	return local_blobs_check(st->blobs, digest, size);
}

static int local_store_quarantine_each(struct store *st, store_quarantine_fn cb, void *ctx)
{
	return local_blobs_quarantine_each(st->blobs, cb, ctx);
}

static int local_store_dirs_each(struct store *st, store_digest_fn cb, void *ctx)
{
	return local_dirs_each(st->dirs, cb, ctx);
}

/* One LMDB transaction per registration: the staged Directories are held
 * in memory and written with the PathInfo. */
static int local_store_stage_dirs(struct store *st, struct dir_service **out)
{
	return local_dirs_stage_new(st->dirs, out);
}

static int local_store_commit_path(struct store *st, struct dir_service *stage,
				   const struct path_info *pi, enum path_info_put_result *res)
{
	if (!local_dirs_is_stage(stage))
		return sf_err(-EINVAL, "directories were not staged by this local store");
	return local_paths_put_with(st->paths, stage, pi, res);
}

static int local_store_usage(struct store *st, struct store_usage *out)
{
	struct local_store *ls = (struct local_store *)st;
	struct timespec now;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&ls->usage_lock);
	if (!ls->counted || now.tv_sec - ls->usage_at.tv_sec >= USAGE_TTL_S) {
		rc = local_env_usage(ls->env, &ls->usage);
		ls->counted = rc == 0;
		ls->usage_at = now;
	}
	*out = ls->usage;
	pthread_mutex_unlock(&ls->usage_lock);
	return rc;
}

static void local_store_set_ops(struct store *st)
{
	st->close = local_store_close;
	st->stage_dirs = local_store_stage_dirs;
	st->commit_path = local_store_commit_path;
	st->blobs_each = local_store_blobs_each;
	st->blob_check = local_store_blob_check;
	st->quarantine_each = local_store_quarantine_each;
	st->dirs_each = local_store_dirs_each;
	local_gc_set_ops(st);
	local_writers_set_ops(st);
	local_index_set_ops(st);
	st->usage = local_store_usage;
}

int local_store_open(const char *dir, unsigned flags, struct store **out)
{
	struct local_store *ls;
	int rootfd = -1, rc;

	if (!dir || !*dir)
		return sf_err(-EINVAL, "store directory name is empty");
	if ((flags & STORE_OPEN_READONLY) && (flags & STORE_OPEN_IMPORT))
		return sf_err(-EINVAL, "an import cannot open store '%s' read-only", dir);
	rc = store_dir_open(dir, flags, &rootfd);
	if (rc < 0)
		return rc;
	ls = calloc(1, sizeof(*ls));
	if (!ls || !(ls->base.location = strdup(dir))) {
		free(ls);
		close(rootfd);
		return -ENOMEM;
	}
	ls->lock_fd = ls->collect_fd = ls->rootfd = -1;
	pthread_mutex_init(&ls->usage_lock, NULL);
	local_store_set_ops(&ls->base);
	rc = store_prepare(ls, rootfd, dir, flags);
	close(rootfd);
	if (rc < 0) {
		store_free(&ls->base);
		return rc;
	}
	*out = &ls->base;
	return 0;
}
