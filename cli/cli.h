/* cli.h - what the storefs subcommands share: option parsing, the three
 * exit statuses, opening the store, a progress line, stdout writing and
 * resolving "STOREPATH[/sub/path]" arguments.
 *
 * Conventions: every subcommand describes itself with a struct cli_cmd,
 * parses with cli_getopt() (which answers --help/-h and unknown options),
 * and ends through one of cli_fail() (status 1, exactly one stderr line
 * "storefs <cmd>: <message>"), cli_usage() (status 2) or a 0 return.
 * Single-threaded: these helpers use getopt's globals and stdio. */
#ifndef STOREFS_CLI_H
#define STOREFS_CLI_H

#include "castore/directory.h"
#include "store/path_info.h"
#include "store/store.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STOREFS_VERSION "0.1.0"

enum cli_status { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

struct cli_cmd {
	const char *name;  /* "import" */
	const char *usage; /* the synopsis after "storefs ", one line */
	const char *help;  /* the rest of --help: description and options */
};

/* Option values every subcommand uses for --store and --help/-h. */
#define CLI_OPT_STORE 's'
#define CLI_OPT_HELP  'h'

/* getopt_long() with errors reported the storefs way: an unknown option or
 * a missing argument prints a usage error and returns '?'; the caller then
 * returns CLI_USAGE. -1 at the end of the options. */
int cli_getopt(const struct cli_cmd *c, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Prints "usage: storefs <usage>" and the help text on stdout; returns 0. */
int cli_help(const struct cli_cmd *c);

/* Prints "storefs <cmd>: <message>", the usage line and a hint to --help
 * on stderr; returns CLI_USAGE. */
int cli_usage(const struct cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "storefs <cmd>: <sf_errmsg(rc)>" on stderr; returns CLI_FAILED. */
int cli_fail(const struct cli_cmd *c, int rc);

/* Opens the store at `url` (NULL: the default location) with
 * STORE_OPEN_* `flags`. 0 or a negative errno with a message. */
int cli_open_store(const char *url, unsigned flags, struct store **out);

/* An fs_config usage callback over store_usage(); ctx is the struct store. */
int cli_store_usage(void *ctx, uint64_t *bytes, uint64_t *objects);

/* A progress line on stderr ("N files, X MiB, Y MiB/s"), drawn at most 10
 * times a second and only if stderr is a terminal. */
struct cli_progress {
	bool enabled, drawn;
	struct timespec start, last;
};
void cli_progress_init(struct cli_progress *p);
/* An import_progress_fn; ctx is the struct cli_progress. */
void cli_progress_update(void *ctx, uint64_t files, uint64_t bytes);
/* Erases the line if one was drawn. */
void cli_progress_done(struct cli_progress *p);

/* Writes all of `buf` to `fd`, retrying short writes and EINTR. 0, or a
 * negative errno with a message ("cannot write to standard output: ..."). */
int cli_write_all(int fd, const void *buf, size_t len);

/* Flushes stdout: 0, or a negative errno with a message. */
int cli_flush_stdout(void);

/* A resolved "STOREPATH[/sub/path]" argument. STOREPATH is a full
 * /nix/store/<hash>-<name> path or just the basename. */
struct cli_target {
	struct path_info *pi;	  /* owned */
	struct directory *parent; /* owned; holds node's bytes in a sub path */
	struct node node;	  /* the node at the sub path (root: pi->root) */
	char full[STORE_PATH_FULL_MAX];
	const char *sub; /* the sub path as given ("" for the root) */
};

/* Parses `arg` strictly and walks the sub path through the store's
 * Directories. Errors: -EINVAL (malformed store path or sub path), -ENOENT
 * (path not in the store, or no such entry), -ENOTDIR (a component is not
 * a directory), each with a message; service errors otherwise. */
int cli_resolve(struct store *st, const char *arg, struct cli_target *t);
void cli_target_release(struct cli_target *t);

/* With `verbose`, says on stderr that `pi` was registered already (res
 * PATH_INFO_UNCHANGED or PATH_INFO_SIGS_ADDED): "storefs <cmd>: '<path>'
 * is already registered with this content; nothing changed". */
void cli_report_registration(const struct cli_cmd *c, bool verbose, const struct path_info *pi,
			     enum path_info_put_result res);

/* "sha256:<nixbase32>" of a 32-byte digest into `out` (60 bytes). */
void cli_nar_hash_text(const uint8_t sha256[32], char *out);
#define CLI_NAR_HASH_TEXT_LEN (7 + 52 + 1)

#endif
