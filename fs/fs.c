/* fs.c - the filesystem operations over the inode table and the services. */
#include "fs/fs.h"

#include "common/err.h"
#include "common/fdlimit.h"
#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reader cache's size comes from the descriptor limit (fdlimit.h). */
#define READER_CACHE_MIN 16
#define READER_CACHE_MAX 16384
#define READER_BUCKETS	 4096
/* Root nodes fetched per root_nodes_list() call while listing the root. */
#define ROOT_BATCH 128

struct fs_file {
	atomic_uint refs;
	uint64_t ino;
	struct blob_reader *reader;
	/* protected by fs->files_mu */
	struct fs_file *prev, *next, *hnext;
	bool cached;
};

struct fs {
	struct blob_service *blobs;
	struct dir_service *dirs;
	struct root_nodes *root;
	struct fs_config cfg;
	struct inode_table *it;
	_Atomic uint64_t root_gen; /* bumped for each name added to the root */
	_Atomic uint64_t counters[FS_COUNT_MAX];

	pthread_mutex_t watch_mu;
	bool watching;	     /* protected by watch_mu */
	fs_notify_fn notify; /* protected by watch_mu */
	void *notify_ctx;    /* protected by watch_mu */

	pthread_mutex_t files_mu;
	/* protected by files_mu: the reader cache, most recent first */
	struct fs_file *lru_head, *lru_tail;
	struct fs_file *buckets[READER_BUCKETS];
	unsigned ncached;
	atomic_flag told_emfile; /* "said so once in the log" */
};

int fs_new(struct blob_service *blobs, struct dir_service *dirs, struct root_nodes *root,
	   const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	rc = inode_table_new(&fs->it);
	if (rc) {
		free(fs);
		return rc;
	}
	fs->blobs = blobs, fs->dirs = dirs, fs->root = root;
	if (cfg)
		fs->cfg = *cfg;
	if (!fs->cfg.reader_cache)
		fs->cfg.reader_cache = fdlimit_cache_size(READER_CACHE_MIN, READER_CACHE_MAX);
	log_debug("reader cache: at most %u open blobs", fs->cfg.reader_cache);
	pthread_mutex_init(&fs->watch_mu, NULL);
	pthread_mutex_init(&fs->files_mu, NULL);
	*out = fs;
	return 0;
}

static void file_close(struct fs_file *f)
{
	blob_reader_close(f->reader);
	free(f);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_unwatch_root(fs);
	while (fs->lru_head) {
		struct fs_file *f = fs->lru_head;

		fs->lru_head = f->next;
		file_close(f);
	}
	inode_table_free(fs->it);
	pthread_mutex_destroy(&fs->watch_mu);
	pthread_mutex_destroy(&fs->files_mu);
	free(fs);
}

void fs_stats(struct fs *fs, struct inode_table_stats *out)
{
	inode_table_stats(fs->it, out);
}

void fs_count(struct fs *fs, enum fs_counter c)
{
	if (c < FS_COUNT_MAX)
		atomic_fetch_add_explicit(&fs->counters[c], 1, memory_order_relaxed);
}

/* --- watching the root --- */

static void fs_on_root_name(void *ctx, const uint8_t *name, size_t len)
{
	struct fs *fs = ctx;

	atomic_fetch_add(&fs->root_gen, 1);
	pthread_mutex_lock(&fs->watch_mu);
	if (fs->notify)
		fs->notify(fs->notify_ctx, name, len);
	pthread_mutex_unlock(&fs->watch_mu);
}

int fs_watch_root(struct fs *fs, fs_notify_fn fn, void *ctx)
{
	int rc = 0;

	pthread_mutex_lock(&fs->watch_mu);
	if (!fs->watching) {
		rc = root_nodes_watch(fs->root, fs_on_root_name, fs);
		fs->watching = rc == 0;
	}
	if (rc == 0)
		fs->notify = fn, fs->notify_ctx = ctx;
	pthread_mutex_unlock(&fs->watch_mu);
	return rc;
}

void fs_unwatch_root(struct fs *fs)
{
	pthread_mutex_lock(&fs->watch_mu);
	fs->notify = NULL;
	pthread_mutex_unlock(&fs->watch_mu);
}

