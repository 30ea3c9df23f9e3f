/* cmd_nar.c - `storefs nar`: render a store path's NAR to standard output. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/nar.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int nar_run(struct cli_ctx *c)
{
	return nar_dump(c->store, c->argv[0]);
}

const struct cli_cmd cmd_nar = {
    .name = "nar",
    .summary = "write a store path's NAR to standard output",
    .operands = "STOREPATH[/sub/path]",
    .operand = "STOREPATH",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Writes the NAR (Nix ARchive) of STOREPATH to standard output, byte for byte\n"
	     "what `nix-store --dump` writes for it. STOREPATH is /nix/store/<hash>-<name>\n"
	     "or just <hash>-<name>; with /sub/path, the NAR of that entry. The NAR of a\n"
	     "whole store path is checked against its recorded hash and size; a mismatch\n"
	     "(or a missing blob or directory) is an error after the bytes were written.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .run = nar_run,
};
