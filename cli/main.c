/* main.c - the storefs command: dispatches to one file per subcommand. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/fdlimit.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"import", cmd_import, "add files or directories as Nix store paths"},
    {"nar", cmd_nar, "write a store path's NAR to standard output"},
    {"path-info", cmd_path_info, "show store paths: root node, NAR hash and size, references"},
    {"ls", cmd_ls, "list a directory of a store path"},
    {"cat", cmd_cat, "write a file of a store path to standard output"},
    {"mount", cmd_mount, "mount the store read-only with FUSE"},
    {"nar-import", cmd_nar_import, "register a NAR read from a file as a store path"},
    {"import-nix", cmd_import_nix, "copy store paths from a local Nix store"},
    {"serve", cmd_serve, "serve the store as a Nix binary cache over HTTP"},
    {"verify", cmd_verify, "check every object of the store; repair from another"},
    {"list", cmd_list, "list every store path in the store, sorted"},
    {"virtiofs", cmd_virtiofs, "serve the store to a virtual machine (vhost-user virtio-fs)"},
    {"add-root", cmd_add_root, "make a store path a GC root"},
    {"remove-root", cmd_remove_root, "remove a GC root"},
    {"gc", cmd_gc, "delete what no GC root reaches"},
    {"delete", cmd_delete, "delete store paths nothing uses"},
    {"copy", cmd_copy, "copy store paths (with -r their closure) between stores"},
    {"info", cmd_info, "show what the store holds: counts, bytes, dedup, orphans"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fputs("usage: storefs [--version] [--help] COMMAND [ARGS...]\n\n"
	      "A content-addressed store for Nix-style file trees.\n\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-11s  %s\n", commands[i].name, commands[i].summary);
	fputs("\nEvery command takes --store URL|DIR (default: $STOREFS_STORE, else\n"
	      "/var/lib/storefs as root, else $XDG_DATA_HOME/storefs) and --help.\n"
	      "'storefs help COMMAND' shows a command's help.\n"
	      "Exit status: 0 success, 1 error, 2 usage error.\n",
	      f);
}

/* `storefs help [COMMAND]`. */
static int help(int argc, char **argv)
{
	const struct command *c;
	char *args[] = {NULL, "--help", NULL};

	if (argc < 2) {
		usage(stdout);
		return cli_flush_stdout() < 0 ? CLI_FAILED : CLI_OK;
	}
	c = command_find(argv[1]);
	if (!c || argc > 2) {
		fprintf(stderr, "storefs help: %s '%s'\nusage: storefs help [COMMAND]\n",
			c ? "too many arguments after" : "unknown command", argv[1]);
		return CLI_USAGE;
	}
	args[0] = argv[1];
	return c->run(2, args);
}

int main(int argc, char **argv)
{
	const struct command *c;

	/* A closed pipe becomes EPIPE from write(), reported like any error. */
	signal(SIGPIPE, SIG_IGN);
	/* Mounts and servers keep many files open; see docs/limits.md. */
	fdlimit_raise();
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return cli_flush_stdout() < 0 ? CLI_FAILED : CLI_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("storefs %s\n", STOREFS_VERSION);
		return cli_flush_stdout() < 0 ? CLI_FAILED : CLI_OK;
	}
	if (!strcmp(argv[1], "help"))
		return help(argc - 1, argv + 1);
	c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "storefs: unknown command '%s'\n", argv[1]);
		fprintf(stderr, "Try 'storefs --help' for the list of commands.\n");
		return CLI_USAGE;
	}
	optind = 1;
	return c->run(argc - 1, argv + 1);
}
