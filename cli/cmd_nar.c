/* cmd_nar.c - `storefs nar`: render a store path's NAR to standard output. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/nar.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_cmd cmd = {
    "nar",
    "nar [--store URL|DIR] STOREPATH[/sub/path]",
    "Writes the NAR (Nix ARchive) of STOREPATH to standard output, byte for byte\n"
    "what `nix-store --dump` writes for it. STOREPATH is /nix/store/<hash>-<name>\n"
    "or just <hash>-<name>; with /sub/path, the NAR of that entry. The NAR of a\n"
    "whole store path is checked against its recorded hash and size; a mismatch\n"
    "(or a missing blob or directory) is an error after the bytes were written.\n"
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

#define OUT_BUF (256u << 10)

/* Collects the renderer's many small writes into large write()s. */
struct out_buf {
	uint8_t *buf;
	size_t n;
};

static int out_flush(struct out_buf *o)
{
	int rc = cli_write_all(STDOUT_FILENO, o->buf, o->n);

	o->n = 0;
	return rc;
}

static int out_write(void *ctx, const void *data, size_t len)
{
	struct out_buf *o = ctx;
	int rc;

	if (o->n + len > OUT_BUF) {
		rc = out_flush(o);
		if (rc < 0)
			return rc;
	}
	if (len >= OUT_BUF)
		return cli_write_all(STDOUT_FILENO, data, len);
	memcpy(o->buf + o->n, data, len);
	o->n += len;
	return 0;
}

static int nar_dump(struct store *st, const char *arg)
{
	struct out_buf o = {.buf = malloc(OUT_BUF)};
	struct cli_target t;
	struct nar_summary sum;
	int rc = o.buf ? cli_resolve(st, arg, &t) : -ENOMEM;

	if (rc < 0) {
		free(o.buf);
		return rc;
	}
	rc = nar_render(st->blobs, st->dirs, &t.node, out_write, &o, &sum);
	if (rc == 0)
		rc = out_flush(&o);
	if (rc == 0 && !*t.sub &&
	    (sum.size != t.pi->nar_size || memcmp(sum.sha256, t.pi->nar_sha256, 32) != 0))
		rc = sf_err(-EIO, "the NAR of '%s' does not match its recorded hash and size",
			    t.full);
	cli_target_release(&t);
	free(o.buf);
	return rc;
}

int cmd_nar(int argc, char **argv)
{
	const char *url = NULL;
	struct store *st = NULL;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "h", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind == argc)
		return cli_usage(&cmd, "no STOREPATH given");
	if (argc - optind > 1)
		return cli_usage(&cmd, "only one STOREPATH is allowed");
	rc = cli_open_store(url, STORE_OPEN_READONLY, &st);
	if (rc == 0)
		rc = nar_dump(st, argv[optind]);
	if (rc < 0)
		cli_fail(&cmd, rc);
	store_free(st);
	return rc < 0 ? CLI_FAILED : CLI_OK;
}
