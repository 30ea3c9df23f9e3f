/* local_blobs.c - blobs as plain read-only files, written to tmp/ while
 * hashed, then renamed into their content-addressed place. */
#include "backends/local/local_internal.h"

#include "common/encoding.h"
#include "common/err.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITE_BUF_SIZE (128 * 1024)
#define TMP_NAME_MAX   64

struct local_blobs {
	struct blob_service base;
	int rootfd;
	char *root;
	bool readonly;
	atomic_uint counter; /* makes temp names unique within the process */
};

struct local_reader {
	struct blob_reader base; /* base.fd is the blob file */
};

struct local_writer {
	struct blob_writer base;
	struct local_blobs *service;
	int fd;
	char tmp[sizeof(LOCAL_TMP_DIR) + TMP_NAME_MAX]; /* relative to rootfd */
	struct b3_hasher hasher;
	uint64_t size;
	size_t buffered;
	uint8_t buf[WRITE_BUF_SIZE];
};

void local_blob_relpath(const struct b3_digest *d, char *out)
{
	char hex[B3_HEX_LEN + 1];

	b3_digest_to_hex(d, hex);
	snprintf(out, LOCAL_BLOB_REL_MAX, LOCAL_BLOBS_DIR "/%.2s/%.2s/%s", hex, hex + 2, hex);
}

int local_blob_path(const char *dir, const struct b3_digest *d, char *buf, size_t len)
{
	char rel[LOCAL_BLOB_REL_MAX];
	int n;

	local_blob_relpath(d, rel);
	n = snprintf(buf, len, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= len)
		return sf_err(-ENAMETOOLONG, "blob path in '%s' is too long", dir);
	return 0;
}

static int local_stat(struct blob_service *bs, const struct b3_digest *d, uint64_t *size)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	char rel[LOCAL_BLOB_REL_MAX];
	struct stat st;

	local_blob_relpath(d, rel);
	if (fstatat(s->rootfd, rel, &st, 0) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return sf_err_errno(-EIO, errno, "cannot stat blob '%s/%s'", s->root, rel);
	}
	if (!S_ISREG(st.st_mode))
		return sf_err(-EIO, "blob '%s/%s' is not a regular file", s->root, rel);
	*size = (uint64_t)st.st_size;
	return 0;
}

/* --- readers --- */

static int local_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	size_t done = 0;

	while (done < len) {
		ssize_t got = pread(r->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return sf_err_errno(-EIO, errno, "cannot read blob file");
		if (got == 0)
			break;
		done += (size_t)got;
	}
	*n = done;
	return 0;
}

static void local_reader_close(struct blob_reader *r)
{
	close(r->fd);
	free(r);
}

static const struct blob_reader_ops local_reader_ops = {
    .pread = local_reader_pread,
    .close = local_reader_close,
};

static int local_open_read(struct blob_service *bs, const struct b3_digest *d,
			   struct blob_reader **out)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	char rel[LOCAL_BLOB_REL_MAX];
	struct local_reader *r;
	struct stat st;
	int fd;

	local_blob_relpath(d, rel);
	fd = openat(s->rootfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			   ? -ENOENT
			   : sf_err_errno(-EIO, errno, "cannot open blob '%s/%s'", s->root, rel);
	r = malloc(sizeof(*r));
	if (!r || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int rc =
		    r ? sf_err(-EIO, "blob '%s/%s' is not a readable file", s->root, rel) : -ENOMEM;

		free(r);
		close(fd);
		return rc;
	}
	r->base =
	    (struct blob_reader){.ops = &local_reader_ops, .size = (uint64_t)st.st_size, .fd = fd};
	*out = &r->base;
	return 0;
}

