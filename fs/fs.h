/* fs.h - the read-only filesystem: what each request means (docs/fuse.md),
 * independent of the transport that carries it (/dev/fuse, virtio-fs).
 *
 * Inode numbers come from fs/inode_table.h (1 = root; content-addressed
 * elsewhere). Every operation returns 0 or a negative errno and never
 * replies to anybody: the transport does that. Failures the user should
 * hear about (a missing Directory or blob) are -EIO with a message
 * recorded by sf_err(); the transport logs it.
 *
 * Attributes are those of a real /nix/store: directories 0555, files
 * 0444, executables 0555, symlinks 0777 (Nix's store shows lrwxrwxrwx; the
 * reference snix filesystem reports 0444), owner root:root, every
 * timestamp 1 s after the epoch (the root too), nlink 1. st_size is the
 * file length, the symlink target length, or the number of entries of a
 * directory. That count needs the Directory, so a directory is populated
 * the first time its attributes are produced (lookup, readdirplus,
 * getattr); if its Directory is missing st_size is 0 and lookups inside it
 * fail with EIO. The root's size is 0. st_blocks = ceil(size / 512),
 * st_blksize 4096.
 *
 * Thread-safety: all functions may be called concurrently. */
#ifndef STOREFS_FS_H
#define STOREFS_FS_H

#include "castore/blob_service.h"
#include "castore/dir_service.h"
#include "fs/inode_table.h"
#include "castore/root_nodes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* The extended attributes offered (names without NUL). */
#define FS_XATTR_BLOB	   "user.storefs.castore.blob.digest"
#define FS_XATTR_DIRECTORY "user.storefs.castore.directory.digest"
/* On the root only, not listed: "inodes=N bytes=N populated=N reads=N
 * opens=N passthrough=N pushed=N\n" (the last four are the transport's counters,
 * see fs_count()). */
#define FS_XATTR_STATS "user.storefs.stats"

struct fs_config {
	bool list_root; /* allow listing the root (else EPERM) */
	bool no_xattr;	/* getxattr/listxattr answer ENOSYS */
	/* Open blob readers kept for reads without a file handle (and so
	 * open descriptors); 0: sized from RLIMIT_NOFILE (common/fdlimit.h).
	 * When the process runs out of descriptors, older cached readers are
	 * closed and the open retried. */
	unsigned reader_cache;
	/* Sizes for statfs: the bytes of the stored blobs and the number of
	 * stored objects (NULL or an error: 0 blocks, files = inodes known). */
	int (*usage)(void *ctx, uint64_t *bytes, uint64_t *objects);
	void *usage_ctx;
};

struct fs;

/* Creates a filesystem over the services (borrowed: they must outlive
 * it). -ENOMEM. */
int fs_new(struct blob_service *blobs, struct dir_service *dirs, struct root_nodes *root,
	   const struct fs_config *cfg, struct fs **out);
/* Frees the filesystem and its cached blob readers. If fs_watch_root()
 * was used, the watch must have ended first (the root nodes' watch holds
 * `fs` as its context: free the service behind them before this). */
void fs_free(struct fs *fs);

/* Called when a name appears at the root, from the watching thread. */
typedef void (*fs_notify_fn)(void *ctx, const uint8_t *name, size_t len);
/* Starts watching the root nodes for new names and calls `fn` (after the
 * filesystem has taken note) for each. -ENOTSUP if the root nodes cannot
 * be watched. fs_unwatch_root() guarantees `fn` is not running and will
 * not be called again. */
int fs_watch_root(struct fs *fs, fs_notify_fn fn, void *ctx);
void fs_unwatch_root(struct fs *fs);

struct fs_entry {
	uint64_t ino;
	struct stat attr;
};

/* Resolves `name` in directory `parent` and counts one kernel reference
 * on success. At the root the name must be a root node's exact name.
 * -ENOENT (no such name), -ENOTDIR (parent is not a directory), -EIO
 * (Directory missing or unreadable), -ESTALE (unknown parent). */
int fs_lookup(struct fs *fs, uint64_t parent, const char *name, size_t len, struct fs_entry *out);

/* Drops `n` kernel references (FORGET). */
void fs_forget(struct fs *fs, uint64_t ino, uint64_t n);

/* -ESTALE for an unknown inode. */
int fs_getattr(struct fs *fs, uint64_t ino, struct stat *out);