/* --- attributes --- */

static const struct inode *fs_inode(struct fs *fs, uint64_t ino)
{
	return inode_table_get(fs->it, ino);
}

static mode_t inode_mode(const struct inode *r, uint64_t ino)
{
	if (ino == INODE_ROOT || r->kind == NODE_DIRECTORY)
		return S_IFDIR | 0555;
	if (r->kind == NODE_SYMLINK)
		return S_IFLNK | 0777;
	return S_IFREG | (r->executable ? 0555 : 0444);
}

static int dir_children(struct fs *fs, uint64_t ino, const struct inode *r,
			struct inode_children **out)
{
	struct directory *d;
	char text[B3_TEXT_LEN + 1];
	int rc;

	if (inode_table_children(fs->it, ino, out) == 0)
		return 0;
	rc = dir_service_get(fs->dirs, &r->key.digest, &d);
	if (rc) {
		b3_digest_to_text(&r->key.digest, text);
		if (rc == -ENOENT)
			return sf_err(-EIO, "directory '%s' is missing from the store", text);
		return sf_err(-EIO, "cannot read directory '%s': %s", text, sf_errmsg(rc));
	}
	rc = inode_table_populate(fs->it, ino, d, out);
	directory_free(d);
	return rc;
}

/* A directory's entry count, populating it if needed; 0 if its Directory
 * cannot be read (the error shows up when it is listed). */
static uint64_t dir_size(struct fs *fs, uint64_t ino, const struct inode *r)
{
	uint64_t size = atomic_load_explicit(&r->size, memory_order_relaxed);
	struct inode_children *c;

	if (size != INODE_SIZE_UNKNOWN)
		return size;
	if (dir_children(fs, ino, r, &c)) {
		log_debug("%s", sf_errmsg(-EIO));
		sf_err_clear();
		return 0;
	}
	size = inode_children_count(c);
	inode_children_unref(c);
	return size;
}

static void attr_fill(struct fs *fs, uint64_t ino, const struct inode *r, struct stat *sb)
{
	uint64_t size = 0;

	memset(sb, 0, sizeof(*sb));
	sb->st_ino = ino;
	sb->st_mode = inode_mode(r, ino);
	sb->st_nlink = 1;
	if (ino != INODE_ROOT)
		size = r->kind == NODE_DIRECTORY
			   ? dir_size(fs, ino, r)
			   : atomic_load_explicit(&r->size, memory_order_relaxed);
	sb->st_size = (off_t)size;
	sb->st_blocks = (blkcnt_t)((size + 511) / 512);
	sb->st_blksize = 4096;
	sb->st_atim.tv_sec = sb->st_mtim.tv_sec = sb->st_ctim.tv_sec = 1;
}

int fs_getattr(struct fs *fs, uint64_t ino, struct stat *out)
{
	const struct inode *r = fs_inode(fs, ino);

	if (!r)
		return -ESTALE;
	attr_fill(fs, ino, r, out);
	return 0;
}

int fs_readlink(struct fs *fs, uint64_t ino, const uint8_t **target, size_t *len)
{
	const struct inode *r = fs_inode(fs, ino);

	if (!r)
		return -ESTALE;
	if (ino == INODE_ROOT || r->kind != NODE_SYMLINK)
		return -EINVAL;
	*target = r->key.target.bytes;
	*len = r->key.target.len;
	return 0;
}

/* --- lookup --- */

static int entry_fill(struct fs *fs, uint64_t ino, struct fs_entry *out)
{
	const struct inode *r = fs_inode(fs, ino);

	if (!r)
		return -ESTALE;
	out->ino = ino;
	attr_fill(fs, ino, r, &out->attr);
	return 0;
}

static int lookup_root(struct fs *fs, const char *name, size_t len, uint64_t *ino)
{
	uint8_t target[CASTORE_MAX_TARGET_LEN];
	struct node n;
	uint64_t gen;
	int rc;

	if (len == 0 || len > CASTORE_MAX_NAME_LEN)
		return -ENOENT;
	for (int tries = 0; tries < 2; tries++) {
		gen = atomic_load(&fs->root_gen);
		rc = root_nodes_lookup(fs->root, (const uint8_t *)name, len, &n, target);
		/* A name added while we looked must not become a cached miss. */
		if (rc != -ENOENT || atomic_load(&fs->root_gen) == gen)
			break;
	}
	if (rc == -ENOENT)
		return rc;
	if (rc)
		return sf_err(-EIO, "cannot look up '%.*s' at the root: %s", (int)len, name,
			      sf_errmsg(rc));
	return inode_table_intern(fs->it, &n, ino);
}

