/* cmd_gc.c - `storefs gc` and `storefs delete`: remove store paths, then
 * the Directories and blobs nothing reaches any more (docs/gc.md). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "common/err.h"
#include "store/gc.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gc_opts {
	bool dry_run, json, ignore_liveness;
	unsigned long long max_freed;
};

#define GC_OPT_DRY_RUN                                                                             \
	CLI_BOOL(0, "dry-run", struct gc_opts, dry_run,                                            \
		 "print what would be deleted; delete nothing")

static const struct cli_opt gc_options[] = {
    GC_OPT_DRY_RUN,
    CLI_UINT(0, "max-freed", struct gc_opts, max_freed, "BYTES", 0, ULLONG_MAX,
	     "stop deleting blobs once BYTES are freed (the paths and Directories are still "
	     "deleted; the next gc removes the remaining blobs)"),
    CLI_BOOL(0, "json", struct gc_opts, json,
	     "print one JSON object instead: {\"deleted\": [paths], \"directories\", \"blobs\", "
	     "\"bytesFreed\", \"dryRun\"}"),
    {0},
};

static const struct cli_opt delete_options[] = {
    CLI_BOOL(0, "ignore-liveness", struct gc_opts, ignore_liveness,
	     "delete even rooted or referenced paths (their referrers are left with a missing "
	     "reference)"),
    GC_OPT_DRY_RUN,
    CLI_BOOL(0, "json", struct gc_opts, json, "print one JSON object as `storefs gc --json` does"),
    {0},
};

struct gc_cli {
	bool json;
	size_t printed;
	struct gc_options o;
	struct cli_progress prog;
};

static void on_progress(void *ctx, const struct gc_progress *p)
{
	struct gc_cli *c = ctx;

	if (p->phase == GC_MARKING)
		cli_progress_draw(&c->prog,
				  "gc: marking: %" PRIu64 " paths, %" PRIu64
				  " directories, %" PRIu64 " blobs reached",
				  p->paths, p->dirs, p->blobs);
	else
		cli_progress_draw(&c->prog,
				  "gc: sweeping: %" PRIu64 " directories, %" PRIu64
				  " blobs visited, %" PRIu64 " blobs deleted, %.1f MiB freed",
				  p->dirs, p->blobs, p->blobs_deleted,
				  (double)p->bytes_freed / (1024.0 * 1024.0));
}

static void on_path(void *ctx, const struct store_path *p)
{
	struct gc_cli *c = ctx;
	char full[STORE_PATH_FULL_MAX];

	cli_progress_done(&c->prog);
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

static int collect(struct gc_cli *c, struct store *st)
{
	struct gc_result r;
	int rc;

	if (c->json)
		fputs("{\"deleted\":[", stdout);
	cli_progress_init(&c->prog);
	rc = store_gc(st, &c->o, &r);
	cli_progress_done(&c->prog);
	if (rc == 0)
		rc = summary(c, &r);
	else if (c->json)
		fflush(stdout);
	return rc;
}

/* The STOREPATHs of `storefs delete`, parsed into `paths` (may be NULL to
 * only check them). */
static int parse_paths(const struct cli_ctx *c, struct store_path *paths)
{
	struct store_path sp;
	int rc = 0;

	for (int i = 0; rc == 0 && i < c->argc; i++)
		rc =
		    store_path_parse(c->argv[i], strlen(c->argv[i]), true, paths ? &paths[i] : &sp);
	return rc;
}

/* Malformed STOREPATHs fail before the store is opened. */
static int delete_check(struct cli_ctx *c)
{
	return parse_paths(c, NULL);
}

static int gc_run(struct cli_ctx *c)
{
	const struct gc_opts *o = c->opts;
	struct gc_cli g = {.json = o->json};
	struct store_path *paths = NULL;
	int rc = 0;

	if (c->argc && !(paths = calloc((size_t)c->argc, sizeof(*paths))))
		return -ENOMEM;
	if (c->argc)
		rc = parse_paths(c, paths);
	g.o = (struct gc_options){.dry_run = o->dry_run,
				  .max_freed = o->max_freed,
				  .only = paths,
				  .n_only = (size_t)c->argc,
				  .ignore_liveness = o->ignore_liveness,
				  .on_path = on_path,
				  .progress = on_progress,
				  .ctx = &g};
	if (rc == 0)
		rc = collect(&g, c->store);
	free(paths);
	return rc;
}

/* Both wait for the import lock, so no import is half done while they run. */
const struct cli_cmd cmd_gc = {
    .name = "gc",
    .summary = "delete what no GC root reaches",
    .about = "Deletes every store path that is not in the closure of a GC root (see\n"
	     "`storefs add-root`) or of a temporary root (a path a running mount has\n"
	     "looked up), then every Directory and blob that no remaining path reaches.\n"
	     "Prints each deleted path on standard output, then a summary on standard\n"
	     "error: paths, Directories and blobs deleted and bytes freed. Waits for\n"
	     "the store's import lock, so no import is half done while it runs; a\n"
	     "crash at any moment leaves a store that `storefs verify` passes.\n",
    .notes = "A progress line (marking, then sweeping: objects visited, bytes freed) is\n"
	     "shown on standard error when it is a terminal.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_IMPORT | STORE_OPEN_WAIT,
    .options = gc_options,
    .opts_size = sizeof(struct gc_opts),
    .run = gc_run,
};

const struct cli_cmd cmd_delete = {
    .name = "delete",
    .summary = "delete store paths nothing uses",
    .operands = "STOREPATH...",
    .operand = "STOREPATH",
    .min_operands = 1,
    .max_operands = -1,
    .about = "Deletes the STOREPATHs, then every Directory and blob that no remaining\n"
	     "path reaches, and prints what `storefs gc` prints. A STOREPATH that is a\n"
	     "GC root (or a temporary root of a running mount) or that a remaining path\n"
	     "references is refused, naming the root or the referrer, and then nothing\n"
	     "is deleted.\n",
    .notes = "A progress line is shown on standard error when it is a terminal, as for\n"
	     "`storefs gc`.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_IMPORT | STORE_OPEN_WAIT,
    .options = delete_options,
    .opts_size = sizeof(struct gc_opts),
    .check = delete_check,
    .run = gc_run,
};
