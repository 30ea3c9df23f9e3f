/* inode_table.h - content-addressed inode numbers for the filesystem.
 *
 * Inode 1 is the root. Every other inode stands for CONTENT, not for a
 * place in the tree: a file is keyed by (blob digest, executable bit), a
 * symlink by its target bytes, a directory by its Directory digest. The
 * same key anywhere in the store yields the same inode, so the kernel
 * shares page cache and dentries between identical subtrees; a blob seen
 * both executable and not gets two inodes (their modes differ).
 *
 * Records are fixed-size and live in pages that never move, so a record
 * found by its number can be read without a lock. A key -> inode hash
 * (open addressing, one mutex) is only consulted when an inode is
 * interned, i.e. when a directory is populated or a root name resolved.
 *
 * Directories start SPARSE (digest only). Populating one from its
 * Directory builds a name-sorted children array (binary search, names in
 * one block), published once; concurrent populators may both build, one
 * wins and the other's copy is dropped (the inodes are the same anyway).
 * When the kernel forgets a directory completely its children array may
 * be dropped; a later populate rebuilds it with the same inode numbers.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef STOREFS_INODE_TABLE_H
#define STOREFS_INODE_TABLE_H

#include "castore/directory.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INODE_ROOT 1
/* Directory entry count not known yet (the directory was never populated). */
#define INODE_SIZE_UNKNOWN UINT64_MAX

struct inode_children;

/* One inode. Callers read it; only the table writes it. kind, executable
 * and key are immutable once the inode number has been handed out. */
struct inode {
	union {
		struct b3_digest digest; /* file: blob; directory: Directory */
		struct {
			const uint8_t *bytes; /* owned by the table */
			uint32_t len;
		} target; /* symlink */
	} key;
	/* file: length; symlink: target length; directory: number of
	 * entries once populated, else INODE_SIZE_UNKNOWN. */
	_Atomic uint64_t size;
	_Atomic uint64_t nlookup; /* kernel references (lookup count) */
	/* protected by the table's stripe lock for this inode */
	struct inode_children *children;
	uint8_t kind; /* enum node_kind; 0 for the root */
	bool executable;
	/* file: its bytes were stored in the kernel's cache of this inode (a
	 * transport's push); cleared when the kernel forgets the inode */
	atomic_bool pushed;
};

struct inode_table;

/* Creates an empty table holding only the root. -ENOMEM. */
int inode_table_new(struct inode_table **out);
void inode_table_free(struct inode_table *t);

/* The record of `ino`, or NULL if no such inode exists. The pointer stays
 * valid for the table's lifetime. */
const struct inode *inode_table_get(struct inode_table *t, uint64_t ino);

/* Returns the inode of `n`'s content, creating it if needed (its name is
 * ignored). 0, -ENOMEM, or -EOVERFLOW when 2^32-1 inodes exist. */
int inode_table_intern(struct inode_table *t, const struct node *n, uint64_t *ino);

/* The children of directory `ino` if it is populated: 0 and a reference
 * in *out (release with inode_children_unref), or -ENOENT if it is not. */
int inode_table_children(struct inode_table *t, uint64_t ino, struct inode_children **out);

/* Populates directory `ino` from its Directory `d` (the caller fetched
 * it): interns every child and publishes the children array unless
 * another thread did first. Returns a reference to the published array.
 * -EINVAL if `ino` is not a directory; -ENOMEM; -EOVERFLOW. */
int inode_table_populate(struct inode_table *t, uint64_t ino, const struct directory *d,
			 struct inode_children **out);

void inode_children_unref(struct inode_children *c);
size_t inode_children_count(const struct inode_children *c);
/* Entry `i` (< count): name (not NUL-terminated, valid while the
 * reference is held) and inode. */
void inode_children_at(const struct inode_children *c, size_t i, const uint8_t **name, size_t *len,
		       uint64_t *ino);
/* Index of the child called `name`, or -ENOENT. O(log n). */
int inode_children_find(const struct inode_children *c, const uint8_t *name, size_t len,
			size_t *index);

/* Adds `n` kernel references to `ino` (a lookup reply or a readdirplus
 * entry). Unknown inodes are ignored. */
void inode_table_ref(struct inode_table *t, uint64_t ino, uint64_t n);
/* Drops `n` references (FORGET). When a directory reaches 0 its children
 * array is released, when a file does its `pushed` flag is cleared; the
 * record and its number stay. Saturates at 0; unknown inodes are ignored. */
void inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/* Releases directory `ino`'s children array now, whatever its kernel
 * references (the kernel holds every entry: see fs_readdir()); a later
 * populate rebuilds it with the same inode numbers. */
void inode_table_release_children(struct inode_table *t, uint64_t ino);

/* Sets file `ino`'s `pushed` flag; false if it was set already. */
bool inode_table_mark_pushed(struct inode_table *t, uint64_t ino);

struct inode_table_stats {
	uint64_t inodes;    /* including the root */
	uint64_t bytes;	    /* memory held by the table */
	uint64_t populated; /* directories with a children array */
};
void inode_table_stats(struct inode_table *t, struct inode_table_stats *out);

#endif
