/* cmd_import.c - `storefs import`: add trees as Nix "source" store paths. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/err.h"
#include "store/gc.h"
#include "store/import.h"

#include <stdio.h>
#include <string.h>

struct import_opts {
	const char *name, *root;
	int dir_size; /* index in dir_sizes */
	bool trust_stat;
};

static const char *const dir_sizes[] = {"spec", "native", NULL};

static const struct cli_opt import_options[] = {
    CLI_STRING(0, "name", struct import_opts, name, "NAME",
	       "the store path name (default: the last component of PATH); 1-211 characters of "
	       "0-9 a-z A-Z + - . _ ? ="),
    CLI_STRING(0, "add-root", struct import_opts, root, "NAME",
	       "also make the path a GC root named NAME (as `storefs add-root`, before the import "
	       "lock is released, so no collection can come between); one PATH only"),
    CLI_CHOICE(0, "dir-size", struct import_opts, dir_size, dir_sizes,
	       "how a NEW store counts DirectoryEntry.size: spec (the default: entries + sizes of "
	       "subdirectories) or native (snix's doubled count, for exchanging Directories with "
	       "snix); an existing store keeps the formula it was made with"),
    CLI_BOOL(0, "trust-stat", struct import_opts, trust_stat,
	     "take a file whose (device, inode, size, mtime, ctime, mode) is that of an earlier "
	     "--trust-stat import as unchanged, without reading it (like git's index): a tree "
	     "whose files all are, and whose root is a registered path's, gives that path at the "
	     "cost of a stat per entry; otherwise the tree is read and recorded. A change that "
	     "keeps all of these (a clock set back, a filesystem without ctime) goes unseen; see "
	     "docs/import.md"),
    {0},
};

static int import_one(const struct cli_ctx *c, const char *path)
{
	const struct import_opts *o = c->opts;
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct cli_progress prog;
	struct import_options opt = {
	    .name = o->name,
	    .progress = cli_progress_update,
	    .progress_ctx = &prog,
	    .result = &res,
	    .trust_stat = o->trust_stat,
	};
	struct path_info *pi;
	int rc;

	cli_progress_init(&prog);
	rc = store_import_path(c->store, path, &opt, &pi);
	cli_progress_done(&prog);
	if (rc < 0)
		return rc;
	rc = o->root ? cli_add_root(c->store, o->root, &pi->path) : 0;
	if (rc == 0)
		rc = cli_print_registered(c, pi, res);
	path_info_free(pi);
	return rc;
}

/* Before the store is opened: --add-root's limit, how a new store counts sizes. */
static int import_check(struct cli_ctx *c)
{
	const struct import_opts *o = c->opts;

	if (o->root && c->argc > 1)
		return cli_usage(c->cmd, "--add-root takes one PATH");
	/* A bad root name found after the import would leave the path unrooted. */
	if (o->root && store_root_name_check(o->root) < 0)
		return cli_usage(c->cmd, "%s", sf_errmsg(-EINVAL));
	if (o->dir_size == 1)
		c->open_flags |= STORE_OPEN_NATIVE_SIZE;
	return 0;
}

static int import_run(struct cli_ctx *c)
{
	const struct import_opts *o = c->opts;
	int rc = 0;

	/* Said here, where the flags are known: which store holds the index
	 * of a composite or a cache is in docs/services.md. */
	if (o->trust_stat && !c->store->index_get)
		return sf_err(-ENOTSUP,
			      "--trust-stat needs an import index, which only a local store "
			      "keeps: with service addresses, the PathInfo store must be a "
			      "local one, or give --cache DIR (docs/services.md)");

	for (int i = 0; rc == 0 && i < c->argc; i++)
		rc = import_one(c, c->argv[i]);
	return rc;
}

const struct cli_cmd cmd_import = {
    .name = "import",
    .summary = "add files or directories as Nix store paths",
    .operands = "PATH...",
    .operand = "PATH",
    .min_operands = 1,
    .max_operands = -1,
    .about = "Adds each PATH (a directory, a regular file or a symlink, which is not\n"
	     "followed) to the store and prints its store path, one line per PATH: the\n"
	     "same path `nix-store --add PATH` prints. Each file is read once; identical\n"
	     "contents are stored once. A PATH containing a FIFO, socket or device, an\n"
	     "unreadable file, or anything nested 64 levels below it is refused with a\n"
	     "message naming the file; then no store path is registered for it, and the\n"
	     "file contents it stored are removed again (docs/trust.md). Importing stops\n"
	     "at the first failing PATH. The store's import lock is held while importing.\n"
	     "A tree imported again gives the same store path and changes nothing (a\n"
	     "registered path never changes; -v says so).\n",
    .notes = "A progress line is shown on standard error when it is a terminal.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE | CLI_WAIT | CLI_VERBOSE,
    .open_flags = STORE_OPEN_CREATE | STORE_OPEN_IMPORT,
    .options = import_options,
    .opts_size = sizeof(struct import_opts),
    .check = import_check,
    .run = import_run,
};
