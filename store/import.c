/* import.c - one-pass filesystem import: blobs, Directories and NAR hash together. */
#include "store/import.h"

#include "castore/dir_service.h"
#include "common/err.h"
#include "common/io.h"
#include "common/log.h"
#include "store/nar_writer.h"
#include "store/stat_index.h"
#include "store/store_write.h"
#include "store/store_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files up to this size are read with one read() into memory, hashed and
 * then stored only if the blob is not there yet; bigger ones are streamed. */
#define SMALL_FILE_MAX (1u << 20)
#define CHUNK_SIZE     (256u << 10)
/* A d_type for FIFOs, sockets and devices alike: all refused. */
#define DT_OTHER 255

struct importer {
	struct store *st;
	struct store_write *session; /* its blobs go through the session */
	struct blob_service *blobs;
	const struct import_options *opt;
	struct nar_writer nar;
	struct dir_putter *putter; /* NULL unless the root is a directory */
	/* Directories held back to be stored atomically with the PathInfo
	 * (store_stage_dirs()); NULL when the store has no such step. */
	struct dir_service *stage;
	uint8_t *buf; /* SMALL_FILE_MAX + 1 bytes */
	uint8_t link[CASTORE_MAX_TARGET_LEN + 1];
	char *path; /* the current entry, for messages */
	size_t path_len, path_cap;
	uint64_t files, bytes;
	bool record; /* --trust-stat: each file read goes into `log` */
	struct stat_log log;
};

struct dent {
	size_t off, len;
	unsigned char type;
};

struct dent_list {
	struct dent *v;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
};

static int import_entry(struct importer *im, int dirfd, const char *name, unsigned char type,
			int depth, struct node *out);

/* --- the path shown in messages --- */

static int path_push(struct importer *im, const char *name, size_t len, size_t *saved)
{
	size_t need = im->path_len + 1 + len + 1;

	if (need > im->path_cap) {
		size_t cap = need * 2;
		char *p = realloc(im->path, cap);

		if (!p)
			return -ENOMEM;
		im->path = p, im->path_cap = cap;
	}
	*saved = im->path_len;
	im->path[im->path_len++] = '/';
	memcpy(im->path + im->path_len, name, len);
	im->path_len += len;
	im->path[im->path_len] = '\0';
	return 0;
}

static void path_pop(struct importer *im, size_t saved)
{
	im->path_len = saved;
	im->path[saved] = '\0';
}

/* --- files --- */

static int file_changed(struct importer *im)
{
	return sf_err(-EIO, "'%s' changed while being read", im->path);
}

/* Reads up to `len` bytes, fewer only at end of file. */
static int read_chunk(struct importer *im, int fd, uint8_t *buf, size_t len, size_t *got)
{
	int rc = read_full(fd, buf, len, got);

	return rc < 0 ? sf_err_sys(-rc, "cannot read '%s'", im->path) : 0;
}

static int nar_file(struct importer *im, bool exec, const uint8_t *data, size_t len)
{
	int rc = nar_writer_file_begin(&im->nar, exec, len);

	if (rc == 0)
		rc = nar_writer_raw(&im->nar, data, len);
	return rc ? rc : nar_writer_file_end(&im->nar, len);
}

/* Stores `data` unless a blob of that digest and size is already there.
 * A service that creates only if absent and asks first itself when that
 * saves bytes (S3) is not stat'ed: it would be a second request per blob. */
static int blob_store_dedup(struct importer *im, const uint8_t *data, size_t len,
			    const struct b3_digest *d)
{
	struct b3_digest put;
	uint64_t have;
	int rc = blob_service_creates_if_absent(im->blobs, len)
		     ? -ENOENT
		     : blob_service_stat(im->blobs, d, &have);

	if (rc == 0 && have == len)
		return 0;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = blob_service_put(im->blobs, data, len, &put);
	if (rc < 0)
		return rc;
	if (!b3_digest_eq(&put, d))
		return sf_err(-EIO, "blob service stored '%s' under another digest", im->path);
	return 0;
}

