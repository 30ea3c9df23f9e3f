/* commands.c - the table of storefs subcommands, storefs's own options and
 * `storefs help`: the dispatch that main() and the unit tests call. */
#include "cli/commands.h"

#include "cli/config.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>

static const struct cli_cmd cmd_help;

/* In `storefs --help` order. */
const struct cli_cmd *const cli_commands[] = {
    &cmd_import, &cmd_nar,	  &cmd_path_info,  &cmd_ls,	  &cmd_cat,
    &cmd_mount,	 &cmd_nar_import, &cmd_import_nix, &cmd_serve,	  &cmd_daemon,
    &cmd_verify, &cmd_list,	  &cmd_virtiofs,   &cmd_add_root, &cmd_remove_root,
    &cmd_gc,	 &cmd_delete,	  &cmd_copy,	   &cmd_info,	  &cmd_help,
};

const size_t cli_n_commands = sizeof(cli_commands) / sizeof(cli_commands[0]);

const struct cli_cmd *cli_command_find(const char *name)
{
	for (size_t i = 0; i < cli_n_commands; i++)
		if (!strcmp(cli_commands[i]->name, name))
			return cli_commands[i];
	return NULL;
}

/* --- storefs's own options --- */

struct top_opts {
	bool version;
	const char *config;
};

static const struct cli_opt top_options[] = {
    CLI_STRING(0, "config", struct top_opts, config, "FILE",
	       "read the configuration from FILE (default: $STOREFS_CONFIG, else "
	       "/etc/storefs/storefs.conf if it exists)"),
    CLI_BOOL(0, "version", struct top_opts, version, "print the version"),
    {0},
};

const struct cli_cmd cli_top = {
    .operands = "COMMAND [ARGS...]",
    .about = "A content-addressed store for Nix-style file trees.\n",
    .notes = "'storefs help COMMAND' or 'storefs COMMAND --help' shows a command's help.\n"
	     "\n"
	     "Configuration file: one 'key = value' per line, '#' starts a comment line.\n"
	     "Keys: store, blob-service-addr, directory-service-addr,\n"
	     "path-info-service-addr and cache (for every command that takes --store), and\n"
	     "COMMAND.OPTION for a command's own options (mount.substituter = URL,\n"
	     "mount.trusted-public-keys = KEYS, mount.threads = 8, mount.list-root = true).\n"
	     "Options on the command line win over the file (--store there replaces all its\n"
	     "addresses); an unknown key or a bad line is an error naming FILE:LINE.\n"
	     "The file: --config FILE, else $STOREFS_CONFIG, else /etc/storefs/storefs.conf.\n",
    .flags = CLI_STORE,
    .store_note = "used by every command (a command's own --store wins)",
    .options = top_options,
    .opts_size = sizeof(struct top_opts),
};

/* `storefs --help`: the synopsis, the commands, the options. */
static int top_help(FILE *f)
{
	cli_print_synopsis(f, &cli_top);
	fprintf(f, "\n%s\nCommands:\n", cli_top.about);
	for (size_t i = 0; i < cli_n_commands; i++)
		fprintf(f, "  %-11s  %s\n", cli_commands[i]->name, cli_commands[i]->summary);
	fputc('\n', f);
	cli_print_options(f, &cli_top);
	fprintf(f, "\n%s\nExit status: 0 success, 1 error, 2 usage error.\n", cli_top.notes);
	return f == stdout ? cli_flush_stdout() : 0;
}

/* --- storefs help [COMMAND] --- */

static int help_run(struct cli_ctx *c)
{
	const struct cli_cmd *cmd;

	if (c->argc == 0)
		return top_help(stdout);
	cmd = cli_command_find(c->argv[0]);
	if (!cmd)
		return cli_usage(c->cmd, "unknown command '%s'", c->argv[0]);
	return cli_help(cmd);
}

static const struct cli_cmd cmd_help = {
    .name = "help",
    .summary = "show the help of storefs or of a command",
    .operands = "[COMMAND]",
    .operand = "COMMAND",
    .max_operands = 1,
    .about = "Shows the help of COMMAND, as 'storefs COMMAND --help' does, or of storefs.\n",
    .run = help_run,
};

/* --- storefs ARGS --- */

static int top_fail(int rc)
{
	fprintf(stderr, "storefs: %s\n", sf_errmsg(rc));
	return CLI_FAILED;
}

int cli_main(int argc, char **argv)
{
	struct top_opts o = {0};
	struct cli_ctx c = {.cmd = &cli_top, .opts = &o};
	struct cli_config cfg;
	const struct cli_cmd *cmd;
	int rc;

	rc = cli_parse(&cli_top, argc, argv, true, &c);
	if (rc)
		return rc;
	if (c.help || o.version) {
		if (c.help)
			rc = top_help(stdout);
		else
			printf("storefs %s\n", STOREFS_VERSION);
		rc = rc ? rc : cli_flush_stdout();
		return rc ? top_fail(rc) : CLI_OK;
	}
	if (c.argc == 0) {
		top_help(stderr);
		return CLI_USAGE;
	}
	cmd = cli_command_find(c.argv[0]);
	if (!cmd) {
		fprintf(stderr, "storefs: unknown command '%s'\n", c.argv[0]);
		fprintf(stderr, "Try 'storefs --help' for the list of commands.\n");
		return CLI_USAGE;
	}
	rc = cli_config_load(o.config, &cfg);
	if (rc < 0)
		return top_fail(rc);
	c.config = &cfg;
	rc = cli_run(cmd, c.argc, c.argv, &c);
	cli_config_release(&cfg);
	return rc;
}
