/* local_blobs.c - small blobs as LMDB values (local_inline.c), the others
 * as plain read-only files, written to tmp/ while hashed, then published at
 * their content-addressed place without replacing a verified file; every
 * open checks that the file is one known to hold the right bytes, or
 * hashes it. A blob is looked for inline first, then as a file: stores
 * written before small blobs went inline hold files only. */
#include "backends/local/local_internal.h"

#include "common/encoding.h"
#include "common/err.h"
#include "common/io.h"
#include "common/log.h"

#include <dirent.h>
#include <limits.h>
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
	size_t inline_max;   /* blobs up to this size go inline */
	struct local_verifier *verifier;
	struct local_inline *inl;
	struct local_publish *pub;
};

struct local_reader {
	struct blob_reader base; /* base.fd is the blob file */
};

struct local_writer {
	struct blob_writer base;
	struct local_blobs *service;
	int fd; /* -1 until the blob outgrows the buffer or the inline limit */
	/* The temp file's name relative to rootfd; "" for an unnamed one
	 * (O_TMPFILE), which a crash cannot leave behind. */
	char tmp[sizeof(LOCAL_TMP_DIR) + TMP_NAME_MAX];
	struct b3_hasher hasher;
	/* put_hashed(): the caller's digest of the bytes, not hashed here. */
	bool hashed;
	struct b3_digest known;
	uint64_t size;
	size_t buffered;
	uint8_t buf[WRITE_BUF_SIZE];
};

void local_blob_relpath(const struct b3_digest *digest, char *out)
{
	char hex[B3_HEX_LEN + 1];

	b3_digest_to_hex(digest, hex);
	snprintf(out, LOCAL_BLOB_REL_MAX, LOCAL_BLOBS_DIR "/%.2s/%.2s/%s", hex, hex + 2, hex);
}

int local_blob_path(const char *dir, const struct b3_digest *digest, char *buf, size_t len)
{
	char rel[LOCAL_BLOB_REL_MAX];
	int n;

	local_blob_relpath(digest, rel);
	n = snprintf(buf, len, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= len)
		return sf_err(-ENAMETOOLONG, "blob path in '%s' is too long", dir);
	return 0;
}

static int local_stat(struct blob_service *bs, const struct b3_digest *digest, uint64_t *size)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	char rel[LOCAL_BLOB_REL_MAX];
	struct stat sb;
	int rc = local_inline_stat(s->inl, digest, s->readonly, size);

	if (rc != -ENOENT)
		return rc;
	local_blob_relpath(digest, rel);
	if (fstatat(s->rootfd, rel, &sb, 0) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return sf_err_sys(errno, "cannot stat blob '%s/%s'", s->root, rel);
	}
	if (!S_ISREG(sb.st_mode))
		return sf_err(-EIO, "blob '%s/%s' is not a regular file", s->root, rel);
	*size = (uint64_t)sb.st_size;
	return 0;
}

/* --- readers --- */