static int file_small(struct importer *im, int fd, bool exec, size_t size, struct b3_digest *d)
{
	/* One read(), asking for a byte more than fstat() said: a regular
	 * file answers with everything up to its end, so exactly `size` bytes
	 * back means it did not change. */
	ssize_t got = read_retry(fd, im->buf, size + 1);
	int rc;

	if (got < 0)
		return sf_err_sys((int)-got, "cannot read '%s'", im->path);
	if ((size_t)got != size)
		return file_changed(im);
	b3_digest_of(im->buf, size, d);
	rc = nar_file(im, exec, im->buf, size);
	if (rc == 0)
		rc = blob_service_put_hashed(im->blobs, im->buf, size, d, NULL);
	return rc == -EOPNOTSUPP ? blob_store_dedup(im, im->buf, size, d) : rc;
}

static int stream_chunks(struct importer *im, int fd, uint64_t size, struct blob_writer *w,
			 struct b3_hasher *h)
{
	uint64_t total = 0;
	size_t got;
	int rc;

	for (got = CHUNK_SIZE; got == CHUNK_SIZE;) {
		rc = read_chunk(im, fd, im->buf, CHUNK_SIZE, &got);
		if (rc < 0)
			return rc;
		total += got;
		if (total > size)
			return file_changed(im);
		b3_hasher_update(h, im->buf, got);
		rc = nar_writer_raw(&im->nar, im->buf, got);
		if (rc == 0 && w)
			rc = blob_writer_write(w, im->buf, got);
		if (rc < 0)
			return rc;
	}
	return total == size ? 0 : file_changed(im);
}

/* Reads `fd` again from its start into a new blob that must hash to `d`
 * (a file that changed since the first pass fails the commit). */
static int blob_write_again(struct importer *im, int fd, uint64_t size, const struct b3_digest *d)
{
	struct blob_writer *w;
	struct b3_digest stored;
	uint64_t total = 0;
	size_t got = CHUNK_SIZE;
	int rc = lseek(fd, 0, SEEK_SET) < 0 ? sf_err_sys(errno, "cannot read '%s'", im->path) : 0;

	if (rc == 0)
		rc = blob_service_open_write(im->blobs, &w);
	if (rc < 0)
		return rc;
	while (rc == 0 && got == CHUNK_SIZE) {
		rc = read_chunk(im, fd, im->buf, CHUNK_SIZE, &got);
		total += rc == 0 ? got : 0;
		if (rc == 0 && total > size)
			rc = file_changed(im);
		if (rc == 0)
			rc = blob_writer_write(w, im->buf, got);
	}
	if (rc == 0 && total != size)
		rc = file_changed(im);
	if (rc < 0) {
		blob_writer_abort(w);
		return rc;
	}
	return blob_writer_commit(w, d, &stored);
}

/* A large file is hashed first and written only if its blob is missing:
 * a re-import of a known tree writes nothing (issue 14), at the cost of a
 * second read (from the page cache) and hash of each new large file. */
static int file_large(struct importer *im, int fd, bool exec, uint64_t size, struct b3_digest *d)
{
	struct b3_hasher h;
	uint64_t have;
	int rc = nar_writer_file_begin(&im->nar, exec, size);

	if (rc < 0)
		return rc;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint only */
	b3_hasher_init(&h);
	rc = stream_chunks(im, fd, size, NULL, &h);
	if (rc < 0)
		return rc;
	b3_hasher_final(&h, d);
	rc = blob_service_stat(im->blobs, d, &have);
	if (rc == -ENOENT || (rc == 0 && have != size))
		rc = blob_write_again(im, fd, size, d);
	return rc ? rc : nar_writer_file_end(&im->nar, size);
}

static int unsupported(struct importer *im)
{
	return sf_err(-EINVAL, "'%s' has an unsupported file type", im->path);
}

static int import_file(struct importer *im, int dirfd, const char *name, struct node *out)
{
	/* Before the stat: the time the racily-clean rule compares with. */
	int64_t t = im->record ? stat_index_now() : 0;
	/* O_NONBLOCK: never hang on a FIFO swapped in after readdir. */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat sb;
	int rc;

	if (fd < 0 && errno == ELOOP)
		return file_changed(im);
	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s'", im->path);
	if (fstat(fd, &sb) < 0)
		rc = sf_err_sys(errno, "cannot stat '%s'", im->path);
	else if (!S_ISREG(sb.st_mode))
		rc = unsupported(im);
	else if (sb.st_size <= SMALL_FILE_MAX)
		rc = file_small(im, fd, sb.st_mode & S_IXUSR, (size_t)sb.st_size, &out->digest);
	else
		rc = file_large(im, fd, sb.st_mode & S_IXUSR, (uint64_t)sb.st_size, &out->digest);
	close(fd);
	if (rc == 0 && im->record)
		rc = stat_log_add(&im->log, &sb, t, &out->digest);
	if (rc < 0)
		return rc;
	out->kind = NODE_FILE;
	out->size = (uint64_t)sb.st_size;
	out->executable = sb.st_mode & S_IXUSR;
	im->files++;
	im->bytes += out->size;
	return 0;
}

