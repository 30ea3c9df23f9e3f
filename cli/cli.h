/* cli.h - what the storefs subcommands share.
 *
 * A subcommand is a struct cli_cmd: its name, one-line summary, operands,
 * description, flags for the common work it wants done ("takes --store",
 * "opens the store", "takes --wait", "takes -v") and a table of its own
 * options, plus a run function. main.c lists the commands. cli_run() does
 * the rest the same way for all of them: it builds the getopt_long options
 * and the --help text from the tables (so an option is written once),
 * stores option values in the command's option struct, checks the number
 * of operands, opens the store, calls run() and ends every command through
 * one failure path:
 *
 *	run() returns 0        exit 0 (after standard output is flushed)
 *	run() returns -errno   "storefs <cmd>: <sf_errmsg()>" on stderr, exit 1
 *	run() returns 1 or 2   exit status already reported (cli_usage() returns 2)
 *
 * Adding a command: a file cli/cmd_<name>.c with its option struct, its
 * option table and a const struct cli_cmd cmd_<name> (see cmd_list.c, the
 * smallest), declared in cli/commands.h and listed in cli_commands[] in
 * commands.c. Adding an option: a field in the command's option struct and
 * one line in its table, e.g.
 *
 *	CLI_UINT(0, "max-freed", struct gc_opts, max_freed, "BYTES", 1, ULLONG_MAX,
 *		 "stop after freeing BYTES")
 *
 * which is its getopt_long entry, its synopsis word, its --help line and
 * its value check at once. An option taking a value may be given once (a
 * second is a usage error, never a silent last-wins) unless it is a
 * CLI_LIST. --store, --wait, -v and --help are never in a table: the
 * command's flags ask for them.
 * Single-threaded: these helpers use getopt's globals and stdio. */
#ifndef STOREFS_CLI_H
#define STOREFS_CLI_H

#include "castore/directory.h"
#include "store/path_info.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define STOREFS_VERSION "0.1.0"

enum cli_status { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Where the store is when no --store is given (said once, for every --help). */
#define CLI_DEFAULT_STORE                                                                          \
	"$STOREFS_STORE, else /var/lib/storefs as root, else $XDG_DATA_HOME/storefs"

/* How an option's value is stored in the command's option struct. */
enum cli_opt_kind {
	CLI_OPT_BOOL,	/* bool: true when given */
	CLI_OPT_COUNT,	/* int: how many times it was given (-v -v) */
	CLI_OPT_STRING, /* const char *: the argument */
	CLI_OPT_UINT,	/* unsigned long long: the argument, decimal, in [min, max] */
	CLI_OPT_CHOICE, /* int: the index of the argument in `choices` */
	CLI_OPT_LIST,	/* struct cli_list: every argument, in order (a repeatable option) */
};

/* The values of a repeatable option (CLI_LIST); more is a usage error. */
#define CLI_LIST_MAX 16
struct cli_list {
	const char *v[CLI_LIST_MAX];
	size_t n;
};

/* One option: its getopt_long entry, its --help line and where its value goes. */
struct cli_opt {
	const char *name; /* the long name, "list-root" for --list-root; NULL ends a table */
	char short_name;  /* 'v' for -v, or 0 */
	enum cli_opt_kind kind;
	size_t offset;		     /* of the value in the option struct */
	const char *arg;	     /* the argument's name in --help ("N"); NULL: none, or
					the choices joined by '|' for CLI_OPT_CHOICE */
	const char *help;	     /* one paragraph, wrapped by --help */
	unsigned long long min, max; /* CLI_OPT_UINT */
	const char *const *choices;  /* CLI_OPT_CHOICE: NULL-terminated */
	bool required;		     /* CLI_OPT_STRING: a usage error without it */
};

/* offsetof(type, field), refusing to compile unless the field is a `ctype`:
 * option values are stored through the offset, so a wrong type would
 * otherwise write past a smaller field. */
#define CLI_FIELD(type, field, ctype)                                                              \
	(offsetof(type, field) + 0 * sizeof((ctype *)0 == &((type *)0)->field))

/* Entries of an option table; `type` is the command's option struct. */
#define CLI_BOOL(s, l, type, field, help_)                                                         \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_BOOL,                              \
		.offset = CLI_FIELD(type, field, bool), .help = (help_)                            \
	}
