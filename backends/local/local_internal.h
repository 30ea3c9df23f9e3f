/* local_internal.h - pieces shared by the files of the local backend. */
#ifndef STOREFS_BACKENDS_LOCAL_INTERNAL_H
#define STOREFS_BACKENDS_LOCAL_INTERNAL_H

#include "backends/local/local.h"

#include <lmdb.h>
#include <stdbool.h>
#include <sys/types.h>

/* Relative to the store directory. */
#define LOCAL_BLOBS_DIR	 "blobs"
#define LOCAL_TMP_DIR	 "tmp"
#define LOCAL_DB_DIR	 "db"
#define LOCAL_NOTIFY_DIR "notify"
#define LOCAL_LOCK_FILE	 "import.lock"

/* "blobs/ab/cd/" + 64 hex + NUL */
#define LOCAL_BLOB_REL_MAX (sizeof(LOCAL_BLOBS_DIR) + 6 + B3_HEX_LEN + 1)

/* One LMDB environment per store directory and process, shared by every
 * open of that store in the process (LMDB forbids opening one environment
 * twice in a process). Reference counted; the handles are immutable. */
struct local_env {
	MDB_env *env;
	MDB_dbi dirs;  /* raw 32-byte digest -> canonical Directory encoding */
	MDB_dbi paths; /* 20-byte store path digest -> 8-byte BE cursor || PathInfo */
	MDB_dbi seq;   /* 8-byte BE cursor -> 20-byte store path digest */
	MDB_dbi meta;  /* "next_cursor" -> 8-byte BE */
	bool readonly; /* opened MDB_RDONLY (its first opener was read-only) */
	dev_t dev;     /* identity of the db directory ... */
	ino_t ino;
	pid_t pid;     /* ... in this process */
	unsigned refs; /* protected by the registry lock in local_db.c */
	struct local_env *next;
};

/* Opens or shares the environment in `dbdir` (created unless `readonly`). */
int local_env_open(const char *dbdir, bool readonly, struct local_env **out);
/* Takes / drops a reference; the last put closes the environment. */
void local_env_ref(struct local_env *e);
void local_env_put(struct local_env *e);
/* A short transaction; read ones are MDB_RDONLY. */
int local_txn_begin(struct local_env *e, bool write, MDB_txn **out);
/* Translates an LMDB code: MDB_NOTFOUND -> -ENOENT (no message),
 * MDB_MAP_FULL -> -ENOSPC, others -> -EIO, with `what` in the message. */
int local_mdb_err(int rc, const char *what);

/* "blobs/ab/cd/<hex>" into `out` (LOCAL_BLOB_REL_MAX bytes). */
void local_blob_relpath(const struct b3_digest *d, char *out);

/* Constructors of the three services. Each takes its own duplicate of
 * `rootfd` and its own reference on `env` (the caller keeps its own). */
int local_blobs_new(int rootfd, const char *root, bool readonly, struct blob_service **out);
int local_dirs_new(struct local_env *env, bool readonly, struct dir_service **out);
int local_paths_new(struct local_env *env, int rootfd, const char *root, bool readonly,
		    struct pathinfo_service **out);

/* Removes tmp/ files whose writer process is gone. */
void local_blobs_clean_tmp(int rootfd);

/* --- notification of new paths to watchers in any process --- */

struct local_watcher;
/* Binds a socket in notify/ and starts a thread calling `cb` per basename. */
int local_watch_start(int rootfd, const char *root, pathinfo_watch_fn cb, void *ctx,
		      struct local_watcher **out);
/* Stops the thread, removes the socket, frees. NULL is a no-op. */
void local_watch_stop(struct local_watcher *w);
/* Sends `basename` to every socket in notify/, removing dead ones. Best
 * effort: failures are not reported. */
void local_notify(int rootfd, const char *root, const char *basename);

#endif
