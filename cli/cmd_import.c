/* cmd_import.c - `storefs import`: add trees as Nix "source" store paths. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/import.h"
#include "store/store_gc.h"

#include <stdio.h>
#include <string.h>

static const struct cli_cmd cmd = {
    "import",
    "import [--store URL|DIR] [--name NAME] [--add-root NAME] [--wait] [--dir-size spec|native]\n"
    "       [-v] PATH...",
    "Adds each PATH (a directory, a regular file or a symlink, which is not\n"
    "followed) to the store and prints its store path, one line per PATH: the\n"
    "same path `nix-store --add PATH` prints. Each file is read once; identical\n"
    "contents are stored once. A PATH containing a FIFO, socket or device, an\n"
    "unreadable file, or anything nested 64 levels below it is refused with a\n"
    "message naming the file; then no store path is registered for it, and the\n"
    "file contents it stored are removed again (docs/trust.md). Importing stops\n"
    "at the first failing PATH. The store's import lock is held while importing.\n"
    "A tree imported again gives the same store path and changes nothing (a\n"
    "registered path never changes).\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs); created if missing\n"
    "                   or empty\n"
    "  --name NAME      the store path name (default: the last component of\n"
    "                   PATH); 1-211 characters of 0-9 a-z A-Z + - . _ ? =\n"
    "  --add-root NAME  also make the path a GC root named NAME (as `storefs\n"
    "                   add-root`, before the import lock is released, so no\n"
    "                   collection can come between); one PATH only\n"
    "  --wait           if another import holds the store's lock, wait for it\n"
    "                   instead of failing\n"
    "  --dir-size spec|native\n"
    "                   how a NEW store counts DirectoryEntry.size: spec (the\n"
    "                   default: entries + sizes of subdirectories) or native\n"
    "                   (snix's doubled count, for exchanging Directories with\n"
    "                   snix); an existing store keeps the formula it was made\n"
    "                   with\n"
    "  -v, --verbose    say when a path was registered already\n"
    "  -h, --help       show this help\n"
    "\n"
    "A progress line is shown on standard error when it is a terminal.\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum { OPT_NAME = 256, OPT_WAIT, OPT_DIR_SIZE, OPT_ADD_ROOT };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},	 {"help", no_argument, NULL, CLI_OPT_HELP},
    {"name", required_argument, NULL, OPT_NAME},	 {"wait", no_argument, NULL, OPT_WAIT},
    {"dir-size", required_argument, NULL, OPT_DIR_SIZE}, {"verbose", no_argument, NULL, 'v'},
    {"add-root", required_argument, NULL, OPT_ADD_ROOT}, {0},
};

static int import_one(struct store *st, const char *path, const char *name, const char *root,
		      bool verbose)
{
	char full[STORE_PATH_FULL_MAX];
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct cli_progress prog;
	struct import_options opt = {
	    .name = name,
	    .progress = cli_progress_update,
	    .progress_ctx = &prog,
	    .result = &res,
	};
	struct path_info *pi;
	int rc;

	cli_progress_init(&prog);
	rc = store_import_path(st, path, &opt, &pi);
	cli_progress_done(&prog);
	if (rc < 0)
		return rc;
	cli_report_registration(&cmd, verbose, pi, res);
	rc = root ? store_root_add(st, root, &pi->path) : 0;
	if (rc == -ENOTSUP)
		rc = sf_err(rc, "store '%s' has no GC roots", st->location);
	store_path_full(&pi->path, full);
	path_info_free(pi);
	if (rc < 0)
		return rc;
	printf("%s\n", full);
	return cli_flush_stdout();
}

int cmd_import(int argc, char **argv)
{
	const char *url = NULL, *name = NULL, *root = NULL;
	unsigned flags = STORE_OPEN_CREATE | STORE_OPEN_IMPORT;
	struct store *st;
	bool verbose = false;
	int ch, rc = 0;

	while ((ch = cli_getopt(&cmd, argc, argv, "hv", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_WAIT:
			flags |= STORE_OPEN_WAIT;
			break;
		case 'v':
			verbose = true;
			break;
		case OPT_ADD_ROOT:
			root = optarg;
			break;
		case OPT_DIR_SIZE:
			if (!strcmp(optarg, "native"))
				flags |= STORE_OPEN_NATIVE_SIZE;
			else if (strcmp(optarg, "spec"))
				return cli_usage(&cmd, "--dir-size takes 'spec' or 'native'");
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind == argc)
		return cli_usage(&cmd, "no PATH given");
	if (root && argc - optind > 1)
		return cli_usage(&cmd, "--add-root takes one PATH");
	rc = cli_open_store(url, flags, &st);
	if (rc == -EBUSY && !(flags & STORE_OPEN_WAIT)) {
		fprintf(stderr, "storefs import: %s (--wait waits for it)\n", sf_errmsg(rc));
		return CLI_FAILED;
	}
	if (rc < 0)
		return cli_fail(&cmd, rc);
	for (int i = optind; i < argc && rc == 0; i++)
		rc = import_one(st, argv[i], name, root, verbose);
	if (rc < 0)
		cli_fail(&cmd, rc);
	store_free(st);
	return rc < 0 ? CLI_FAILED : CLI_OK;
}