static int lookup_child(struct fs *fs, uint64_t parent, const char *name, size_t len, uint64_t *ino)
{
	const struct inode *r = fs_inode(fs, parent);
	struct inode_children *c;
	const uint8_t *cname;
	size_t idx, clen;
	int rc;

	if (!r)
		return -ESTALE;
	if (r->kind != NODE_DIRECTORY)
		return -ENOTDIR;
	rc = dir_children(fs, parent, r, &c);
	if (rc)
		return rc;
	rc = inode_children_find(c, (const uint8_t *)name, len, &idx);
	if (rc == 0)
		inode_children_at(c, idx, &cname, &clen, ino);
	inode_children_unref(c);
	return rc;
}

int fs_lookup(struct fs *fs, uint64_t parent, const char *name, size_t len, struct fs_entry *out)
{
	uint64_t ino;
	int rc;

	if (parent == INODE_ROOT)
		rc = lookup_root(fs, name, len, &ino);
	else
		rc = lookup_child(fs, parent, name, len, &ino);
	if (rc == 0)
		rc = entry_fill(fs, ino, out);
	if (rc == 0)
		inode_table_ref(fs->it, ino, 1);
	return rc;
}

void fs_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	inode_table_forget(fs->it, ino, n);
}

/* --- readdir --- */

static int dirent_emit(struct fs *fs, uint64_t ino, const uint8_t *name, size_t len, bool plus,
		       uint64_t next_off, fs_dirent_fn cb, void *ctx)
{
	const struct inode *r = fs_inode(fs, ino);
	struct fs_entry e;
	int rc;

	if (!r)
		return -ESTALE;
	e.ino = ino;
	if (plus) {
		attr_fill(fs, ino, r, &e.attr);
	} else {
		memset(&e.attr, 0, sizeof(e.attr));
		e.attr.st_ino = ino;
		e.attr.st_mode = inode_mode(r, ino);
	}
	rc = cb(ctx, (const char *)name, len, &e, next_off);
	if (rc == 0 && plus)
		inode_table_ref(fs->it, ino, 1);
	return rc;
}

static int readdir_dir(struct fs *fs, uint64_t ino, const struct inode *r, uint64_t off, bool plus,
		       fs_dirent_fn cb, void *ctx)
{
	struct inode_children *c;
	bool any = false;
	int rc = dir_children(fs, ino, r, &c);

	if (rc)
		return rc;
	for (size_t i = off; i < inode_children_count(c); i++) {
		const uint8_t *name;
		size_t len;
		uint64_t child;

		inode_children_at(c, i, &name, &len, &child);
		rc = dirent_emit(fs, child, name, len, plus, i + 1, cb, ctx);
		if (rc)
			break;
		any = true;
	}
	/* The last entries of a plus listing were taken: the kernel now has a
	 * dentry for every name and caches the listing, so the array is only
	 * needed again for a name it does not have (then rebuilt). Memory per
	 * inode touched stays small on walks (docs/limits.md). */
	if (plus && rc == 0 && any)
		inode_table_release_children(fs->it, ino);
	inode_children_unref(c);
	return rc < 0 && !any ? rc : 0;
}

struct root_batch {
	struct fs *fs;
	size_t n;
	int err;
	struct {
		uint64_t ino, cursor;
		uint8_t len;
		uint8_t name[CASTORE_MAX_NAME_LEN];
	} e[ROOT_BATCH];
};

static int root_batch_add(void *ctx, const struct node *n, uint64_t cursor)
{
	struct root_batch *b = ctx;
	int rc;

	if (n->name_len == 0 || n->name_len > CASTORE_MAX_NAME_LEN)
		return b->err = sf_err(-EIO, "a root node has an invalid name");
	rc = inode_table_intern(b->fs->it, n, &b->e[b->n].ino);
	if (rc)
		return b->err = rc;
	b->e[b->n].cursor = cursor;
	b->e[b->n].len = (uint8_t)n->name_len;
	memcpy(b->e[b->n].name, n->name, n->name_len);
	return ++b->n == ROOT_BATCH ? 1 : 0;
}