static int local_reader_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off, size_t *n)
{
	int rc = pread_full(r->fd, buf, len, off, n);

	return rc < 0 ? sf_err_sys(-rc, "cannot read blob file") : 0;
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

/* Records a file just hashed as holding `d`. Its bytes may not be durable
 * yet (another process published it and has not flushed: a cache fill
 * never does, docs/services.md "The cache"), and a record must never
 * vouch for bytes a crash can still tear: the file is synced first (cheap
 * when it is clean), and kept unrecorded if that fails. */
static void remember_hashed(struct local_blobs *s, const struct b3_digest *digest, int fd,
			    const struct local_ident *id, bool defer)
{
	/* read-only: the record is kept in memory only (this process) */
	if (s->readonly || fdatasync(fd) == 0)
		local_verifier_remember(s->verifier, digest, id, defer);
}

/* Trusts the file if its identity is the recorded one; otherwise hashes it
 * once: a match is recorded, a mismatch quarantines the file. */
static int blob_verify(struct local_blobs *s, const struct b3_digest *digest, const char *rel,
		       int fd, const struct stat *sb)
{
	char what[PATH_MAX];
	struct local_ident id;
	struct b3_digest got;
	int rc;

	local_ident_of(sb, &id);
	if (local_verifier_known(s->verifier, digest, &id))
		return 0;
	snprintf(what, sizeof(what), "%s/%s", s->root, rel);
	rc = local_hash_fd(fd, (uint64_t)sb->st_size, what, &got);
	if (rc < 0)
		return rc;
	if (!b3_digest_eq(&got, digest))
		return local_quarantine(s->rootfd, s->root, digest, rel, sb);
	remember_hashed(s, digest, fd, &id, false);
	return 0;
}

static int local_open_read(struct blob_service *bs, const struct b3_digest *digest,
			   struct blob_reader **out)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	char rel[LOCAL_BLOB_REL_MAX];
	struct local_reader *r;
	struct stat sb;
	int fd, rc = local_inline_open(s->inl, digest, s->readonly, out);

	if (rc != -ENOENT)
		return rc;
	local_blob_relpath(digest, rel);
	fd = openat(s->rootfd, rel, O_RDONLY | O_CLOEXEC);
	/* EMFILE/ENFILE pass through (sf_err_sys keeps them): a caller
	 * holding descriptors can free some and retry. */
	if (fd < 0)
		return errno == ENOENT
			   ? -ENOENT
			   : sf_err_sys(errno, "cannot open blob '%s/%s'", s->root, rel);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		rc = sf_err(-EIO, "blob '%s/%s' is not a readable file", s->root, rel);
	else
		rc = blob_verify(s, digest, rel, fd, &sb);
	r = rc == 0 ? malloc(sizeof(*r)) : NULL;
	if (rc == 0 && !r)
		rc = -ENOMEM;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	r->base =
	    (struct blob_reader){.ops = &local_reader_ops, .size = (uint64_t)sb.st_size, .fd = fd};
	*out = &r->base;
	return 0;
}

/* Hashes the file of `d` in full whatever its recorded identity (the
 * scrub): 0 and the size if it matches, -ENOENT if absent, -EIO with a
 * message (and the file quarantined) if not. */
