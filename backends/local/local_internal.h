/* local_internal.h - pieces shared by the files of the local backend. */
#ifndef STOREFS_BACKENDS_LOCAL_INTERNAL_H
#define STOREFS_BACKENDS_LOCAL_INTERNAL_H

#include "backends/local/local.h"

#include <dirent.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct local_env;

/* The store bundle of a local store. */
struct local_store {
	struct store base;
	int lock_fd;	/* import.lock while we hold it, else -1 */
	int collect_fd; /* gc.lock, held exclusively by a collection, else -1 */
	int rootfd;	/* the store directory */
	char *root;	/* its absolute path */
	struct local_env *env;
	/* statfs may come often (df, shells): the last count is reused for a
	 * few seconds (USAGE_TTL_S in local_store.c) rather than read again. */
	pthread_mutex_t usage_lock;
	struct store_usage usage;
	bool counted;
	struct timespec usage_at;
};

/* Sets the roots and collection operations of `st` (local_gc.c). */
void local_gc_set_ops(struct store *st);
/* Sets the import index operations of `st` (local_index.c). */
void local_index_set_ops(struct store *st);
/* Sets the writer and reclaim operations of `st` (local_writers.c). */
void local_writers_set_ops(struct store *st);

/* Relative to the store directory. */
#define LOCAL_BLOBS_DIR	     "blobs"
#define LOCAL_TMP_DIR	     "tmp"
#define LOCAL_DB_DIR	     "db"
#define LOCAL_NOTIFY_DIR     "notify"
#define LOCAL_LOCK_FILE	     "import.lock"
#define LOCAL_QUARANTINE_DIR "quarantine"
#define LOCAL_ROOTS_DIR	     "gcroots"
#define LOCAL_TEMPROOTS_DIR  "temproots"
#define LOCAL_COLLECT_LOCK   "gc.lock"

/* "blobs/ab/cd/" + 64 hex + NUL */
#define LOCAL_BLOB_REL_MAX (sizeof(LOCAL_BLOBS_DIR) + 6 + B3_HEX_LEN + 1)

/* One LMDB environment per store directory and process, shared by every
 * open of that store in the process (LMDB forbids opening one environment
 * twice in a process). Reference counted; the handles are immutable. */
struct local_env {
	MDB_env *env;
	MDB_dbi dirs;	      /* raw 32-byte digest -> canonical Directory encoding */
	MDB_dbi paths;	      /* 20-byte store path digest -> 8-byte BE cursor || PathInfo */
	MDB_dbi seq;	      /* 8-byte BE cursor -> 20-byte store path digest */
	MDB_dbi meta;	      /* "next_cursor" -> 8-byte BE */
	MDB_dbi verified;     /* raw 32-byte blob digest -> struct local_ident (48 bytes LE) */
	MDB_dbi inline_blobs; /* raw 32-byte blob digest -> 8-byte LE time || bytes */
	MDB_dbi stat_index;   /* import index records (store/stat_index.c), opaque */
	bool has_verified;    /* false: a read-only open of a store that predates it */
	bool has_inline;      /* likewise for "blobs" (local_inline.c) */
	bool has_stat_index;  /* likewise for "stat_index" */
	/* The highest store format version seen (the marker's, local.h);
	 * becomes 2 before the first inline blob is committed. */
	atomic_int format;
	bool readonly; /* opened MDB_RDONLY (its first opener was read-only) */
	dev_t dev;     /* identity of the db directory ... */
	ino_t ino;
	pid_t pid;     /* ... in this process */
	unsigned refs; /* protected by the registry lock in local_db.c */
	struct local_env *next;
};

/* Raises env->format to `format` (the marker's version at an open). */
void local_env_format_seen(struct local_env *e, int format);
/* Makes the marker of the store in `rootfd` say format 2, if it says 1. */
int local_marker_upgrade(int rootfd, const char *dir);

/* Opens or shares the environment in `dbdir` (created unless `readonly`). */
int local_env_open(const char *dbdir, bool readonly, struct local_env **out);
/* Takes / drops a reference; the last put closes the environment. */
void local_env_ref(struct local_env *e);
void local_env_unref(struct local_env *e);
/* Counts the records of the environment: Directories, PathInfos and blobs
 * (their identity records, which hold each blob's size: the bytes are
 * summed over them, one pass). */
int local_env_usage(struct local_env *e, struct store_usage *out);
/* A short transaction; read ones are MDB_RDONLY. */
int local_txn_begin(struct local_env *e, bool write, MDB_txn **out);
/* Translates an LMDB code: MDB_NOTFOUND -> -ENOENT (no message),
 * MDB_MAP_FULL -> -ENOSPC, others -> -EIO, with `what` in the message. */
int local_mdb_err(int rc, const char *what);

/* Drops this process's mapping of the whole map pages inside `v`, a value
 * already copied out (local_map.c). Never an error. */