/* The target is left in im->link, valid until the next symlink. */
static int import_symlink(struct importer *im, int dirfd, const char *name, struct node *out)
{
	ssize_t n = readlinkat(dirfd, name, (char *)im->link, sizeof(im->link));

	if (n < 0 && errno == EINVAL)
		return file_changed(im);
	if (n < 0)
		return sf_err_sys(errno, "cannot read symlink '%s'", im->path);
	if ((size_t)n > CASTORE_MAX_TARGET_LEN)
		return sf_err(-EINVAL, "symlink '%s' has a target longer than %d bytes", im->path,
			      CASTORE_MAX_TARGET_LEN);
	if (n == 0)
		return sf_err(-EINVAL, "symlink '%s' has an empty target", im->path);
	out->kind = NODE_SYMLINK;
	out->target = im->link;
	out->target_len = (size_t)n;
	im->files++;
	return nar_writer_symlink(&im->nar, im->link, (size_t)n);
}

/* --- directories --- */

static int dents_add(struct dent_list *l, const char *name, unsigned char type)
{
	size_t len = strlen(name);

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct dent *v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v, l->cap = cap;
	}
	if (l->names_len + len + 1 > l->names_cap) {
		size_t cap = 2 * (l->names_len + len + 1) + 1024;
		char *p = realloc(l->names, cap);

		if (!p)
			return -ENOMEM;
		l->names = p, l->names_cap = cap;
	}
	memcpy(l->names + l->names_len, name, len + 1);
	l->v[l->n++] = (struct dent){.off = l->names_len, .len = len, .type = type};
	l->names_len += len + 1;
	return 0;
}

static int dent_cmp(const void *a, const void *b, void *names)
{
	const struct dent *x = a, *y = b;

	return castore_name_cmp((const uint8_t *)names + x->off, x->len,
				(const uint8_t *)names + y->off, y->len);
}

static void dents_release(struct dent_list *l)
{
	free(l->v);
	free(l->names);
}

/* Reads every name of `dir` (but "." and ".."), sorted bytewise. */
static int dents_read(struct importer *im, DIR *dir, struct dent_list *l)
{
	struct dirent *de;
	int rc;

	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = dents_add(l, de->d_name, de->d_type);
		if (rc < 0)
			return rc;
	}
	if (errno)
		return sf_err_sys(errno, "cannot list '%s'", im->path);
	if (l->n > 1)
		qsort_r(l->v, l->n, sizeof(*l->v), dent_cmp, l->names);
	return 0;
}

static int import_child(struct importer *im, int dirfd, const char *name, size_t len,
			unsigned char type, int depth, struct directory_builder *b)
{
	struct node n = {0};
	size_t saved;
	int rc = path_push(im, name, len, &saved);

	if (rc < 0)
		return rc;
	if (castore_name_check((const uint8_t *)name, len) < 0) {
		rc = sf_err(-EINVAL, "'%s' has a name that cannot be stored", im->path);
		goto out;
	}
	rc = nar_writer_entry_begin(&im->nar, name, len);
	if (rc == 0)
		rc = import_entry(im, dirfd, name, type, depth, &n);
	if (rc == 0)
		rc = nar_writer_entry_end(&im->nar);
	if (rc < 0)
		goto out;
	n.name = (const uint8_t *)name;
	n.name_len = len;
	rc = directory_builder_add(b, &n);
	if (rc == 0 && n.kind != NODE_DIRECTORY && im->opt->progress)
		im->opt->progress(im->opt->progress_ctx, im->files, im->bytes);
out:
	path_pop(im, saved);
	return rc;
}