/* Lists the root in batches: the list callback only copies, so no
 * Directory is fetched while the root nodes' listing is in progress. */
static int readdir_root(struct fs *fs, uint64_t off, bool plus, fs_dirent_fn cb, void *ctx)
{
	struct root_batch *b = malloc(sizeof(*b));
	bool any = false;
	int rc = 0;

	if (!b)
		return -ENOMEM;
	do {
		b->fs = fs, b->n = 0, b->err = 0;
		rc = root_nodes_list(fs->root, off, root_batch_add, b);
		if (rc < 0) {
			rc = b->err ? b->err
				    : sf_err(-EIO, "cannot list the root: %s", sf_errmsg(rc));
			break;
		}
		rc = 0;
		for (size_t i = 0; i < b->n && rc == 0; i++) {
			rc = dirent_emit(fs, b->e[i].ino, b->e[i].name, b->e[i].len, plus,
					 b->e[i].cursor, cb, ctx);
			if (rc == 0)
				any = true, off = b->e[i].cursor;
		}
	} while (rc == 0 && b->n == ROOT_BATCH);
	free(b);
	return rc < 0 && !any ? rc : 0;
}

/* "." and ".." take the offsets 0 and 1; the entries follow with their
 * offsets shifted by DOT_ENTRIES (docs/limits.md "Directory listings"). */
#define DOT_ENTRIES 2

struct shifted {
	fs_dirent_fn cb;
	void *ctx;
};

static int shifted_add(void *ctx, const char *name, size_t len, const struct fs_entry *e,
		       uint64_t next_off)
{
	struct shifted *s = ctx;

	return s->cb(s->ctx, name, len, e, next_off + DOT_ENTRIES);
}

/* "." is the directory itself; ".." carries the root's inode number, as a
 * content-addressed directory has no single parent (the kernel resolves
 * ".." itself). Neither counts a kernel reference: the kernel takes none
 * for them. > 0 if one did not fit. */
static int readdir_dots(struct fs *fs, uint64_t ino, uint64_t off, fs_dirent_fn cb, void *ctx)
{
	struct fs_entry e = {.ino = ino};
	int rc = 0;

	attr_fill(fs, ino, fs_inode(fs, ino), &e.attr);
	if (off == 0)
		rc = cb(ctx, ".", 1, &e, 1);
	if (rc == 0 && off <= 1) {
		e.ino = INODE_ROOT;
		attr_fill(fs, INODE_ROOT, fs_inode(fs, INODE_ROOT), &e.attr);
		rc = cb(ctx, "..", 2, &e, 2);
	}
	return rc;
}

int fs_readdir(struct fs *fs, uint64_t ino, uint64_t off, bool plus, fs_dirent_fn cb, void *ctx)
{
	const struct inode *r = fs_inode(fs, ino);
	struct shifted sh = {cb, ctx};
	struct inode_children *c;
	int rc;

	if (!r)
		return -ESTALE;
	if (ino == INODE_ROOT && !fs->cfg.list_root)
		return -EPERM;
	if (ino != INODE_ROOT && r->kind != NODE_DIRECTORY)
		return -ENOTDIR;
	/* Past the end of a directory populated before (its children array
	 * may be released after a complete listing, see readdir_dir()): the
	 * kernel's last call, answered without rebuilding the array. */
	if (ino != INODE_ROOT && off >= DOT_ENTRIES &&
	    off - DOT_ENTRIES >= atomic_load_explicit(&r->size, memory_order_relaxed))
		return 0;
	/* A missing Directory is EIO, not a listing of "." and ".." only. */
	if (ino != INODE_ROOT) {
		rc = dir_children(fs, ino, r, &c);
		if (rc)
			return rc;
		inode_children_unref(c);
	}
	if (off < DOT_ENTRIES && readdir_dots(fs, ino, off, cb, ctx) > 0)
		return 0;
	off = off < DOT_ENTRIES ? 0 : off - DOT_ENTRIES;
	if (ino == INODE_ROOT)
		return readdir_root(fs, off, plus, shifted_add, &sh);
	return readdir_dir(fs, ino, r, off, plus, shifted_add, &sh);
}