void local_map_drop(const MDB_val *v);
/* The part of the map a walk over many records (statfs's count) touched:
 * the span of the keys and values it saw, dropped at the end as above, so
 * that a `df` on a mount does not leave the whole map in its resident size. */
struct local_map_span {
	uintptr_t lo, hi; /* hi == 0: empty */
};
void local_map_span_add(struct local_map_span *s, const MDB_val *v);
void local_map_span_drop(const struct local_map_span *s);

/* "blobs/ab/cd/<hex>" into `out` (LOCAL_BLOB_REL_MAX bytes). */
void local_blob_relpath(const struct b3_digest *digest, char *out);

/* Constructors of the three services. Each takes its own duplicate of
 * `rootfd` and its own reference on `env` (the caller keeps its own). */
int local_blobs_new(struct local_env *env, int rootfd, const char *root, bool readonly,
		    struct blob_service **out);
int local_dirs_new(struct local_env *env, bool readonly, struct dir_service **out);
int local_paths_new(struct local_env *env, int rootfd, const char *root, bool readonly,
		    struct path_info_service **out);

/* --- verified reads (local_verify.c) --- */

/* What identifies one version of a blob file: if any of these changed, the
 * file was rewritten or touched since it was last hashed. */
struct local_ident {
	uint64_t ino, size;
	int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
};
#define LOCAL_IDENT_LEN 48

void local_ident_of(const struct stat *sb, struct local_ident *out);

/* Remembers which file identities are known to hold the right bytes: a
 * small in-process cache in front of the LMDB "verified" database. All
 * functions are thread-safe. */
struct local_verifier;
int local_verifier_new(struct local_env *env, bool readonly, struct local_verifier **out);
/* Frees; pending records are dropped (not synced). NULL is a no-op. */
void local_verifier_free(struct local_verifier *v);
/* True if `id` is the recorded identity of blob `digest`. */
bool local_verifier_known(struct local_verifier *v, const struct b3_digest *digest,
			  const struct local_ident *id);
/* Records `id` for `digest`: in the cache at once, in LMDB now (`defer` false) or
 * by the next local_verifier_sync() (`defer` true, for commits in bulk).
 * Failures to record are not errors: the blob is just hashed again later. */
void local_verifier_remember(struct local_verifier *v, const struct b3_digest *digest,
			     const struct local_ident *id, bool defer);
/* Takes the deferred records, runs `sync(ctx)` (which makes their files
 * durable), and only if it succeeds writes them in one LMDB transaction.
 * Records deferred while `sync` runs wait for the next call: their files
 * may have been published after it looked. Returns sync's result. */
int local_verifier_sync(struct local_verifier *v, int (*sync)(void *ctx), void *ctx);

/* Hashes all of `fd` (`size` bytes, pread in 1 MiB chunks). -EIO with a
 * message naming `what` on a read error or if the file is not `size` long. */
int local_hash_fd(int fd, uint64_t size, const char *what, struct b3_digest *out);

/* Moves blob file `rel` (whose open descriptor has stat `sb`) to
 * quarantine/<hex>[.N], unless the name meanwhile holds another file. Logs
 * one error line naming the digest and both paths when it moved the file.
 * Returns -EIO with a message for the caller in every case. */
int local_quarantine(int rootfd, const char *root, const struct b3_digest *digest, const char *rel,
		     const struct stat *sb);

/* The scrub's helpers behind the local store's optional operations. */
int local_blobs_check(struct blob_service *bs, const struct b3_digest *digest, uint64_t *size);
int local_blobs_each(struct blob_service *bs, store_digest_fn cb, void *ctx);
int local_blobs_quarantine_each(struct blob_service *bs, store_quarantine_fn cb, void *ctx);
int local_dirs_each(struct dir_service *ds, store_digest_fn cb, void *ctx);

/* A dir_service over the real one (`real`, from local_dirs_new) whose
 * put_batch only encodes and keeps the Directories; get reads the real
 * store. local_dirs_put_staged() writes what it holds within `txn`. */
int local_dirs_stage_new(struct dir_service *real, struct dir_service **out);
bool local_dirs_is_stage(struct dir_service *ds);
int local_dirs_put_staged(struct dir_service *stage, MDB_txn *txn);
/* Registers `pi` and the Directories staged in `stage` in one transaction. */
int local_paths_put_with(struct path_info_service *ps, struct dir_service *stage,
			 const struct path_info *pi, enum path_info_put_result *res);

/* Deletes PathInfos (one transaction), Directories (one transaction), one
 * blob file; see struct store_gc_ops. */
int local_paths_delete(struct path_info_service *ps, const struct store_path *v, size_t n);
int local_dirs_delete(struct dir_service *ds, const struct b3_digest *v, size_t n);
int local_blobs_delete(struct blob_service *bs, const struct b3_digest *d,
		       const struct timespec *before, uint64_t *freed);