static int import_children(struct importer *im, DIR *dir, int depth, struct directory **out)
{
	struct dent_list l = {0};
	struct directory_builder *b;
	int rc = directory_builder_new(&b);

	if (rc < 0)
		return rc;
	rc = dents_read(im, dir, &l);
	if (rc == 0)
		rc = nar_writer_dir_begin(&im->nar);
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = import_child(im, dirfd(dir), l.names + l.v[i].off, l.v[i].len, l.v[i].type,
				  depth + 1, b);
	dents_release(&l);
	if (rc == 0)
		rc = nar_writer_dir_end(&im->nar);
	if (rc < 0) {
		directory_builder_free(b);
		return rc;
	}
	return directory_builder_finish(b, out);
}

static int import_dir(struct importer *im, int dirfd, const char *name, int depth, struct node *out)
{
	struct directory *d;
	DIR *dir;
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return file_changed(im);
	if (fd < 0)
		return sf_err_sys(errno, "cannot open directory '%s'", im->path);
	dir = fdopendir(fd);
	if (!dir) {
		rc = sf_err_sys(errno, "cannot open directory '%s'", im->path);
		close(fd);
		return rc;
	}
	rc = import_children(im, dir, depth, &d);
	closedir(dir);
	if (rc < 0)
		return rc;
	out->kind = NODE_DIRECTORY;
	rc = directory_size(d, im->st->size_formula, &out->size);
	if (rc < 0) {
		directory_free(d);
		return rc;
	}
	return dir_putter_put(im->putter, d, &out->digest);
}

static unsigned char mode_to_dtype(mode_t m)
{
	if (S_ISREG(m))
		return DT_REG;
	if (S_ISDIR(m))
		return DT_DIR;
	if (S_ISLNK(m))
		return DT_LNK;
	return DT_OTHER;
}

static int import_entry(struct importer *im, int dirfd, const char *name, unsigned char type,
			int depth, struct node *out)
{
	struct stat sb;

	/* As in Nix and in nar_render(): nothing may sit NAR_MAX_DEPTH levels
	 * below the root, or the NAR could not be rendered or read back. */
	if (depth >= NAR_MAX_DEPTH)
		return sf_err(-EINVAL, "'%s' is nested %d levels deep (at most %d are allowed)",
			      im->path, depth, NAR_MAX_DEPTH - 1);
	if (type == DT_UNKNOWN) {
		if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			return sf_err_sys(errno, "cannot stat '%s'", im->path);
		type = mode_to_dtype(sb.st_mode);
	}
	switch (type) {
	case DT_REG:
		return import_file(im, dirfd, name, out);
	case DT_LNK:
		return import_symlink(im, dirfd, name, out);
	case DT_DIR:
		return import_dir(im, dirfd, name, depth, out);
	default:
		return unsupported(im);
	}
}

/* --- naming and registration --- */

/* Appends `comp` to the normalised absolute path in `np`, applying "." and
 * ".." lexically as Nix's canonPath does. */
static void norm_push(char *np, size_t *len, const char *comp, size_t clen)
{
	if (clen == 0 || (clen == 1 && comp[0] == '.'))
		return;
	if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
		while (*len > 0 && np[--*len] != '/')
			;
		return;
	}
	np[(*len)++] = '/';
	memcpy(np + *len, comp, clen);
	*len += clen;
}

static int normalise(const char *path, char **out, size_t *out_len)
{
	char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
	size_t cl, len = 0;
	char *np, *all;
	const char *p, *e;

	if (path[0] != '/' && !cwd)
		return sf_err_sys(errno, "cannot get the current directory");
	cl = cwd ? strlen(cwd) : 0;
	all = malloc(cl + 1 + strlen(path) + 1);
	np = malloc(cl + 1 + strlen(path) + 2);
	if (!all || !np) {
		free(cwd), free(all), free(np);
		return -ENOMEM;
	}
	sprintf(all, "%s/%s", cwd ? cwd : "", path);
	free(cwd);
	for (p = all; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, '/');
		norm_push(np, &len, p, (size_t)(e - p));
	}
	np[len] = '\0';
	free(all);
	*out = np, *out_len = len;
	return 0;
}