/* --- files and the reader cache --- */

static struct fs_file **bucket_of(struct fs *fs, uint64_t ino)
{
	return &fs->buckets[ino % READER_BUCKETS];
}

static void lru_unlink(struct fs *fs, struct fs_file *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		fs->lru_head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		fs->lru_tail = f->prev;
	f->prev = f->next = NULL;
}

static void lru_push(struct fs *fs, struct fs_file *f)
{
	f->prev = NULL;
	f->next = fs->lru_head;
	if (fs->lru_head)
		fs->lru_head->prev = f;
	fs->lru_head = f;
	if (!fs->lru_tail)
		fs->lru_tail = f;
}

/* Called with files_mu held: a cached file, with a new reference. */
static struct fs_file *cache_find(struct fs *fs, uint64_t ino)
{
	struct fs_file *f;

	for (f = *bucket_of(fs, ino); f; f = f->hnext)
		if (f->ino == ino)
			break;
	if (f) {
		lru_unlink(fs, f);
		lru_push(fs, f);
		atomic_fetch_add(&f->refs, 1);
	}
	return f;
}

/* Called with files_mu held: takes the cache's reference away from the
 * least recently used file; returns it if that was the last one. */
static struct fs_file *cache_evict(struct fs *fs)
{
	struct fs_file *f = fs->lru_tail, **pp;

	lru_unlink(fs, f);
	for (pp = bucket_of(fs, f->ino); *pp != f; pp = &(*pp)->hnext)
		;
	*pp = f->hnext;
	f->cached = false;
	fs->ncached--;
	return atomic_fetch_sub(&f->refs, 1) == 1 ? f : NULL;
}

/* Inserts `f` (the caller's reference) unless another thread did first;
 * returns the file to use, with a reference for the caller. */
static struct fs_file *cache_insert(struct fs *fs, struct fs_file *f)
{
	struct fs_file *cur, *victim = NULL;

	pthread_mutex_lock(&fs->files_mu);
	cur = cache_find(fs, f->ino);
	if (!cur) {
		cur = f;
		f = NULL;
		atomic_fetch_add(&cur->refs, 1);
		cur->cached = true;
		cur->hnext = *bucket_of(fs, cur->ino);
		*bucket_of(fs, cur->ino) = cur;
		lru_push(fs, cur);
		if (++fs->ncached > fs->cfg.reader_cache)
			victim = cache_evict(fs);
	}
	pthread_mutex_unlock(&fs->files_mu);
	if (victim)
		file_close(victim);
	if (f)
		file_close(f);
	return cur;
}

/* Out of descriptors: closes the older half of the cached readers (those
 * nobody else holds) so the open can be retried. False if none was. */
static bool cache_shrink(struct fs *fs)
{
	struct fs_file *victims = NULL, *f;
	unsigned keep = fs->ncached / 2;
	bool freed = false;

	pthread_mutex_lock(&fs->files_mu);
	while (fs->ncached > keep && fs->lru_tail) {
		f = cache_evict(fs);
		if (f) {
			f->next = victims;
			victims = f;
		}
	}
	pthread_mutex_unlock(&fs->files_mu);
	while ((f = victims)) {
		victims = f->next;
		file_close(f);
		freed = true;
	}
	if (!freed)
		return false;
	if (!atomic_flag_test_and_set(&fs->told_emfile))
		log_warn("out of file descriptors: closed cached blobs (cache of %u; see "
			 "docs/limits.md)",
			 fs->cfg.reader_cache);
	return true;
}

