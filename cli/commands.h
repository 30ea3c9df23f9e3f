/* commands.h - the storefs subcommands, one file each under cli/. Each
 * takes argv with argv[0] = the subcommand name and returns the exit status:
 * 0 success, 1 failure (one-line message on stderr), 2 usage error. */
#ifndef STOREFS_COMMANDS_H
#define STOREFS_COMMANDS_H

int cmd_import(int argc, char **argv);
int cmd_nar(int argc, char **argv);
int cmd_path_info(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_nar_import(int argc, char **argv);
int cmd_import_nix(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_virtiofs(int argc, char **argv);
int cmd_add_root(int argc, char **argv);
int cmd_remove_root(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_copy(int argc, char **argv);

#endif
