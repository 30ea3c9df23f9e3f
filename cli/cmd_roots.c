/* cmd_roots.c - `storefs add-root` and `storefs remove-root`: the GC roots
 * in <store>/gcroots/ (docs/gc.md). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/store_gc.h"

#include <stdio.h>
#include <string.h>

static int add_root(struct store *st, const char *name, const char *arg)
{
	struct cli_target t;
	int rc = cli_resolve(st, arg, &t);

	if (rc == 0 && *t.sub)
		rc = sf_err(-EINVAL, "'%s' is not a store path (it has a sub path)", arg);
	if (rc == 0)
		rc = cli_add_root(st, name, &t.pi->path);
	cli_target_release(&t);
	return rc;
}

static int add_root_run(struct cli_ctx *c)
{
	return add_root(c->store, c->argv[0], c->argv[1]);
}

static int remove_root_run(struct cli_ctx *c)
{
	int rc = store_root_remove(c->store, c->argv[0]);

	return rc == -ENOTSUP ? sf_err(rc, "store '%s' has no GC roots", c->store->location) : rc;
}

/* Roots change under the import lock, waited for, so they never race a
 * collection. */
const struct cli_cmd cmd_add_root = {
    .name = "add-root",
    .summary = "make a store path a GC root",
    .operands = "NAME STOREPATH",
    .min_operands = 2,
    .max_operands = 2,
    .about = "Makes STOREPATH (/nix/store/<hash>-<name> or <hash>-<name>, which must be\n"
	     "in the store) a GC root named NAME: `storefs gc` keeps it and its closure.\n"
	     "A local store keeps roots as symlinks <store>/gcroots/NAME ->\n"
	     "/nix/store/<hash>-<name>; an existing root NAME is replaced. NAME is 1-255\n"
	     "bytes without '/' and does not start with '.'. Like an import, it waits\n"
	     "for the store's import lock, so it never races a collection.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_IMPORT | STORE_OPEN_WAIT,
    .run = add_root_run,
};

const struct cli_cmd cmd_remove_root = {
    .name = "remove-root",
    .summary = "remove a GC root",
    .operands = "NAME",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Removes the GC root NAME (see `storefs add-root`). The path stays until a\n"
	     "`storefs gc` finds it unreachable.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_IMPORT | STORE_OPEN_WAIT,
    .run = remove_root_run,
};