static int blobs_check(struct local_blobs *s, const struct b3_digest *digest, uint64_t *size)
{
	char rel[LOCAL_BLOB_REL_MAX], what[PATH_MAX];
	struct local_ident id;
	struct b3_digest got;
	struct stat sb;
	int fd, rc = local_inline_check(s->inl, digest, s->readonly, size);

	if (rc != -ENOENT)
		return rc;
	local_blob_relpath(digest, rel);
	snprintf(what, sizeof(what), "%s/%s", s->root, rel);
	fd = openat(s->rootfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : sf_err_sys(errno, "cannot open blob '%s'", what);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		rc = sf_err(-EIO, "blob '%s' is not a readable file", what);
	else
		rc = local_hash_fd(fd, (uint64_t)sb.st_size, what, &got);
	if (rc == 0 && !b3_digest_eq(&got, digest))
		rc = local_quarantine(s->rootfd, s->root, digest, rel, &sb);
	if (rc == 0) {
		local_ident_of(&sb, &id);
		remember_hashed(s, digest, fd, &id, true);
		*size = (uint64_t)sb.st_size;
	}
	close(fd);
	return rc;
}

/* --- writers --- */

static int writer_create_tmp(struct local_blobs *s, struct local_writer *w);

static int writer_drain(struct local_writer *w)
{
	int rc = w->fd < 0 ? writer_create_tmp(w->service, w) : 0;

	if (rc < 0)
		return rc;
	rc = write_all(w->fd, w->buf, w->buffered);

	w->buffered = 0;
	if (rc < 0)
		return sf_err_sys(-rc, "cannot write blob file '%s/%s'", w->service->root, w->tmp);
	return 0;
}

static int local_writer_write(struct blob_writer *bw, const void *buf, size_t len)
{
	struct local_writer *w = (struct local_writer *)bw;
	const uint8_t *p = buf;
	int rc;

	if (!w->hashed)
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
	/* Ignored: a temp file left behind is removed by a later open. */
	if (w->fd >= 0 && w->tmp[0])
		unlinkat(w->service->rootfd, w->tmp, 0);
	free(w);
}

/* True if the file at `rel` is recorded as holding `d`. */
static bool file_is_verified(struct local_blobs *s, const char *rel, const struct b3_digest *digest)
{
	struct local_ident id;
	struct stat sb;

	if (fstatat(s->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
		return false;
	local_ident_of(&sb, &id);
	return local_verifier_known(s->verifier, digest, &id);
}

static bool present_is_verified(struct local_writer *w, const char *rel,
				const struct b3_digest *digest)
{
	return file_is_verified(w->service, rel, digest);
}

/* Records the identity of the file now at `rel`, known to hold `d`. */
static void writer_remember(struct local_writer *w, const char *rel, const struct b3_digest *digest)
{
	struct local_ident id;
	struct stat sb;

	if (fstatat(w->service->rootfd, rel, &sb, 0) == 0) {
		local_ident_of(&sb, &id);
		local_verifier_remember(w->service->verifier, digest, &id, true);
	}
}

/* Removes the temp file's name, if it has one (an unnamed one goes with
 * its descriptor). Ignored on failure: a later open removes what is left. */
static void writer_drop_tmp(struct local_writer *w)
{
	if (w->tmp[0])
		unlinkat(w->service->rootfd, w->tmp, 0);
}

static int writer_name_tmp(struct local_blobs *s, struct local_writer *w);

/* Puts our file in the place of the one at `rel` (not verified). */
static int writer_replace(struct local_writer *w, const char *rel)
{
	int rootfd = w->service->rootfd;
	char proc[32];

	if (!w->tmp[0]) {
		/* An unnamed file is given a temp name first: a rename can
		 * replace, a link cannot. */
		int rc = writer_name_tmp(w->service, w);

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
		if (rc < 0)
			return rc;
		if (linkat(AT_FDCWD, proc, rootfd, w->tmp, AT_SYMLINK_FOLLOW) < 0) {
			rc = -errno;
			w->tmp[0] = '\0';
			return rc;
		}
	}
	return renameat(rootfd, w->tmp, rootfd, rel) == 0 ? 0 : -errno;
}

/* Moves the finished temp file to `rel`. A file already there and recorded
 * as verified is kept ("have it"); any other (torn by a crash, damaged,
 * never hashed) is replaced by ours, whose bytes were hashed as they were
 * written. Replacing can race with another writer publishing the same
 * blob: then one good copy replaces another, and the loser's record goes
 * stale, which costs one more hash on a later open, nothing else. */
static int writer_publish(struct local_writer *w, const char *rel, const struct b3_digest *digest,
			  bool *created)
{
	int rc = local_publish_noreplace(w->service->pub, w->fd, w->tmp, digest, rel);

	/* Only a name this commit brought into being is ours: one it replaced
	 * (damaged or unverified) may be what a registered path uses. */
	*created = rc == 0;
	if (rc == -EEXIST && present_is_verified(w, rel, digest)) {
		writer_drop_tmp(w);
		return 0;
	}
	if (rc == -EEXIST)
		rc = writer_replace(w, rel);
	if (rc == 0)
		rc = local_publish_note(w->service->pub, digest);
	if (rc == 0) {
		writer_remember(w, rel, digest);
		return 0;
	}
	writer_drop_tmp(w);
	return sf_err_sys(-rc, "cannot store blob '%s/%s'", w->service->root, rel);
}

/* A small blob goes inline unless a verified file holds it already (a
 * store written before small blobs went inline: that copy is kept). */
static int writer_inline(struct local_writer *w, const struct b3_digest *digest, bool *created)
{
	char rel[LOCAL_BLOB_REL_MAX];

	local_blob_relpath(digest, rel);
	*created = false;
	if (present_is_verified(w, rel, digest))
		return 0;
	return local_inline_add(w->service->inl, digest, w->buf, w->buffered, created);
}

/* Writes what is buffered and starts the file's writeback now, so the
 * fsync at the flush finds little left to write (docs/store-format.md). */
static int writer_finish_fd(struct local_writer *w)
{
	int rc = w->buffered ? writer_drain(w) : 0;

	if (rc == 0)
		(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint only */
	return rc;
}

static int writer_close_fd(struct local_writer *w)
{
	int rc = close(w->fd) < 0
		     ? sf_err_sys(errno, "cannot write blob file '%s/%s'", w->service->root, w->tmp)
		     : 0;

	w->fd = -1;
	return rc;
}

static int local_writer_commit(struct blob_writer *bw, const struct b3_digest *expect,
			       struct b3_digest *out, bool *created)
{
	struct local_writer *w = (struct local_writer *)bw;
	char rel[LOCAL_BLOB_REL_MAX], e[B3_TEXT_LEN + 1], g[B3_TEXT_LEN + 1];
	struct b3_digest digest;
	bool isnew = false;
	bool small = w->fd < 0 && w->size <= w->service->inline_max;
	int rc = small ? 0 : writer_finish_fd(w);

	if (w->hashed)
		digest = w->known;
	else
		b3_hasher_final(&w->hasher, &digest);
	if (rc == 0 && expect && !b3_digest_eq(expect, &digest)) {
		b3_digest_to_text(expect, e);
		b3_digest_to_text(&digest, g);
		rc = sf_err(-EIO, "blob digest mismatch: expected '%s', got '%s'", e, g);
	}
	if (rc < 0) {
		local_writer_abort(bw);
		return rc;
	}
	/* A named temp file is closed before it is published (a close that
	 * fails publishes nothing); an unnamed one is published through its
	 * descriptor. */
	if (!small && w->tmp[0])
		rc = writer_close_fd(w);
	if (rc == 0 && small) {
		rc = writer_inline(w, &digest, &isnew);
	} else if (rc == 0) {
		local_blob_relpath(&digest, rel);
		rc = writer_publish(w, rel, &digest, &isnew);
	}
	if (rc == 0 && w->fd >= 0)
		rc = writer_close_fd(w);
	if (rc < 0) {
		local_writer_abort(bw);
		return rc;
	}
	free(w);
	if (rc == 0 && out)
		*out = digest;
	if (rc == 0 && created)
		*created = isnew;
	return rc;
}

static const struct blob_writer_ops local_writer_ops = {
    .write = local_writer_write,
    .commit = local_writer_commit,
    .abort = local_writer_abort,
};

/* Names tmp/<pid>.<n>.<random> in w->tmp; the pid lets a later open
 * remove files of writers that died. */
static int writer_name_tmp(struct local_blobs *s, struct local_writer *w)
{
	unsigned n = atomic_fetch_add(&s->counter, 1);
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
		rnd = (uint32_t)(uintptr_t)w;
	snprintf(w->tmp, sizeof(w->tmp), LOCAL_TMP_DIR "/%ld.%u.%08x", (long)getpid(), n, rnd);
	/* Someone may have removed tmp/ since the store was opened. */
	if (mkdirat(s->rootfd, LOCAL_TMP_DIR, 0755) < 0 && errno != EEXIST) {
		w->tmp[0] = '\0';
		return -errno;
	}
	return 0;
}

/* An unnamed file if the filesystem has O_TMPFILE, else tmp/<name>. */
static int writer_create_tmp(struct local_blobs *s, struct local_writer *w)
{
	int rc;

	w->tmp[0] = '\0';
	w->fd = local_publish_tmpfile(s->pub);
	if (w->fd >= 0)
		return 0;
	rc = writer_name_tmp(s, w);
	if (rc == 0)
		w->fd = openat(s->rootfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (rc == 0 && w->fd < 0)
		rc = -errno;
	if (rc < 0)
		w->tmp[0] = '\0';
	return rc < 0
		   ? sf_err_sys(-rc, "cannot create a blob file in '%s/%s'", s->root, LOCAL_TMP_DIR)
		   : 0;
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
	w->fd = -1;
	w->tmp[0] = '\0';
	w->size = 0;
	w->buffered = 0;
	w->hashed = false;
	b3_hasher_init(&w->hasher);
	/* Without the inline layout, fail here (no tmp/) rather than at the
	 * first drain. */
	rc = s->inline_max ? 0 : writer_create_tmp(s, w);
	if (rc < 0) {
		free(w);
		return rc;
	}
	*out = &w->base;
	return 0;
}

/* An import's blob, hashed by the caller (blob_service.h): a small one is
 * compared with the stored value instead of hashed (local_inline_holds), a
 * file of its size is "have it" as blob_service_stat() says for any
 * writer's caller, and a new file is written without hashing. */
static int local_put_hashed(struct blob_service *bs, const void *buf, size_t len,
			    const struct b3_digest *d, bool *created)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	char rel[LOCAL_BLOB_REL_MAX];
	struct blob_writer *bw;
	struct local_writer *w;
	uint64_t have;
	int rc;

	if (s->readonly)
		return sf_err(-EROFS, "store '%s' is open read-only", s->root);
	*created = false;
	local_blob_relpath(d, rel);
	/* The stored value first: a re-import finds most blobs there, and
	 * then needs no lookup of a blob file. An inline_max of 0 keeps even
	 * the empty blob a file, as the writer does. */
	if (s->inline_max && len <= s->inline_max)
		return local_inline_holds(s->inl, d, buf, len) || file_is_verified(s, rel, d)
			   ? 0
			   : local_inline_keep(s->inl, d, buf, len, created);
	rc = local_stat(bs, d, &have);
	if (rc == 0 && have == len)
		return 0;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = local_open_write(bs, &bw);
	if (rc < 0)
		return rc;
	w = (struct local_writer *)bw;
	w->hashed = true;
	w->known = *d;
	rc = local_writer_write(bw, buf, len);
	if (rc < 0) {
		local_writer_abort(bw);
		return rc;
	}
	return local_writer_commit(bw, NULL, NULL, created);
}

static int files_sync(void *ctx)
{
	struct local_blobs *s = ctx;

	return local_publish_sync(s->pub, s->root);
}

static int local_flush(struct blob_service *bs)
{
	struct local_blobs *s = (struct local_blobs *)bs;

	int rc;

	if (s->readonly)
		return 0;
	rc = local_inline_flush(s->inl);
	if (rc < 0)
		return rc;
	/* The records taken before the sync, written after it: a record never
	 * vouches for bytes not yet durable, even with writers publishing
	 * meanwhile (cache fills from several threads). */
	return local_verifier_sync(s->verifier, files_sync, s);
}

static void local_blobs_free(struct blob_service *bs)
{
	struct local_blobs *s = (struct local_blobs *)bs;

	local_inline_free(s->inl);
	local_publish_free(s->pub);
	local_verifier_free(s->verifier);
	close(s->rootfd);
	free(s->root);
	free(s);
}

static const struct blob_service_ops local_blobs_ops = {
    .stat = local_stat,
    .open_read = local_open_read,
    .open_write = local_open_write,
    .flush = local_flush,
    .put_hashed = local_put_hashed,
    .free = local_blobs_free,
};

/* STOREFS_INLINE_MAX (bytes, at most LOCAL_INLINE_LIMIT; 0: every blob a
 * file, the layout of earlier releases), else LOCAL_INLINE_DEFAULT. */
static size_t inline_max_setting(void)
{
	const char *v = getenv("STOREFS_INLINE_MAX");
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return LOCAL_INLINE_DEFAULT;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-') {
		log_warn("STOREFS_INLINE_MAX='%s' is not a byte count; using %u", v,
			 LOCAL_INLINE_DEFAULT);
		return LOCAL_INLINE_DEFAULT;
	}
	return n > LOCAL_INLINE_LIMIT ? LOCAL_INLINE_LIMIT : (size_t)n;
}

int local_blobs_new(struct local_env *env, int rootfd, const char *root, bool readonly,
		    struct blob_service **out)
{
	struct local_blobs *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	s->root = strdup(root);
	if (s->rootfd < 0)
		rc = sf_err_sys(errno, "cannot dup a descriptor");
	else
		rc = s->root ? local_verifier_new(env, readonly, &s->verifier) : -ENOMEM;
	if (rc == 0)
		rc = local_inline_new(env, s->rootfd, s->root, &s->inl);
	if (rc == 0)
		rc = local_publish_new(s->rootfd, &s->pub);
	if (rc < 0) {
		local_inline_free(s->inl);
		local_verifier_free(s->verifier);
		if (s->rootfd >= 0)
			close(s->rootfd);
		free(s->root);
		free(s);
		return rc;
	}
	s->base.ops = &local_blobs_ops;
	s->readonly = readonly;
	s->inline_max = env->has_inline ? inline_max_setting() : 0;
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
	DIR *dir = local_opendirat(rootfd, LOCAL_TMP_DIR);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		pid_t pid = tmp_name_pid(de->d_name);

		/* Best effort: what stays is tried again at the next open. */
		if (pid && kill(pid, 0) < 0 && errno == ESRCH)
			unlinkat(dirfd(dir), de->d_name, 0);
	}
	closedir(dir);
}

/* --- the scrub: every blob file and every quarantined one --- */

int local_blobs_check(struct blob_service *bs, const struct b3_digest *digest, uint64_t *size)
{
	return blobs_check((struct local_blobs *)bs, digest, size);
}

static bool is_hex_name(const char *name, size_t len)
{
	if (strlen(name) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

DIR *local_opendirat(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (fd >= 0 && !d)
		close(fd);
	return d;
}

/* Calls `cb` for each "<hex>" file in one shard blobs/ab/cd/. */
static int shard_each(DIR *shard, const char *prefix, store_digest_fn cb, void *ctx)
{
	struct b3_digest digest;
	struct dirent *de;
	int rc = 0;

	while (rc == 0 && (de = readdir(shard)))
		if (is_hex_name(de->d_name, B3_HEX_LEN) && !strncmp(de->d_name, prefix, 4) &&
		    b3_digest_from_hex(de->d_name, B3_HEX_LEN, &digest) == 0)
			rc = cb(ctx, &digest);
	return rc;
}

/* Walks blobs/ab/ for each "cd" shard. */
static int level1_each(DIR *l1, const char *ab, store_digest_fn cb, void *ctx)
{
	struct dirent *de;
	char prefix[5];
	int rc = 0;

	while (rc == 0 && (de = readdir(l1))) {
		DIR *shard;

		if (!is_hex_name(de->d_name, 2) ||
		    !(shard = local_opendirat(dirfd(l1), de->d_name)))
			continue;
		snprintf(prefix, sizeof(prefix), "%s%s", ab, de->d_name);
		rc = shard_each(shard, prefix, cb, ctx);
		closedir(shard);
	}
	return rc;
}

struct file_walk {
	struct local_blobs *s;
	store_digest_fn cb;
	void *ctx;
};

/* A file whose blob is also inline is not listed twice: reads take the
 * inline copy, and deleting the blob deletes both. */
static int file_listed(void *ctx, const struct b3_digest *digest)
{
	struct file_walk *fw = ctx;
	uint64_t size;
	int rc = local_inline_stat(fw->s->inl, digest, true, &size);

	if (rc == 0)
		return 0;
	return rc == -ENOENT ? fw->cb(fw->ctx, digest) : rc;
}

static int files_each(struct local_blobs *s, store_digest_fn cb, void *ctx);

int local_blobs_each(struct blob_service *bs, store_digest_fn cb, void *ctx)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	struct file_walk fw = {.s = s, .cb = cb, .ctx = ctx};
	int rc = local_inline_each(s->inl, cb, ctx);

	return rc < 0 ? rc : files_each(s, file_listed, &fw);
}

static int files_each(struct local_blobs *s, store_digest_fn cb, void *ctx)
{
	DIR *top = local_opendirat(s->rootfd, LOCAL_BLOBS_DIR);
	struct dirent *de;
	int rc = 0;

	if (!top)
		return errno == ENOENT
			   ? 0
			   : sf_err_sys(errno, "cannot list '%s/%s'", s->root, LOCAL_BLOBS_DIR);
	while (rc == 0 && (de = readdir(top))) {
		DIR *l1;

		if (!is_hex_name(de->d_name, 2) || !(l1 = local_opendirat(dirfd(top), de->d_name)))
			continue;
		rc = level1_each(l1, de->d_name, cb, ctx);
		closedir(l1);
	}
	closedir(top);
	return rc;
}

int local_blobs_quarantine_each(struct blob_service *bs, store_quarantine_fn cb, void *ctx)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	DIR *q = local_opendirat(s->rootfd, LOCAL_QUARANTINE_DIR);
	char path[PATH_MAX];
	struct b3_digest digest;
	struct dirent *de;
	int rc = 0;

	if (!q)
		return 0;
	while (rc == 0 && (de = readdir(q))) {
		if (strlen(de->d_name) < B3_HEX_LEN ||
		    b3_digest_from_hex(de->d_name, B3_HEX_LEN, &digest) < 0) {
			sf_err_clear(); /* not a quarantined blob: not ours to report */
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/%s", s->root, LOCAL_QUARANTINE_DIR, de->d_name);
		rc = cb(ctx, &digest, path);
	}
	closedir(q);
	return rc;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int file_delete(struct local_blobs *s, const struct b3_digest *d,
		       const struct timespec *before, uint64_t *freed);

int local_blobs_delete(struct blob_service *bs, const struct b3_digest *d,
		       const struct timespec *before, uint64_t *freed)
{
	struct local_blobs *s = (struct local_blobs *)bs;
	uint64_t inl = 0;
	int irc, rc;

	*freed = 0;
	if (s->readonly)
		return sf_err(-EROFS, "store '%s' is open read-only", s->root);
	irc = local_inline_delete(s->inl, d, before, &inl);
	if (irc < 0)
		return irc;
	rc = file_delete(s, d, before, freed);
	*freed += inl;
	return rc < 0 ? rc : (rc > 0 || irc > 0);
}

/* As local_blobs_delete(), for the blob's file. */
static int file_delete(struct local_blobs *s, const struct b3_digest *d,
		       const struct timespec *before, uint64_t *freed)
{
	char rel[LOCAL_BLOB_REL_MAX];
	struct stat st;

	local_blob_relpath(d, rel);
	if (fstatat(s->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT
			   ? 0
			   : sf_err_errno(-EIO, errno, "cannot stat blob '%s/%s'", s->root, rel);
	/* A writer that does not hold the import lock may have just written
	 * it for a path it is about to register (docs/gc.md). */
	if (!ts_before(&st.st_mtim, before) || !ts_before(&st.st_ctim, before))
		return 0;
	if (unlinkat(s->rootfd, rel, 0) < 0)
		return errno == ENOENT
			   ? 0
			   : sf_err_errno(-EIO, errno, "cannot delete blob '%s/%s'", s->root, rel);
	*freed = (uint64_t)st.st_size;
	return 1;
}
