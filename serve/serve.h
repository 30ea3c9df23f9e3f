/* serve.h - `storefs serve`: the store as a Nix HTTP binary cache
 * (docs/narinfo.md), on libmicrohttpd with a pool of threads polling all
 * connections (epoll). cli/cmd_serve.c parses the options and runs
 * serve_start()/serve_stop(); serve_http.c routes requests;
 * serve_index.c keeps the NAR hash index and the upload LRU; serve_nar.c
 * streams NARs out and ingests uploaded ones; serve_auth.c decides who may
 * upload (docs/trust.md "Uploads").
 *
 * Thread-safety: every function here may be called from any connection
 * thread at once, except serve_start()/serve_stop() and the init/release
 * functions, which run on the main thread while no request is served. */
#ifndef STOREFS_SERVE_SERVE_H
#define STOREFS_SERVE_SERVE_H

#include "castore/digest_map.h"
#include "store/nar_load.h"
#include "store/nar_decompress.h"
#include "store/signing.h"
#include "store/store.h"
#include "store/store_write.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SERVE_DEFAULT_LISTEN   "127.0.0.1:9000"
#define SERVE_DEFAULT_PRIORITY 40
/* docs/limits.md "Ingest": what 64 uploads at once may hold on disk. */
#define SERVE_DEFAULT_MAX_UPLOAD (1ull << 30)
#define SERVE_NARINFO_MAX	 (2u << 20)
#define SERVE_UPLOADS_MAX	 1024
/* Connection limits (docs/limits.md "serve"): idle or slow clients cost a
 * socket, never a thread. Beyond a limit, a connection is answered 503 at
 * once and closed (it gets SERVE_OVER_TIMEOUT_S to send its request); the
 * overflow itself is bounded, and beyond it a connection is closed at
 * accept. */
#define SERVE_MAX_CONNECTIONS 1024 /* served in total */
#define SERVE_MAX_PER_IP      32   /* served from one client address */
#define SERVE_OVERFLOW	      128  /* answered 503, in total ... */
#define SERVE_OVERFLOW_PER_IP 8	   /* ... and from one address */
#define SERVE_OVER_TIMEOUT_S  5
#define SERVE_IDLE_TIMEOUT_S  30 /* without a byte in either direction */
#define SERVE_THREADS_MIN     4	 /* the pool: twice the CPUs, in [4, 16] */
#define SERVE_THREADS_MAX     16
/* NAR downloads and uploads at once (each has a thread of its own);
 * beyond, 503 at once. */
#define SERVE_MAX_TRANSFERS 64

/* Open connections, per client address and in total. */
struct serve_conns {
	pthread_mutex_t lock;
	unsigned total;
	struct serve_peer {
		uint8_t addr[17]; /* family byte + IPv4 or IPv6 address */
		unsigned n;	  /* 0: a free entry */
	} peer[SERVE_MAX_CONNECTIONS + SERVE_OVERFLOW];
};

/* NAR SHA-256 -> store path digest of a registered path with that NAR. */
struct serve_index {
	pthread_mutex_t lock;
	struct digest_map map; /* key: the SHA-256 bytes; value: malloc'd digest */
	uint64_t cursor;       /* the listing position reached */
};

/* NARs uploaded by PUT /nar/<hash>.nar[.xz|.zst|.bz2], remembered until
 * their narinfo comes, under the hash of the file as uploaded (the URL's;
 * for an uncompressed NAR that is its NAR hash). */
struct serve_upload {
	uint8_t file_sha256[32];
	enum nar_compression comp;
	uint64_t file_size;
	uint8_t sha256[32]; /* of the NAR */
	uint64_t nar_size;
	struct node root; /* anonymous; target points into `target` */
	uint8_t *target;  /* malloc'd copy of a symlink root's target, or NULL */
	/* The blobs the upload created, until a narinfo registers it. */
	struct store_orphans orphans;
	uint64_t stamp; /* last use; 0 = free slot */
};

struct serve_uploads {
	pthread_mutex_t lock;
	struct serve_upload slot[SERVE_UPLOADS_MAX];
	uint64_t clock;
};

struct server {
	struct store *st;
	unsigned priority;
	bool has_key;
	struct nix_secret_key sk;
	uint64_t max_upload;
	uint64_t max_dirs;	  /* directories per uploaded NAR */
	bool uploads;		  /* --allow-uploads: PUT is allowed ... */
	uint8_t token_sha256[32]; /* ... with this token (SHA-256 of it) */
	struct serve_index idx;
	struct serve_uploads up;
	struct MHD_Daemon *daemon;
	struct serve_conns conns;
	atomic_uint transfers; /* NAR streams and uploads running */
};

/* --- serve_index.c --- */