/* --- publishing blob files and making them durable (local_publish.c) --- */

struct local_publish;
/* `rootfd` is borrowed from the blob service. */
int local_publish_new(int rootfd, struct local_publish **out);
void local_publish_free(struct local_publish *p);
/* An unnamed writable file on the store's filesystem (O_TMPFILE), or -1
 * with errno set if there is none: then the writer names one in tmp/. */
int local_publish_tmpfile(struct local_publish *p);
/* Gives the finished blob `d` the name `rel` ("blobs/ab/cd/<hex>") without
 * replacing a file there: from the named temp file `tmp` (relative to the
 * store) or, if `tmp` is "", from the unnamed file `fd`. 0, -EEXIST, or
 * another negative errno (no message). */
int local_publish_noreplace(struct local_publish *p, int fd, const char *tmp,
			    const struct b3_digest *d, const char *rel);
/* Remembers that `d` was published, for the next local_publish_sync(). */
int local_publish_note(struct local_publish *p, const struct b3_digest *d);
/* fsyncs every file noted since the last call and the directories that
 * gained their names. */
int local_publish_sync(struct local_publish *p, const char *root);
/* Threads fsyncing at once in local_publish_sync() (STOREFS_SYNC_THREADS
 * overrides, up to the _MAX): measured in bench/README.md "Import". */
#define LOCAL_SYNC_THREADS     8
#define LOCAL_SYNC_THREADS_MAX 64

/* Removes tmp/ files whose writer process is gone. */
void local_blobs_clean_tmp(int rootfd);

/* --- small blobs inline in LMDB (local_inline.c) --- */

/* Blobs up to this size are LMDB values unless STOREFS_INLINE_MAX says
 * otherwise (docs/store-format.md); larger ones are files. */
#define LOCAL_INLINE_DEFAULT (32 * 1024)
#define LOCAL_INLINE_LIMIT   (128 * 1024)

struct local_inline;
/* `rootfd` and `root` are borrowed from the blob service (quarantine/,
 * messages). */
int local_inline_new(struct local_env *env, int rootfd, const char *root,
		     struct local_inline **out);
/* Writes what is kept, then frees. NULL is a no-op. */
void local_inline_free(struct local_inline *in);
/* 0 and the size, or -ENOENT (no message). Unless `readonly`, the value is
 * hashed first, and a damaged one quarantined and reported missing. */
int local_inline_stat(struct local_inline *in, const struct b3_digest *d, bool readonly,
		      uint64_t *size);
/* Keeps `buf` (hashed by the caller to `d`) for the next flush, unless the
 * store holds it already; `*created` tells which. */
int local_inline_add(struct local_inline *in, const struct b3_digest *d, const void *buf,
		     size_t len, bool *created);
/* True if `d` is kept, or stored as exactly the `len` bytes of `buf`. */
bool local_inline_holds(struct local_inline *in, const struct b3_digest *d, const void *buf,
			size_t len);
/* local_inline_add() for a caller that found !local_inline_holds(). */
int local_inline_keep(struct local_inline *in, const struct b3_digest *d, const void *buf,
		      size_t len, bool *created);
/* Stores every kept blob in one durable transaction. */
int local_inline_flush(struct local_inline *in);
/* A reader (fd -1) after hashing the value; -ENOENT if there is none, -EIO
 * (moved to quarantine/ unless `readonly`) if it does not match. */
int local_inline_open(struct local_inline *in, const struct b3_digest *d, bool readonly,
		      struct blob_reader **out);
/* The scrub: as open, without a reader. */
int local_inline_check(struct local_inline *in, const struct b3_digest *d, bool readonly,
		       uint64_t *size);
/* 1 and the bytes freed if deleted, 0 if absent or written at or after
 * `before` (a tv_sec of INT64_MAX: any time). */
int local_inline_delete(struct local_inline *in, const struct b3_digest *d,
			const struct timespec *before, uint64_t *freed);
int local_inline_each(struct local_inline *in, store_digest_fn cb, void *ctx);
/* Adds the values' bytes and count to `out`. */
int local_inline_usage(struct local_env *e, MDB_txn *txn, struct store_usage *out,
		       struct local_map_span *span);

/* --- notification of new paths to watchers in any process --- */

struct local_watcher;
/* Binds a socket in notify/ and starts a thread calling `cb` per basename. */
int local_watch_start(int rootfd, const char *root, path_info_watch_fn cb, void *ctx,
		      struct local_watcher **out);
/* Stops the thread, removes the socket, frees. NULL is a no-op. */
void local_watch_stop(struct local_watcher *w);
/* Sends `basename` to every socket in notify/, removing dead ones. Best
 * effort: failures are not reported. */
void local_notify(int rootfd, const char *root, const char *basename);

/* opendir() of `name` below `dirfd`; NULL with errno set on failure. */
DIR *local_opendirat(int dirfd, const char *name);

#endif