int store_import_default_name(const char *path, char *buf, size_t len)
{
	char *norm = NULL, *base;
	size_t alen;
	int rc = normalise(path, &norm, &alen);

	if (rc < 0)
		return rc;
	base = strrchr(norm, '/');
	base = base ? base + 1 : norm;
	if (!*base)
		rc =
		    sf_err(-EINVAL,
			   "cannot derive a store path name from '%s'; give one with --name", path);
	else if (store_path_name_check(base, strlen(base)) < 0 || strlen(base) >= len)
		rc = sf_err(
		    -EINVAL,
		    "'%s' is not a valid store path name (at most %d of 0-9 a-z A-Z +-._?=); "
		    "give one with --name",
		    base, STORE_PATH_MAX_NAME);
	else
		memcpy(buf, base, strlen(base) + 1);
	free(norm);
	return rc;
}

/* True if the path is registered with this very content: then the import
 * writes nothing (issue 14), not even an unchanged record. */
static bool registered_same(struct store *st, const struct path_info *pi)
{
	struct path_info *have;
	enum path_info_put_result res;
	bool same;

	if (path_info_service_get_path(st->paths, &pi->path, &have) < 0) {
		sf_err_clear(); /* absent or unreadable: the registration decides */
		return false;
	}
	same = path_info_merge(have, pi, &res) == 0 && res == PATH_INFO_UNCHANGED;
	sf_err_clear(); /* a conflict is reported by the registration itself */
	path_info_free(have);
	return same;
}

/* The index is a cache: a record that cannot be stored costs a read at the
 * next import, so the path registered stands. */
static void index_store(struct importer *im, const struct node *root, const struct nar_summary *sum)
{
	bool dir = root->kind == NODE_DIRECTORY;
	int rc =
	    stat_index_store(im->st, &im->log, dir ? &root->digest : NULL, sum->sha256, sum->size);

	if (rc < 0) {
		log_warn("cannot record the import of '%s' for --trust-stat: %s", im->path,
			 sf_errmsg(rc));
		sf_err_clear();
	}
}

/* The PathInfo `nix-store --add` would register for this tree. */
static int path_info_of(const char *name, const struct node *root, const struct nar_summary *sum,
			struct path_info **out)
{
	struct store_path sp;
	struct path_info *pi;
	int rc = store_path_make_source(sum->sha256, name, NULL, 0, false, &sp);

	if (rc < 0)
		return rc;
	rc = path_info_new(&pi);
	if (rc < 0)
		return rc;
	pi->path = sp;
	rc = path_info_set_root(pi, root);
	pi->nar_size = sum->size;
	memcpy(pi->nar_sha256, sum->sha256, 32);
	pi->has_ca = true;
	pi->ca_type = CA_NAR_SHA256;
	memcpy(pi->ca_digest, sum->sha256, 32);
	pi->ca_digest_len = 32;
	if (rc == 0)
		rc = path_info_validate(pi);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

static int import_register(struct importer *im, const char *name, const struct node *root,
			   const struct nar_summary *sum, struct path_info **out)
{
	struct store *st = im->st;
	struct path_info *pi;
	int rc = path_info_of(name, root, sum, &pi);

	if (rc < 0)
		return rc;
	if (registered_same(st, pi)) {
		if (im->opt->result)
			*im->opt->result = PATH_INFO_UNCHANGED;
	} else if (im->stage)
		rc = store_commit_path(st, im->stage, pi, im->opt->result);
	else
		rc = path_info_service_register(st->paths, pi, im->opt->result);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	if (im->record)
		index_store(im, root, sum);
	*out = pi;
	return 0;
}

/* Walks the tree and makes its blobs and Directories durable. */
static int import_walk(struct importer *im, const struct stat *sb, struct node *root,
		       struct nar_summary *sum)
{
	struct b3_digest top;
	unsigned char type = mode_to_dtype(sb->st_mode);
	int rc;