/* Lists every PathInfo of the store into the index. */
int serve_index_init(struct serve_index *x, struct store *st);
void serve_index_release(struct serve_index *x);
/* The digest of a path whose NAR has `sha256`; on a miss, paths
 * registered since the last listing are read first. -ENOENT if none. */
int serve_index_lookup(struct serve_index *x, struct store *st, const uint8_t sha256[32],
		       uint8_t digest[STORE_PATH_DIGEST_LEN]);
int serve_index_add(struct serve_index *x, const uint8_t sha256[32],
		    const uint8_t digest[STORE_PATH_DIGEST_LEN]);

int serve_uploads_init(struct serve_uploads *u);
void serve_uploads_release(struct serve_uploads *u);
/* Remembers an uploaded file `f` (file_sha256, comp, file_size set) holding
 * the NAR `l`, and the blobs it created (`orphans`, taken over), evicting
 * the least recently used one: what the evicted one created goes to
 * `evicted` (for serve_reclaim, outside the lock). */
int serve_uploads_put(struct serve_uploads *u, const struct serve_upload *f,
		      const struct nar_loaded *l, struct store_orphans *orphans,
		      struct store_orphans *evicted);
/* A narinfo registered the upload of `file_sha256`: its blobs are used. */
void serve_uploads_settle(struct serve_uploads *u, const uint8_t file_sha256[32]);
/* Moves every upload's unregistered blobs to `out` (one list; for the
 * server's stop). */
int serve_uploads_drain(struct serve_uploads *u, struct store_orphans *out);
/* Copies the upload of the file with hash `file_sha256` into *out, its
 * root's target into `target`; -ENOENT if unknown. */
int serve_uploads_get(struct serve_uploads *u, const uint8_t file_sha256[32],
		      struct serve_upload *out, uint8_t target[CASTORE_MAX_TARGET_LEN]);

/* --- serve_nar.c --- */

/* 0 if every Directory and blob below `root` is in the store with the
 * recorded sizes, else -EIO with a message naming what is missing. */
int serve_check_closure(struct store *st, const struct node *root);

/* A NAR being rendered for a response: bytes [start, start+len) of the NAR
 * of `pi`, produced by a thread started on the first read. */
struct serve_nar_stream;
/* Takes ownership of `pi` in every case. */
int serve_nar_stream_new(struct server *s, struct path_info *pi, uint64_t start, uint64_t len,
			 struct serve_nar_stream **out);
/* MHD content reader and free callbacks for a stream. */
ssize_t serve_nar_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void serve_nar_stream_free(void *cls);

/* A NAR upload: bytes pushed by the connection thread, decompressed and
 * ingested by a worker thread. `f` is the file announced: the hash in the
 * URL, the compression of its extension, the Content-Length. An
 * uncompressed NAR is checked against them as it streams; a compressed
 * file's hash is checked at its end, and its NAR may have at most
 * s->max_upload bytes (-EFBIG). */
struct serve_nar_upload;
int serve_nar_upload_start(struct server *s, const struct serve_upload *f,
			   struct serve_nar_upload **out);
/* Passes body bytes on; after the worker has failed they are dropped. */
void serve_nar_upload_push(struct serve_nar_upload *u, const char *data, size_t len);
/* Ends the body and waits for the worker: 0 and the result in `out` (may
 * be NULL) and the blobs the upload created in `orphans` (the caller's
 * now; NULL: they are taken back at once), or its error with its message
 * in `msg` (`msglen` bytes; may be NULL). Frees `u`. */
int serve_nar_upload_finish(struct serve_nar_upload *u, struct nar_loaded *out,
			    struct store_orphans *orphans, char *msg, size_t msglen);
/* Takes back the blobs of an upload that will not be registered (failed,
 * evicted, or pending when the server stops), logging what it could not;
 * releases `o`. */
void serve_reclaim(struct server *s, struct store_orphans *o);
/* Aborts an unfinished upload (connection lost) and frees it. */
void serve_nar_upload_abort(struct serve_nar_upload *u);

/* --- serve_auth.c --- */

/* Reads the token of --upload-token-file (one line; a final newline is
 * not part of it) and keeps its SHA-256. -EINVAL with a message for an
 * empty token or one with spaces or control characters. */
int serve_token_load(const char *file, uint8_t sha256[32]);
struct MHD_Connection;
/* 0 if the request carries the token (Authorization: Bearer TOKEN, or
 * Basic with TOKEN as the password), MHD_HTTP_UNAUTHORIZED (401) if it
 * carries none, MHD_HTTP_FORBIDDEN (403) if another. */
unsigned serve_auth_check(const struct server *s, struct MHD_Connection *c);

/* --- serve_http.c --- */

/* Serves on the listening socket `fd` (taken over) until serve_stop(). */
int serve_start(struct server *s, int fd, bool verbose);
void serve_stop(struct server *s);

#endif
