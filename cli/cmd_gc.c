/* cmd_gc.c - `storefs gc` and `storefs delete`: remove store paths, then
 * the Directories and blobs nothing reaches any more (docs/gc.md). */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "common/err.h"
#include "store/gc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_cmd gc_cmd = {
    "gc",
    "gc [--store URL|DIR] [--dry-run] [--max-freed BYTES] [--json]",
    "Deletes every store path that is not in the closure of a GC root (see\n"
    "`storefs add-root`) or of a temporary root (a path a running mount has\n"
    "looked up), then every Directory and blob that no remaining path reaches.\n"
    "Prints each deleted path on standard output, then a summary on standard\n"
    "error: paths, Directories and blobs deleted and bytes freed. Waits for\n"
    "the store's import lock, so no import is half done while it runs; a\n"
    "crash at any moment leaves a store that `storefs verify` passes.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR    the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                     as root, else $XDG_DATA_HOME/storefs)\n"
    "  --dry-run          print what would be deleted; delete nothing\n"
    "  --max-freed BYTES  stop deleting blobs once BYTES are freed (the paths\n"
    "                     and Directories are still deleted; the next gc\n"
    "                     removes the remaining blobs)\n"
    "  --json             print one JSON object instead: {\"deleted\": [paths],\n"
    "                     \"directories\", \"blobs\", \"bytesFreed\", \"dryRun\"}\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

static const struct cli_cmd delete_cmd = {
    "delete",
    "delete [--store URL|DIR] [--ignore-liveness] [--dry-run] [--json] STOREPATH...",
    "Deletes the STOREPATHs, then every Directory and blob that no remaining\n"
    "path reaches, and prints what `storefs gc` prints. A STOREPATH that is a\n"
    "GC root (or a temporary root of a running mount) or that a remaining path\n"
    "references is refused, naming the root or the referrer, and then nothing\n"
    "is deleted.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR    the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                     as root, else $XDG_DATA_HOME/storefs)\n"
    "  --ignore-liveness  delete even rooted or referenced paths (their\n"
    "                     referrers are left with a missing reference)\n"
    "  --dry-run          print what would be deleted; delete nothing\n"
    "  --json             print one JSON object as `storefs gc --json` does\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum { OPT_DRY_RUN = 256, OPT_MAX_FREED, OPT_JSON, OPT_IGNORE_LIVENESS };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"max-freed", required_argument, NULL, OPT_MAX_FREED},
    {"json", no_argument, NULL, OPT_JSON},
    {"ignore-liveness", no_argument, NULL, OPT_IGNORE_LIVENESS},
    {0},
};

struct gc_cli {
	const struct cli_cmd *cmd;
	const char *url;
	bool json;
	size_t printed;
	struct gc_options o;
};

static void on_path(void *ctx, const struct store_path *p)
{
	struct gc_cli *c = ctx;
	char full[STORE_PATH_FULL_MAX];

	store_path_full(p, full);
	if (c->json) {
		fputs(c->printed ? "," : "", stdout);
		json_cstring(stdout, full);
	} else {
		puts(full);
	}
	c->printed++;
}

static int summary(struct gc_cli *c, const struct gc_result *r)
{
	if (c->json) {
		printf("],\"directories\":%" PRIu64 ",\"blobs\":%" PRIu64 ",\"bytesFreed\":%" PRIu64
		       ",\"dryRun\":%s}\n",
		       r->dirs, r->blobs, r->bytes_freed, c->o.dry_run ? "true" : "false");
	} else {
		fprintf(stderr,
			"%s%" PRIu64 " store paths, %" PRIu64 " directories, %" PRIu64
			" blobs deleted, %" PRIu64 " bytes freed\n",
			c->o.dry_run ? "would be: " : "", r->paths, r->dirs, r->blobs,
			r->bytes_freed);
	}
	return cli_flush_stdout();
}

static int parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse(struct gc_cli *c, int argc, char **argv)
{
	int ch;

	while ((ch = cli_getopt(c->cmd, argc, argv, "h", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(c->cmd) == CLI_OK ? 1 : -CLI_FAILED;
		case CLI_OPT_STORE:
			c->url = optarg;
			break;
		case OPT_DRY_RUN:
			c->o.dry_run = true;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_MAX_FREED:
			if (c->cmd != &gc_cmd || parse_bytes(optarg, &c->o.max_freed) < 0)
				return -cli_usage(c->cmd, "--max-freed takes a number of bytes");
			break;
		case OPT_IGNORE_LIVENESS:
			if (c->cmd != &delete_cmd)
				return -cli_usage(c->cmd, "unknown option '--ignore-liveness'");
			c->o.ignore_liveness = true;
			break;
		default:
			return -CLI_USAGE;
		}
	}
	return 0;
}

static int collect(struct gc_cli *c)
{
	struct gc_result r;
	struct store *st;
	int rc = cli_open_store(c->url, STORE_OPEN_IMPORT | STORE_OPEN_WAIT, &st);

	if (rc < 0)
		return rc;
	if (c->json)
		fputs("{\"deleted\":[", stdout);
	rc = store_gc(st, &c->o, &r);
	store_free(st);
	if (rc == 0)
		rc = summary(c, &r);
	else if (c->json)
		fflush(stdout);
	return rc;
}

/* Both commands; `nargs_min` STOREPATHs are required (delete: 1). */
static int run(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct gc_cli c = {.cmd = cmd};
	struct store_path *paths = NULL;
	int rc = parse(&c, argc, argv), n;

	if (rc)
		return rc > 0 ? CLI_OK : -rc;
	n = argc - optind;
	if (cmd == &gc_cmd && n)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (cmd == &delete_cmd && !n)
		return cli_usage(cmd, "no STOREPATH given");
	if (n && !(paths = calloc((size_t)n, sizeof(*paths))))
		return cli_fail(cmd, -ENOMEM);
	for (int i = 0; i < n; i++) {
		rc = store_path_parse(argv[optind + i], strlen(argv[optind + i]), true, &paths[i]);
		if (rc < 0) {
			free(paths);
			return cli_fail(cmd, rc);
		}
	}
	c.o.only = paths, c.o.n_only = (size_t)n;
	c.o.on_path = on_path, c.o.ctx = &c;
	rc = collect(&c);
	free(paths);
	return rc < 0 ? cli_fail(cmd, rc) : CLI_OK;
}

int cmd_gc(int argc, char **argv)
{
	return run(&gc_cmd, argc, argv);
}

int cmd_delete(int argc, char **argv)
{
	return run(&delete_cmd, argc, argv);
}
