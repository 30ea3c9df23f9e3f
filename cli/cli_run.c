/* cli_run.c - the common life of a storefs command: options, operands,
 * log level, store, run, and the one way every command ends. */
#include "cli/cli.h"
#include "cli/config.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

bool cli_ctx_has_service_addrs(const struct cli_ctx *c)
{
	return c->blob_addr || c->dir_addr || c->pi_addr || c->cache;
}

int cli_ctx_open_store(const struct cli_ctx *c, unsigned flags, struct store **out)
{
	int rc;

	if (c->wait)
		flags |= STORE_OPEN_WAIT;
	if (cli_ctx_has_service_addrs(c))
		rc =
		    cli_open_services(c->blob_addr ? c->blob_addr : c->store_url,
				      c->dir_addr ? c->dir_addr : c->store_url,
				      c->pi_addr ? c->pi_addr : c->store_url, c->cache, flags, out);
	else
		rc = cli_open_store(c->store_url, flags, out);
	if (rc == -EBUSY && (c->cmd->flags & CLI_WAIT) && !c->wait)
		return sf_err(rc, "%s (--wait waits for it)", sf_errmsg(rc));
	return rc;
}

/* "no PATH given", "only one FILE is allowed", "expected NAME STOREPATH",
 * "unexpected argument 'x'" */
static int check_operands(const struct cli_ctx *c)
{
	const struct cli_cmd *cmd = c->cmd;
	const char *what = cmd->operand ? cmd->operand : cmd->operands;
	bool exact = cmd->min_operands == cmd->max_operands && cmd->max_operands > 1;

	if (c->argc >= cmd->min_operands && (cmd->max_operands < 0 || c->argc <= cmd->max_operands))
		return 0;
	if (exact)
		return cli_usage(cmd, "expected %s", cmd->operands);
	if (c->argc < cmd->min_operands)
		return cli_usage(cmd, "no %s given", what);
	if (cmd->max_operands == 0)
		return cli_usage(cmd, "unexpected argument '%s'", c->argv[0]);
	if (cmd->max_operands == 1)
		return cli_usage(cmd, "only one %s is allowed", what);
	return cli_usage(cmd, "at most %d %s are allowed", cmd->max_operands, what);
}

/* "--socket PATH is required" */
static int check_required(const struct cli_ctx *c)
{
	for (const struct cli_opt *o = c->cmd->options; o && o->name; o++) {
		const char *const *v = (const char *const *)((const char *)c->opts + o->offset);

		if (o->required && (!*v || !**v))
			return cli_usage(c->cmd, "--%s %s is required", o->name, o->arg);
	}
	return 0;
}

/* What happens between parsing and run(): 0 to go on. */
static int prepare(struct cli_ctx *c)
{
	int rc = check_operands(c);

	if (rc == 0)
		rc = check_required(c);
	if (rc)
		return rc;
	if (c->wait)
		c->open_flags |= STORE_OPEN_WAIT;
	if (c->verbose)
		log_set_level(c->verbose > 1 ? LOG_DEBUG : LOG_INFO);
	if (c->cmd->check) {
		rc = c->cmd->check(c);
		if (rc)
			return rc;
	}
	if (c->cmd->flags & CLI_OPENS_STORE)
		rc = cli_ctx_open_store(c, c->open_flags, &c->store);
	return rc;
}

/* The one way every command ends: its exit status. */
static int finish(const struct cli_cmd *cmd, int rc)
{
	if (rc == 0)
		rc = cli_flush_stdout();
	if (rc >= 0)
		return rc;
	fprintf(stderr, "storefs %s: %s\n", cmd->name, sf_errmsg(rc));
	return CLI_FAILED;
}

/* The store options before the command, where the command has none. */
static void inherit_store(struct cli_ctx *c, const struct cli_ctx *top)
{
	if (!c->store_url)
		c->store_url = top->store_url;
	if (!c->blob_addr)
		c->blob_addr = top->blob_addr;
	if (!c->dir_addr)
		c->dir_addr = top->dir_addr;
	if (!c->pi_addr)
		c->pi_addr = top->pi_addr;
	if (!c->cache)
		c->cache = top->cache;
}

int cli_run(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_ctx *top)
{
	struct cli_ctx c = {.cmd = cmd, .open_flags = cmd->open_flags};
	int rc;

	if (top && (top->store_url || cli_ctx_has_service_addrs(top)) && !(cmd->flags & CLI_STORE))
		return cli_usage(cmd, "'%s' does not use a store (--store)", cmd->name);
	c.opts = calloc(1, cmd->opts_size ? cmd->opts_size : 1);
	if (!c.opts)
		return finish(cmd, -ENOMEM);
	if (cmd->defaults)
		memcpy(c.opts, cmd->defaults, cmd->opts_size);
	rc = cli_parse(cmd, argc, argv, false, &c);
	if (top)
		inherit_store(&c, top);
	if (top && top->config)
		cli_config_apply(top->config, &c);
	if (rc == 0 && c.help)
		rc = cli_help(cmd);
	else if (rc == 0)
		rc = prepare(&c);
	if (rc == 0 && !c.help)
		rc = cmd->run(&c);
	store_free(c.store);
	free(c.opts);
	return finish(cmd, rc);
}
