/* cmd_roots.c - `storefs add-root` and `storefs remove-root`: the GC roots
 * in <store>/gcroots/ (docs/gc.md). */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/store_gc.h"

#include <stdio.h>
#include <string.h>

static const struct cli_cmd add_cmd = {
    "add-root",
    "add-root [--store URL|DIR] NAME STOREPATH",
    "Makes STOREPATH (/nix/store/<hash>-<name> or <hash>-<name>, which must be\n"
    "in the store) a GC root named NAME: `storefs gc` keeps it and its closure.\n"
    "A local store keeps roots as symlinks <store>/gcroots/NAME ->\n"
    "/nix/store/<hash>-<name>; an existing root NAME is replaced. NAME is 1-255\n"
    "bytes without '/' and does not start with '.'. Like an import, it waits\n"
    "for the store's import lock, so it never races a collection.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

static const struct cli_cmd remove_cmd = {
    "remove-root",
    "remove-root [--store URL|DIR] NAME",
    "Removes the GC root NAME (see `storefs add-root`). The path stays until a\n"
    "`storefs gc` finds it unreachable.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {0},
};

/* Parses --store and --help; 1 after --help, -status on a usage error. */
static int parse(const struct cli_cmd *c, int argc, char **argv, int nargs, const char *what,
		 const char **url)
{
	int ch;

	while ((ch = cli_getopt(c, argc, argv, "h", longopts)) != -1) {
		if (ch == CLI_OPT_HELP)
			return cli_help(c) == CLI_OK ? 1 : -CLI_FAILED;
		if (ch != CLI_OPT_STORE)
			return -CLI_USAGE;
		*url = optarg;
	}
	if (argc - optind != nargs)
		return -cli_usage(c, "expected %s", what);
	return 0;
}

static int add_root(struct store *st, const char *name, const char *arg)
{
	struct cli_target t;
	int rc = cli_resolve(st, arg, &t);

	if (rc == 0 && *t.sub)
		rc = sf_err(-EINVAL, "'%s' is not a store path (it has a sub path)", arg);
	if (rc == 0)
		rc = store_root_add(st, name, &t.pi->path);
	cli_target_release(&t);
	return rc;
}

static int no_roots(struct store *st, int rc)
{
	return rc == -ENOTSUP ? sf_err(rc, "store '%s' has no GC roots", st->location) : rc;
}

int cmd_add_root(int argc, char **argv)
{
	const char *url = NULL;
	struct store *st;
	int rc = parse(&add_cmd, argc, argv, 2, "NAME STOREPATH", &url);

	if (rc)
		return rc > 0 ? CLI_OK : -rc;
	rc = cli_open_store(url, STORE_OPEN_IMPORT | STORE_OPEN_WAIT, &st);
	if (rc < 0)
		return cli_fail(&add_cmd, rc);
	rc = no_roots(st, add_root(st, argv[optind], argv[optind + 1]));
	store_free(st);
	return rc < 0 ? cli_fail(&add_cmd, rc) : CLI_OK;
}

int cmd_remove_root(int argc, char **argv)
{
	const char *url = NULL;
	struct store *st;
	int rc = parse(&remove_cmd, argc, argv, 1, "NAME", &url);

	if (rc)
		return rc > 0 ? CLI_OK : -rc;
	rc = cli_open_store(url, STORE_OPEN_IMPORT | STORE_OPEN_WAIT, &st);
	if (rc < 0)
		return cli_fail(&remove_cmd, rc);
	rc = no_roots(st, store_root_remove(st, argv[optind]));
	store_free(st);
	return rc < 0 ? cli_fail(&remove_cmd, rc) : CLI_OK;
}
