/* config.h - the configuration file (/etc/storefs/storefs.conf, or
 * --config FILE, or $STOREFS_CONFIG): defaults for the store options of
 * every command that takes --store and for any command's own options.
 *
 * One setting per line, "key = value"; blank lines and lines starting
 * with '#' are ignored; spaces around the key and the value are dropped.
 * Keys:
 *	store, blob-service-addr, directory-service-addr,
 *	path-info-service-addr, cache	the store options
 *	COMMAND.OPTION			an option of a command, e.g.
 *					mount.substituter, mount.threads
 *					(a flag takes true or false)
 * A flag given on the command line (after or before the command) wins;
 * --store there replaces all the file's service addresses (not its cache).
 * An unknown key, an option with a bad value or a line without '=' is an
 * error naming FILE:LINE; the whole file is checked when it is read. */
#ifndef STOREFS_CLI_CONFIG_H
#define STOREFS_CLI_CONFIG_H

#include "cli/cli.h"

#include <stddef.h>

#define CLI_CONFIG_DEFAULT "/etc/storefs/storefs.conf"

struct cli_config_entry {
	const struct cli_cmd *cmd; /* NULL: a store option */
	const struct cli_opt *opt; /* with cmd: the option */
	char *key, *value;
	unsigned line;
};

struct cli_config {
	char *path; /* NULL: no file was read */
	struct cli_config_entry *v;
	size_t n;
};

/* Reads the file `path` (--config; it must exist), else $STOREFS_CONFIG if
 * set and non-empty (it must exist), else CLI_CONFIG_DEFAULT if it exists.
 * 0, or a negative errno with a message ("FILE:LINE: unknown key 'x'"). */
int cli_config_load(const char *path, struct cli_config *out);
void cli_config_release(struct cli_config *cfg);

/* Sets in `c` what the configuration says and the command line did not:
 * the store options (where c has none; none of the addresses if c has a
 * --store) and c->cmd's own options (those not given, see
 * cli_ctx.given). */
void cli_config_apply(const struct cli_config *cfg, struct cli_ctx *c);

#endif