	if (type == DT_DIR) {
		rc = store_stage_dirs(im->st, &im->stage);
		if (rc == -ENOTSUP) /* then Directories are stored as they come */
			rc = 0;
		if (rc < 0)
			return rc;
		rc = dir_putter_new(im->stage ? im->stage : im->st->dirs, im->st->size_formula,
				    &im->putter);
		if (rc < 0)
			return rc;
	}
	rc = import_entry(im, AT_FDCWD, im->path, type, 0, root);
	if (rc == 0)
		rc = nar_writer_finish(&im->nar, sum);
	if (rc == 0)
		rc = blob_service_flush(im->blobs);
	if (rc < 0 || !im->putter)
		return rc;
	rc = dir_putter_close(im->putter, &top);
	im->putter = NULL;
	if (rc == 0 && !b3_digest_eq(&top, &root->digest))
		rc = sf_err(-EIO, "directory service returned another root for '%s'", im->path);
	return rc;
}

/* --- --trust-stat: a tree known by its files' stat (docs/import.md) --- */

/* Every answer but a found tree is a miss: the tree is then read as
 * usual, which reports any error itself. */
static int trust_miss(struct importer *im, const char *why)
{
	sf_err_clear();
	log_info("--trust-stat: '%s' %s: reading the tree", im->path, why);
	return -ENOENT;
}

static int trust_entry(struct importer *im, int dirfd, const char *name, int depth,
		       struct node *out);

static int trust_file(struct importer *im, const struct stat *sb, struct node *out)
{
	static const char *const whys[] = {
	    [STAT_MISS_NO_RECORD] = "has no record",
	    [STAT_MISS_CHANGED] = "changed since its record",
	    [STAT_MISS_RACY] = "was recorded within 2 s of its last change (racily clean)",
	};
	enum stat_miss why = STAT_MISS_NO_RECORD;

	if (stat_index_lookup(im->st, sb, &out->digest, &why) < 0)
		return trust_miss(im, whys[why]);
	out->kind = NODE_FILE;
	out->size = (uint64_t)sb->st_size;
	out->executable = sb->st_mode & S_IXUSR;
	return 0;
}

static int trust_symlink(struct importer *im, int dirfd, const char *name, struct node *out)
{
	ssize_t n = readlinkat(dirfd, name, (char *)im->link, sizeof(im->link));

	if (n <= 0 || (size_t)n > CASTORE_MAX_TARGET_LEN)
		return trust_miss(im, "is not a symlink that can be stored");
	out->kind = NODE_SYMLINK;
	out->target = im->link;
	out->target_len = (size_t)n;
	return 0;
}

static int trust_child(struct importer *im, int dirfd, const char *name, int depth,
		       struct directory_builder *b)
{
	size_t saved, len = strlen(name);
	struct node n = {0};
	int rc = path_push(im, name, len, &saved);

	if (rc < 0)
		return trust_miss(im, "cannot be named");
	if (castore_name_check((const uint8_t *)name, len) < 0)
		rc = trust_miss(im, "has a name that cannot be stored");
	else
		rc = trust_entry(im, dirfd, name, depth, &n);
	if (rc == 0) {
		n.name = (const uint8_t *)name;
		n.name_len = len;
		rc = directory_builder_add(b, &n) < 0 ? trust_miss(im, "cannot be listed") : 0;
	}
	path_pop(im, saved);
	return rc;
}

static int trust_children(struct importer *im, DIR *dir, int depth, struct directory **out)
{
	struct dent_list l = {0};
	struct directory_builder *b;
	int rc = directory_builder_new(&b);

	if (rc < 0)
		return trust_miss(im, "cannot be listed");
	rc = dents_read(im, dir, &l) < 0 ? trust_miss(im, "cannot be listed") : 0;
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = trust_child(im, dirfd(dir), l.names + l.v[i].off, depth + 1, b);
	dents_release(&l);
	if (rc < 0) {
		directory_builder_free(b);
		return rc;
	}
	return directory_builder_finish(b, out) < 0 ? trust_miss(im, "cannot be listed") : 0;
}

static int trust_dir(struct importer *im, int dirfd, const char *name, int depth, struct node *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct directory *d;
	int rc;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return trust_miss(im, "cannot be opened");
	}
	rc = trust_children(im, dir, depth, &d);
	closedir(dir);
	if (rc < 0)
		return rc;
	out->kind = NODE_DIRECTORY;
	if (directory_digest(d, &out->digest) < 0 ||
	    directory_size(d, im->st->size_formula, &out->size) < 0)
		rc = trust_miss(im, "cannot be encoded");
	directory_free(d);
	return rc;
}

static int trust_entry(struct importer *im, int dirfd, const char *name, int depth,
		       struct node *out)
{
	struct stat sb;

	if (depth >= NAR_MAX_DEPTH)
		return trust_miss(im, "is nested too deep");
	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return trust_miss(im, "cannot be stat'ed");
	if (S_ISREG(sb.st_mode))
		return trust_file(im, &sb, out);
	if (S_ISLNK(sb.st_mode))
		return trust_symlink(im, dirfd, name, out);
	if (S_ISDIR(sb.st_mode))
		return trust_dir(im, dirfd, name, depth, out);
	return trust_miss(im, "is not a file, directory or symlink");
}