static int file_open(struct fs *fs, uint64_t ino, const struct inode *r, struct fs_file **out)
{
	char text[B3_TEXT_LEN + 1];
	struct fs_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = blob_service_open_read(fs->blobs, &r->key.digest, &f->reader);
	if ((rc == -EMFILE || rc == -ENFILE) && cache_shrink(fs))
		rc = blob_service_open_read(fs->blobs, &r->key.digest, &f->reader);
	if (rc == 0 && f->reader->size != atomic_load(&r->size))
		rc = -EBADMSG;
	if (rc) {
		blob_reader_close(rc == -EBADMSG ? f->reader : NULL);
		free(f);
		b3_digest_to_text(&r->key.digest, text);
		if (rc == -ENOENT)
			return sf_err(-EIO, "blob '%s' is missing from the store", text);
		if (rc == -EBADMSG)
			return sf_err(-EIO, "blob '%s' has the wrong size", text);
		return sf_err(-EIO, "cannot open blob '%s': %s", text, sf_errmsg(rc));
	}
	f->ino = ino;
	atomic_init(&f->refs, 1);
	*out = f;
	return 0;
}

/* The inode of a regular file, or the errno a file operation on ino
 * answers: the kernel may still name an inode we forgot (ESTALE). */
static int file_inode(struct fs *fs, uint64_t ino, const struct inode **out)
{
	const struct inode *r = fs_inode(fs, ino);

	if (!r)
		return -ESTALE;
	if (ino == INODE_ROOT || r->kind == NODE_DIRECTORY)
		return -EISDIR;
	if (r->kind == NODE_SYMLINK)
		return -ELOOP;
	*out = r;
	return 0;
}

/* A cached open file of ino with a reference taken, or NULL. */
static struct fs_file *cache_get(struct fs *fs, uint64_t ino)
{
	struct fs_file *f;

	pthread_mutex_lock(&fs->files_mu);
	f = cache_find(fs, ino);
	pthread_mutex_unlock(&fs->files_mu);
	return f;
}

/* The cached reader of `ino`, else a new one, cached (the cache is
 * bounded); *cached says which. */
static int file_cached_or_open(struct fs *fs, uint64_t ino, const struct inode *r,
			       struct fs_file **out, bool *cached)
{
	struct fs_file *f = cache_get(fs, ino);
	int rc;

	*cached = f != NULL;
	if (f) {
		*out = f;
		return 0;
	}
	rc = file_open(fs, ino, r, &f);
	if (rc)
		return rc;
	*out = cache_insert(fs, f);
	return 0;
}

int fs_file_get(struct fs *fs, uint64_t ino, struct fs_file **out)
{
	const struct inode *r;
	bool cached;
	int rc;

	rc = file_inode(fs, ino, &r);
	if (rc)
		return rc;
	return file_cached_or_open(fs, ino, r, out, &cached);
}

void fs_file_unref(struct fs *fs, struct fs_file *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1)
		file_close(f);
}

int fs_file_fd(const struct fs_file *f)
{
	return f->reader->fd;
}

uint64_t fs_file_size(const struct fs_file *f)
{
	return f->reader->size;
}

int fs_file_read(struct fs_file *f, void *buf, size_t size, uint64_t off, size_t *n)
{
	uint64_t fsize = f->reader->size;
	size_t want = off >= fsize ? 0 : (size_t)(fsize - off < size ? fsize - off : size);
	int rc;

	if (want) {
		rc = blob_reader_pread_full(f->reader, buf, want, off);
		if (rc)
			return sf_err(-EIO, "cannot read a blob at offset %llu: %s",
				      (unsigned long long)off, sf_errmsg(rc));
	}
	*n = want;
	return 0;
}

int fs_file_fetch(struct fs *fs, uint64_t ino, void *buf, size_t cap, size_t *n)
{
	const struct inode *r;
	struct fs_file *f;
	bool cached;
	int rc;

	rc = file_inode(fs, ino, &r);
	if (rc)
		return rc;
	if (atomic_load_explicit(&r->size, memory_order_relaxed) > cap)
		return -EFBIG;
	if (atomic_load_explicit(&r->nlookup, memory_order_relaxed) == 0)
		return -ENOENT;
	if (atomic_load_explicit(&r->pushed, memory_order_relaxed))
		return -EALREADY;
	/* Cached like a READ's reader: the kernel may not keep what is
	 * pushed (no inode yet: -ENOENT; or its pages dropped later: over
	 * S3, 0.5-7% of a cold tar's files were read again after a
	 * successful push, t19), and a READ then finds the bytes here rather
	 * than fetching them again. A reader already cached means a READ
	 * came first: nothing to push. */
	rc = file_cached_or_open(fs, ino, r, &f, &cached);
	if (rc)
		return rc;
	rc = cached ? -EALREADY : fs_file_read(f, buf, cap, 0, n);
	fs_file_unref(fs, f);
	return rc;
}

