/* cmd_ls.c - `storefs ls`: list a store path's entries without mounting. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "castore/dir_service.h"
#include "common/err.h"
#include "store/nar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ls_opts {
	bool recursive, lng;
	struct store *st;
};

static const struct cli_opt ls_options[] = {
    CLI_BOOL('R', "recursive", struct ls_opts, recursive,
	     "list subdirectories too; entries are printed as paths relative to the listed "
	     "directory (\"dir/file\")"),
    CLI_BOOL('l', "long", struct ls_opts, lng,
	     "one entry per line as '<mode> <size> <name>': mode is dr-xr-xr-x (directory), "
	     "-r--r--r-- (file), -r-xr-xr-x (executable file) or lrwxrwxrwx (symlink, followed "
	     "by ' -> <target>'); size is the file length, the symlink target length, or the "
	     "directory's castore size"),
    {0},
};

static const char *mode_text(const struct node *n)
{
	if (n->kind == NODE_DIRECTORY)
		return "dr-xr-xr-x";
	if (n->kind == NODE_SYMLINK)
		return "lrwxrwxrwx";
	return n->executable ? "-r-xr-xr-x" : "-r--r--r--";
}

/* Prints one entry; `prefix` (with its trailing '/') precedes the name. */
static void ls_print(const struct ls_opts *o, const char *prefix, size_t plen, const struct node *n)
{
	if (o->lng)
		printf("%s %llu ", mode_text(n),
		       (unsigned long long)(n->kind == NODE_SYMLINK ? n->target_len : n->size));
	fwrite(prefix, 1, plen, stdout);
	fwrite(n->name, 1, n->name_len, stdout);
	if (o->lng && n->kind == NODE_SYMLINK) {
		fputs(" -> ", stdout);
		fwrite(n->target, 1, n->target_len, stdout);
	}
	putchar('\n');
}

static int ls_dir(const struct ls_opts *o, const struct b3_digest *digest, char *prefix,
		  size_t plen, int depth);

static int ls_subdir(const struct ls_opts *o, const struct node *n, char *prefix, size_t plen,
		     int depth)
{
	/* A prefix never outgrows NAR_MAX_DEPTH names of 255 bytes plus '/'. */
	if (depth >= NAR_MAX_DEPTH)
		return sf_err(-EINVAL, "'%.*s' is nested too deeply", (int)plen, prefix);
	memcpy(prefix + plen, n->name, n->name_len);
	prefix[plen + n->name_len] = '/';
	return ls_dir(o, &n->digest, prefix, plen + n->name_len + 1, depth + 1);
}

static int ls_dir(const struct ls_opts *o, const struct b3_digest *digest, char *prefix,
		  size_t plen, int depth)
{
	struct directory *d;
	int rc = dir_service_get(o->st->dirs, digest, &d);

	if (rc == -ENOENT) {
		char hex[B3_TEXT_LEN + 1];

		b3_digest_to_text(digest, hex);
		return sf_err(-EIO, "directory '%s' is missing from the store", hex);
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < d->count && rc == 0; i++) {
		const struct node *n = &d->nodes[i];

		ls_print(o, prefix, plen, n);
		if (o->recursive && n->kind == NODE_DIRECTORY)
			rc = ls_subdir(o, n, prefix, plen, depth);
	}
	directory_free(d);
	return rc;
}

static int ls_target(const struct ls_opts *o, const char *arg)
{
	struct cli_target t;
	char *prefix = NULL;
	int rc = cli_resolve(o->st, arg, &t);

	if (rc == 0 && t.node.kind == NODE_DIRECTORY) {
		prefix = malloc(NAR_MAX_DEPTH * (CASTORE_MAX_NAME_LEN + 1) + 1);
		rc = prefix ? ls_dir(o, &t.node.digest, prefix, 0, 0) : -ENOMEM;
	} else if (rc == 0) {
		struct node n = t.node;

		/* In a sub path the node carries its own name; the root is named
		 * by the store path's basename. */
		if (!t.parent) {
			n.name = (const uint8_t *)strrchr(t.full, '/') + 1;
			n.name_len = strlen((const char *)n.name);
		}
		ls_print(o, "", 0, &n);
	}
	free(prefix);
	cli_target_release(&t);
	return rc;
}

static int ls_run(struct cli_ctx *c)
{
	struct ls_opts *o = c->opts;

	o->st = c->store;
	return ls_target(o, c->argv[0]);
}

const struct cli_cmd cmd_ls = {
    .name = "ls",
    .summary = "list a directory of a store path",
    .operands = "STOREPATH[/sub/path]",
    .operand = "STOREPATH",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Lists the entries of a directory in a store path, one per line, in bytewise\n"
	     "name order; for a file or symlink, prints that entry alone. STOREPATH is\n"
	     "/nix/store/<hash>-<name> or just <hash>-<name>.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .options = ls_options,
    .opts_size = sizeof(struct ls_opts),
    .run = ls_run,
};