/* The registered path of the directory tree at im->path if the import
 * index knows all of it, without reading a file; -ENOENT otherwise. The
 * NAR is a function of the tree, so a root equal to the registered path's
 * root has that path's NAR hash and size. */
static int import_trusted(struct importer *im, const char *name, struct path_info **out)
{
	struct node root = {0};
	struct nar_summary sum;
	struct path_info *pi;
	struct stat sb;
	int rc;

	if (lstat(im->path, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return trust_miss(im, "is not a directory");
	rc = trust_entry(im, AT_FDCWD, im->path, 0, &root);
	if (rc == 0 && stat_index_root(im->st, &root.digest, sum.sha256, &sum.size) < 0)
		rc = trust_miss(im, "has no record of its whole tree");
	if (rc < 0)
		return rc;
	if (path_info_of(name, &root, &sum, &pi) < 0)
		return trust_miss(im, "has a record that is not a path");
	if (!registered_same(im->st, pi)) {
		path_info_free(pi);
		return trust_miss(im, "is not registered with this tree");
	}
	log_info("--trust-stat: '%s' is known by its files' stat: nothing read", im->path);
	*out = pi;
	return 0;
}

static int importer_init(struct importer *im, struct store *st, const char *path,
			 const struct import_options *opt)
{
	size_t len = strlen(path);

	/* Trailing slashes go, as in Nix: "link/" adds the symlink itself. */
	while (len > 1 && path[len - 1] == '/')
		len--;
	im->st = st;
	im->opt = opt;
	im->path_cap = len + 256;
	im->path = malloc(im->path_cap);
	im->buf = malloc(SMALL_FILE_MAX + 1);
	if (!im->path || !im->buf)
		return -ENOMEM;
	memcpy(im->path, path, len);
	im->path[len] = '\0';
	im->path_len = len;
	return nar_writer_init(&im->nar, NULL, NULL);
}

static void importer_release(struct importer *im)
{
	stat_log_release(&im->log);
	dir_putter_free(im->putter);
	dir_service_free(im->stage);
	nar_writer_release(&im->nar);
	free(im->buf);
	free(im->path);
}

/* import_trusted() with an importer of its own. */
static int import_known(struct store *st, const char *path, const struct import_options *opt,
			const char *name, struct path_info **out)
{
	struct importer im = {0};
	int rc = importer_init(&im, st, path, opt);

	if (rc == 0)
		rc = import_trusted(&im, name, out);
	importer_release(&im);
	if (rc == 0 && opt->result)
		*opt->result = PATH_INFO_UNCHANGED;
	return rc;
}

int store_import_path(struct store *st, const char *path, const struct import_options *opt,
		      struct path_info **out)
{
	static const struct import_options none;
	struct importer im = {0};
	char name[STORE_PATH_MAX_NAME + 1];
	struct node root = {0};
	struct nar_summary sum;
	struct stat sb;
	int rc;

	opt = opt ? opt : &none;
	if (!*path)
		return sf_err(-EINVAL, "empty path");
	if (opt->name)
		rc = store_path_name_check(opt->name, strlen(opt->name));
	else
		rc = store_import_default_name(path, name, sizeof(name));
	if (rc < 0)
		return rc;
	if (opt->trust_stat && !st->index_get)
		return sf_err(-ENOTSUP,
			      "--trust-stat needs a store with an import index (a local store)");
	if (opt->trust_stat) {
		rc = import_known(st, path, opt, opt->name ? opt->name : name, out);
		if (rc != -ENOENT)
			return rc;
	}
	rc = importer_init(&im, st, path, opt);
	im.record = opt->trust_stat;
	if (rc == 0)
		rc = store_write_begin(st, &im.session);
	if (rc == 0)
		im.blobs = store_write_blobs(im.session);
	if (rc == 0 && lstat(im.path, &sb) < 0)
		rc = sf_err_sys(errno, "cannot stat '%s'", im.path);
	if (rc == 0)
		rc = import_walk(&im, &sb, &root, &sum);
	if (rc == 0)
		rc = import_register(&im, opt->name ? opt->name : name, &root, &sum, out);
	importer_release(&im);
	if (im.session)
		store_write_finish(im.session, rc, im.path);
	return rc;
}