/* --- writers --- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int writer_drain(struct local_writer *w)
{
	int rc = write_all(w->fd, w->buf, w->buffered);

	w->buffered = 0;
	if (rc < 0)
		return sf_err_errno(rc == -ENOSPC ? -ENOSPC : -EIO, -rc,
				    "cannot write blob file '%s/%s'", w->service->root, w->tmp);
	return 0;
}

static int local_writer_write(struct blob_writer *bw, const void *buf, size_t len)
{
	struct local_writer *w = (struct local_writer *)bw;
	const uint8_t *p = buf;
	int rc;

	b3_hasher_update(&w->hasher, buf, len);
	w->size += len;
	while (len) {
		size_t n = WRITE_BUF_SIZE - w->buffered;

		if (n > len)
			n = len;
		memcpy(w->buf + w->buffered, p, n);
		w->buffered += n, p += n, len -= n;
		if (w->buffered == WRITE_BUF_SIZE && (rc = writer_drain(w)) < 0)
			return rc;
	}
	return 0;
}

static void local_writer_abort(struct blob_writer *bw)
{
	struct local_writer *w = (struct local_writer *)bw;

	if (w->fd >= 0)
		close(w->fd);
	unlinkat(w->service->rootfd, w->tmp, 0);
	free(w);
}

/* Creates blobs/ab/ and blobs/ab/cd/ for `rel` ("blobs/ab/cd/<hex>"). */
static int make_shard_dirs(int rootfd, const char *rel)
{
	char dir[LOCAL_BLOB_REL_MAX];
	size_t cut[2] = {sizeof(LOCAL_BLOBS_DIR) + 2, sizeof(LOCAL_BLOBS_DIR) + 5};

	for (int i = 0; i < 2; i++) {
		memcpy(dir, rel, cut[i]);
		dir[cut[i]] = '\0';
		if (mkdirat(rootfd, dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

static int rename_into_place(int rootfd, const char *tmp, const char *rel)
{
	int rc;

	if (renameat(rootfd, tmp, rootfd, rel) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	rc = make_shard_dirs(rootfd, rel);
	if (rc < 0)
		return rc;
	return renameat(rootfd, tmp, rootfd, rel) == 0 ? 0 : -errno;
}

/* Moves the finished temp file to `rel`. A present file of the right size
 * is the same blob; one of another size is torn and gets replaced. */
static int writer_publish(struct local_writer *w, const char *rel)
{
	int rootfd = w->service->rootfd;
	struct stat st;
	int rc;

	if (fstatat(rootfd, rel, &st, 0) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == w->size) {
		unlinkat(rootfd, w->tmp, 0);
		return 0;
	}
	rc = rename_into_place(rootfd, w->tmp, rel);
	if (rc == 0)
		return 0;
	unlinkat(rootfd, w->tmp, 0);
	return sf_err_errno(rc == -ENOSPC ? -ENOSPC : -EIO, -rc, "cannot store blob '%s/%s'",
			    w->service->root, rel);
}

static int writer_close_fd(struct local_writer *w)
{
	int rc = w->buffered ? writer_drain(w) : 0;

	if (close(w->fd) < 0 && rc == 0)
		rc = sf_err_errno(-EIO, errno, "cannot write blob file '%s/%s'", w->service->root,
				  w->tmp);
	w->fd = -1;
	return rc;
}

static int local_writer_commit(struct blob_writer *bw, const struct b3_digest *expect,
			       struct b3_digest *out)
{
	struct local_writer *w = (struct local_writer *)bw;
	char rel[LOCAL_BLOB_REL_MAX], e[B3_TEXT_LEN + 1], g[B3_TEXT_LEN + 1];
	struct b3_digest d;
	int rc = writer_close_fd(w);

	b3_hasher_final(&w->hasher, &d);
	if (rc == 0 && expect && !b3_digest_eq(expect, &d)) {
		b3_digest_to_text(expect, e);
		b3_digest_to_text(&d, g);
		rc = sf_err(-EIO, "blob digest mismatch: expected '%s', got '%s'", e, g);
	}
	if (rc < 0) {
		local_writer_abort(bw);
		return rc;
	}
	local_blob_relpath(&d, rel);
	rc = writer_publish(w, rel);
	free(w);
	if (rc == 0 && out)
		*out = d;
	return rc;
}

static const struct blob_writer_ops local_writer_ops = {
    .write = local_writer_write,
    .commit = local_writer_commit,
    .abort = local_writer_abort,
};

/* Creates tmp/<pid>.<n>.<random>; the pid lets a later open remove files of
 * writers that died. */
static int writer_create_tmp(struct local_blobs *s, struct local_writer *w)
{
	unsigned n = atomic_fetch_add(&s->counter, 1);
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
		rnd = (uint32_t)(uintptr_t)w;
	snprintf(w->tmp, sizeof(w->tmp), LOCAL_TMP_DIR "/%ld.%u.%08x", (long)getpid(), n, rnd);
	w->fd = openat(s->rootfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	/* Someone may have removed tmp/ since the store was opened. */
	if (w->fd < 0 && errno == ENOENT && mkdirat(s->rootfd, LOCAL_TMP_DIR, 0755) == 0)
		w->fd = openat(s->rootfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (w->fd < 0)
		return sf_err_errno(errno == ENOSPC ? -ENOSPC : -EIO, errno,
				    "cannot create a blob file in '%s/%s'", s->root, LOCAL_TMP_DIR);
	return 0;
}

static int local_open_write(struct blob_service *bs, struct blob_writer **out)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	struct local_writer *w;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store '%s' is open read-only", s->root);
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->base.ops = &local_writer_ops;
	w->service = s;
	w->size = 0;
	w->buffered = 0;
	b3_hasher_init(&w->hasher);
	rc = writer_create_tmp(s, w);
	if (rc < 0) {
		free(w);
		return rc;
	}
	*out = &w->base;
	return 0;
}

static int local_flush(struct blob_service *bs)
{
	struct local_blobs *s = (struct local_blobs *)bs;

	if (s->readonly)
		return 0;
	if (syncfs(s->rootfd) < 0)
		return sf_err_errno(-EIO, errno, "cannot sync store '%s'", s->root);
	return 0;
}

static void local_blobs_free(struct blob_service *bs)
{
	struct local_blobs *s = (struct local_blobs *)bs;

	close(s->rootfd);
	free(s->root);
	free(s);
}

static const struct blob_service_ops local_blobs_ops = {
    .stat = local_stat,
    .open_read = local_open_read,
    .open_write = local_open_write,
    .flush = local_flush,
    .free = local_blobs_free,
};

int local_blobs_new(int rootfd, const char *root, bool readonly, struct blob_service **out)
{
	struct local_blobs *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	s->root = strdup(root);
	if (s->rootfd < 0 || !s->root) {
		int rc =
		    s->rootfd < 0 ? sf_err_errno(-EIO, errno, "cannot dup a descriptor") : -ENOMEM;

		if (s->rootfd >= 0)
			close(s->rootfd);
		free(s->root);
		free(s);
		return rc;
	}
	s->base.ops = &local_blobs_ops;
	s->readonly = readonly;
	atomic_init(&s->counter, 0);
	*out = &s->base;
	return 0;
}

/* --- cleanup of temp files left by dead writers --- */

/* The pid a temp name starts with, or 0 if it is not one of ours. */
static pid_t tmp_name_pid(const char *name)
{
	char *end;
	long pid;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	pid = strtol(name, &end, 10);
	if (errno || *end != '.' || pid <= 0 || pid != (pid_t)pid)
		return 0;
	return (pid_t)pid;
}

void local_blobs_clean_tmp(int rootfd)
{
	int fd = openat(rootfd, LOCAL_TMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *dir;

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		pid_t pid = tmp_name_pid(de->d_name);

		if (pid && kill(pid, 0) < 0 && errno == ESRCH)
			unlinkat(fd, de->d_name, 0);
	}
	closedir(dir);
}