#define CLI_COUNT(s, l, type, field, help_)                                                        \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_COUNT,                             \
		.offset = CLI_FIELD(type, field, int), .help = (help_)                             \
	}
#define CLI_STRING(s, l, type, field, arg_, help_)                                                 \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_STRING,                            \
		.offset = CLI_FIELD(type, field, const char *), .arg = (arg_), .help = (help_)     \
	}
#define CLI_STRING_REQUIRED(s, l, type, field, arg_, help_)                                        \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_STRING,                            \
		.offset = CLI_FIELD(type, field, const char *), .arg = (arg_), .help = (help_),    \
		.required = true                                                                   \
	}
#define CLI_UINT(s, l, type, field, arg_, lo, hi, help_)                                           \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_UINT,                              \
		.offset = CLI_FIELD(type, field, unsigned long long), .arg = (arg_),               \
		.help = (help_), .min = (lo), .max = (hi)                                          \
	}
#define CLI_CHOICE(s, l, type, field, choices_, help_)                                             \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_CHOICE,                            \
		.offset = CLI_FIELD(type, field, int), .help = (help_), .choices = (choices_)      \
	}

#define CLI_LIST(s, l, type, field, arg_, help_)                                                   \
	{                                                                                          \
		.name = (l), .short_name = (s), .kind = CLI_OPT_LIST,                              \
		.offset = CLI_FIELD(type, field, struct cli_list), .arg = (arg_), .help = (help_)  \
	}

/* The common work a command asks cli_run() for. */
enum cli_cmd_flags {
	CLI_STORE = 1 << 0,	  /* takes --store URL|DIR (cli_ctx.store_url) and the
				     per-service addresses (cli_ctx.blob_addr, ...) */
	CLI_OPENS_STORE = 1 << 1, /* with CLI_STORE: the store is opened with open_flags
				     before run() (cli_ctx.store) and freed after it */
	CLI_WAIT = 1 << 2,	  /* takes --wait: STORE_OPEN_WAIT in cli_ctx.open_flags */
	CLI_VERBOSE = 1 << 3,	  /* takes -v, --verbose: sets the log level (cli_ctx.verbose) */
};

struct cli_ctx;
struct cli_config;

struct cli_cmd {
	const char *name;	 /* "import" */
	const char *summary;	 /* its line in `storefs --help` */
	const char *operands;	 /* the synopsis after the options: "PATH..." */
	const char *operand;	 /* named in usage errors ("no PATH given"); NULL: `operands` */
	int min_operands;	 /* how many operands it takes */
	int max_operands;	 /* -1: any number */
	const char *about;	 /* --help: what it does, lines ending in '\n' */
	const char *notes;	 /* --help after the options, or NULL */
	const char *exit_status; /* NULL: "0 success, 1 error, 2 usage error." */
	unsigned flags;		 /* enum cli_cmd_flags */
	unsigned open_flags;	 /* STORE_OPEN_*: CLI_OPENS_STORE and cli_ctx_open_store() */
	const char *store_note;	 /* added to --store's help, or NULL */
	const struct cli_opt *options; /* its own options, ending with {0}; NULL: none */
	size_t opts_size;	       /* the struct they fill (cli_ctx.opts) */
	const void *defaults;	       /* its initial value; NULL: all zero */
	/* Both return 0, a negative errno with a message, or an exit status.
	 * check (may be NULL) runs before the store is opened: the place for
	 * usage errors that need more than the option table, and for open
	 * flags that follow from options (cli_ctx.open_flags). */
	int (*check)(struct cli_ctx *c);
	int (*run)(struct cli_ctx *c);
};

/* What run() gets. */
struct cli_ctx {
	const struct cli_cmd *cmd;
	void *opts; /* the command's option struct */
	int argc;   /* its operands */
	char **argv;
	const char *store_url; /* --store; NULL: the default location */
	/* --blob-service-addr, --directory-service-addr,
	 * --path-info-service-addr; NULL: store_url's. */
	const char *blob_addr, *dir_addr, *pi_addr;
	const char *cache; /* --cache DIR; NULL: none */
	/* The command's own options given on the command line: bit i for
	 * cmd->options[i] (a configuration file sets only the others). */
	uint64_t given;
	const struct cli_config *config; /* the file storefs read (config.h) */
	unsigned open_flags;		 /* cmd->open_flags, | STORE_OPEN_WAIT with --wait */
	struct store *store;		 /* with CLI_OPENS_STORE */
	int verbose;			 /* how many -v */
	bool wait, help;		 /* --wait, --help */
};

