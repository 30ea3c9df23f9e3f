/* commands.h - the storefs subcommands, one file each under cli/, listed
 * in commands.c. See cli.h for what a struct cli_cmd says and how it runs. */
#ifndef STOREFS_COMMANDS_H
#define STOREFS_COMMANDS_H

#include "cli/cli.h"

extern const struct cli_cmd cmd_import;
extern const struct cli_cmd cmd_nar;
extern const struct cli_cmd cmd_path_info;
extern const struct cli_cmd cmd_ls;
extern const struct cli_cmd cmd_cat;
extern const struct cli_cmd cmd_mount;
extern const struct cli_cmd cmd_nar_import;
extern const struct cli_cmd cmd_import_nix;
extern const struct cli_cmd cmd_serve;
extern const struct cli_cmd cmd_verify;
extern const struct cli_cmd cmd_list;
extern const struct cli_cmd cmd_virtiofs;
extern const struct cli_cmd cmd_add_root;
extern const struct cli_cmd cmd_remove_root;
extern const struct cli_cmd cmd_gc;
extern const struct cli_cmd cmd_delete;
extern const struct cli_cmd cmd_copy;
extern const struct cli_cmd cmd_info;
extern const struct cli_cmd cmd_daemon;

/* Every command, in `storefs --help` order, and storefs's own options. */
extern const struct cli_cmd *const cli_commands[];
extern const size_t cli_n_commands;
extern const struct cli_cmd cli_top;
/* The command called `name`, or NULL. */
const struct cli_cmd *cli_command_find(const char *name);

/* `storefs ARGS`: storefs's own options, then the command. The exit status. */
int cli_main(int argc, char **argv);

#endif