/* The target of symlink `ino`: borrowed, valid for the filesystem's
 * lifetime, not NUL-terminated. -EINVAL if not a symlink, -ESTALE. */
int fs_readlink(struct fs *fs, uint64_t ino, const uint8_t **target, size_t *len);

/* Called per directory entry. `next_off` is the offset that resumes the
 * listing right after this entry. Return 0 if the entry was taken, > 0 if
 * it did not fit (the listing stops; it is not lost: resuming at the
 * previous entry's next_off yields it again). In plus mode `e->attr` is
 * complete and a taken entry counts one kernel reference; otherwise only
 * st_ino and the type bits of st_mode are set. */
typedef int (*fs_dirent_fn)(void *ctx, const char *name, size_t len, const struct fs_entry *e,
			    uint64_t next_off);

/* Lists directory `ino` from offset `off` (0 = the start): "." (next
 * offset 1) and ".." (2) first, counting no kernel reference, then the
 * entries in bytewise name order with offsets 2 + index + 1, or at the
 * root 2 + the root nodes' cursors, so listings resume exactly even while
 * names are added to the root. -EPERM for the root unless list_root; -ENOTDIR;
 * -EIO (Directory missing); an error after some entries were taken ends
 * the listing with 0 so the kernel keeps what it got. */
int fs_readdir(struct fs *fs, uint64_t ino, uint64_t off, bool plus, fs_dirent_fn cb, void *ctx);

/* An open blob, reference counted; shared between readers of the same
 * inode through a bounded LRU cache. */
struct fs_file;

/* A reference to the blob of file `ino`. -EISDIR (directory or root),
 * -ELOOP (symlink), -EIO (blob missing or unreadable), -ESTALE. */
int fs_file_get(struct fs *fs, uint64_t ino, struct fs_file **out);
void fs_file_unref(struct fs *fs, struct fs_file *f);
/* The blob as one local file (usable for splice / passthrough), or -1. */
int fs_file_fd(const struct fs_file *f);
uint64_t fs_file_size(const struct fs_file *f);
/* Reads min(size, file size - off) bytes: exactly that many or -EIO. */
int fs_file_read(struct fs_file *f, void *buf, size_t size, uint64_t off, size_t *n);

/* The whole content of file `ino` into `buf` if it is at most `cap` bytes,
 * through a reader opened (and verified) and kept in the reader cache:
 * what a transport pushes into the kernel's page cache ahead of reads. -ENOENT
 * if the kernel holds no reference to it (it has no inode to put the
 * pages in); -EALREADY if it was pushed before (fs_file_pushed()) or a
 * cached reader exists (a READ of it came, so the kernel has it); -EFBIG if it is larger; otherwise
 * the errors of fs_file_get(). */
int fs_file_fetch(struct fs *fs, uint64_t ino, void *buf, size_t cap, size_t *n);
/* Records that the kernel's cache of `ino` holds its bytes (until the
 * kernel forgets the inode). */
void fs_file_pushed(struct fs *fs, uint64_t ino);
/* The length of file `ino`, or -ESTALE / -EISDIR / -ELOOP. */
int fs_file_length(struct fs *fs, uint64_t ino, uint64_t *size);

/* Extended attributes. With size 0 only *len (the value's / list's
 * length) is set; a non-zero size smaller than that is -ERANGE. -ENODATA
 * for a name the inode does not have; -ENOSYS if no_xattr. */
int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size, size_t *len);
int fs_listxattr(struct fs *fs, uint64_t ino, void *buf, size_t size, size_t *len);

/* Read-only numbers: bsize 4096, namemax 255, blocks = the stored blobs'
 * bytes and files = the stored objects (cfg.usage), no free blocks or
 * inodes. */
void fs_statfs(struct fs *fs, struct statvfs *out);

void fs_stats(struct fs *fs, struct inode_table_stats *out);

/* Request counters a transport bumps for the stats xattr (a debug and test
 * aid: e.g. proving that passed-through files cause no READ). */
enum fs_counter {
	FS_COUNT_READ,	      /* read requests that reached the daemon */
	FS_COUNT_OPEN,	      /* open requests that reached the daemon */
	FS_COUNT_PASSTHROUGH, /* opens handed to the kernel (passthrough) */
	FS_COUNT_PUSH,	      /* files stored in the kernel's cache ahead of reads */
	FS_COUNT_MAX,
};
void fs_count(struct fs *fs, enum fs_counter c);

#endif