/* Runs `cmd` with argv[0] = its name; `top` holds the store options given
 * before the command (store_url, blob_addr, ...; NULL: none), which the
 * command's own override one by one. Returns the exit status. */
int cli_run(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_ctx *top);

/* Parses the options of `cmd` into c->opts and c (common options) and
 * leaves the operands in c->argc/argv. 0, or the exit status of --help (0,
 * with c->help set) or of a usage error (CLI_USAGE, reported).
 * `stop_at_operand`: options end at the first operand (for the command
 * name after storefs's own options). */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, bool stop_at_operand,
	      struct cli_ctx *c);

/* The option --`name` of `cmd`'s own table, or NULL. */
const struct cli_opt *cli_opt_find(const struct cli_cmd *cmd, const char *name);
/* Stores `arg` as the value of option `o` in `base` (checked as the
 * command line checks it): 0, or CLI_USAGE (reported). */
int cli_opt_set(const struct cli_cmd *cmd, const struct cli_opt *o, void *base, const char *arg);
/* Whether option `o` of c->cmd's own table was on the command line. */
bool cli_opt_given(const struct cli_ctx *c, const struct cli_opt *o);

/* Prints `cmd`'s --help on stdout, generated from its tables: 0, or a
 * negative errno with a message if stdout cannot be written. The top level
 * (storefs's own options) is a cli_cmd without a name. */
int cli_help(const struct cli_cmd *cmd);
void cli_print_help(FILE *f, const struct cli_cmd *cmd);

/* The parts of --help: "usage: storefs NAME [options] OPERANDS" (wrapped
 * under the name) and the "Options:" list. */
void cli_print_synopsis(FILE *f, const struct cli_cmd *cmd);
void cli_print_options(FILE *f, const struct cli_cmd *cmd);

/* Prints "storefs <cmd>: <message>", the usage line and a hint to --help
 * on stderr; returns CLI_USAGE. */
int cli_usage(const struct cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the store of the command with `flags` (plus --wait): each service
 * from its address (c->blob_addr, ...), else from c->store_url, else from
 * the default location; several addresses make a composite store
 * (store_open_services()). A store locked by an import without --wait says
 * that --wait waits. */
int cli_ctx_open_store(const struct cli_ctx *c, unsigned flags, struct store **out);

/* Whether c names a store by more than --store (a per-service address or
 * --cache). */
bool cli_ctx_has_service_addrs(const struct cli_ctx *c);

/* Opens the store at `url` (NULL: the default location) with
 * STORE_OPEN_* `flags`. 0 or a negative errno with a message. */
int cli_open_store(const char *url, unsigned flags, struct store **out);

/* Opens the store whose blob, Directory and PathInfo services are those of
 * the stores at `blobs`, `dirs` and `paths` (each NULL: the default
 * location), behind the cache at `cache` if not NULL; see
 * store_open_services(). */
int cli_open_services(const char *blobs, const char *dirs, const char *paths, const char *cache,
		      unsigned flags, struct store **out);

/* store_root_add(), saying which store has no GC roots (-ENOTSUP). */
int cli_add_root(struct store *st, const char *name, const struct store_path *sp);

/* An fs_config usage callback over store_usage(); ctx is the struct store. */
int cli_store_usage(void *ctx, uint64_t *bytes, uint64_t *objects);

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

/* Prints the store path of `pi` that a command registered (and flushes,
 * so each path shows as it is done); with -v, says on stderr when it was
 * registered already (res PATH_INFO_UNCHANGED or PATH_INFO_SIGS_ADDED):
 * "storefs <cmd>: '<path>' is already registered with this content;
 * nothing changed". 0 or a negative errno with a message. */
int cli_print_registered(const struct cli_ctx *c, const struct path_info *pi,
			 enum path_info_put_result res);

#endif