void fs_file_pushed(struct fs *fs, uint64_t ino)
{
	inode_table_mark_pushed(fs->it, ino);
}

int fs_file_length(struct fs *fs, uint64_t ino, uint64_t *size)
{
	const struct inode *r;
	int rc = file_inode(fs, ino, &r);

	if (rc)
		return rc;
	*size = atomic_load_explicit(&r->size, memory_order_relaxed);
	return 0;
}

/* --- extended attributes --- */

static int xattr_reply(const void *val, size_t vlen, void *buf, size_t size, size_t *len)
{
	*len = vlen;
	if (size == 0)
		return 0;
	if (size < vlen)
		return -ERANGE;
	memcpy(buf, val, vlen);
	return 0;
}

static int stats_xattr(struct fs *fs, void *buf, size_t size, size_t *len)
{
	struct inode_table_stats s;
	char text[256];
	int n;

	inode_table_stats(fs->it, &s);
	n = snprintf(text, sizeof(text),
		     "inodes=%llu bytes=%llu populated=%llu reads=%llu opens=%llu "
		     "passthrough=%llu pushed=%llu\n",
		     (unsigned long long)s.inodes, (unsigned long long)s.bytes,
		     (unsigned long long)s.populated,
		     (unsigned long long)atomic_load(&fs->counters[FS_COUNT_READ]),
		     (unsigned long long)atomic_load(&fs->counters[FS_COUNT_OPEN]),
		     (unsigned long long)atomic_load(&fs->counters[FS_COUNT_PASSTHROUGH]),
		     (unsigned long long)atomic_load(&fs->counters[FS_COUNT_PUSH]));
	return xattr_reply(text, (size_t)n, buf, size, len);
}

/* The one xattr name an inode has, or NULL. */
static const char *xattr_name(const struct inode *r, uint64_t ino)
{
	if (ino == INODE_ROOT)
		return NULL;
	if (r->kind == NODE_FILE)
		return FS_XATTR_BLOB;
	if (r->kind == NODE_DIRECTORY)
		return FS_XATTR_DIRECTORY;
	return NULL;
}

int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size, size_t *len)
{
	const struct inode *r = fs_inode(fs, ino);
	const char *have;
	char text[B3_TEXT_LEN + 1];

	if (fs->cfg.no_xattr)
		return -ENOSYS;
	if (!r)
		return -ESTALE;
	if (ino == INODE_ROOT && !strcmp(name, FS_XATTR_STATS))
		return stats_xattr(fs, buf, size, len);
	have = xattr_name(r, ino);
	if (!have || strcmp(name, have))
		return -ENODATA;
	b3_digest_to_text(&r->key.digest, text);
	return xattr_reply(text, B3_TEXT_LEN, buf, size, len);
}

int fs_listxattr(struct fs *fs, uint64_t ino, void *buf, size_t size, size_t *len)
{
	const struct inode *r = fs_inode(fs, ino);
	const char *have;

	if (fs->cfg.no_xattr)
		return -ENOSYS;
	if (!r)
		return -ESTALE;
	have = xattr_name(r, ino);
	if (!have)
		return xattr_reply("", 0, buf, size, len);
	return xattr_reply(have, strlen(have) + 1, buf, size, len);
}

void fs_statfs(struct fs *fs, struct statvfs *out)
{
	struct inode_table_stats s;
	uint64_t bytes = 0, objects = 0;

	inode_table_stats(fs->it, &s);
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = 4096;
	out->f_files = s.inodes;
	/* Like a squashfs image: as big as what it holds, nothing free. */
	if (fs->cfg.usage && fs->cfg.usage(fs->cfg.usage_ctx, &bytes, &objects) == 0) {
		out->f_blocks = (bytes + 4095) / 4096;
		out->f_files = objects;
	}
	out->f_namemax = CASTORE_MAX_NAME_LEN;
	out->f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
}
