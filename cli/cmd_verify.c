/* cmd_verify.c - `storefs verify`: check a store's objects, optionally
 * repairing them from another store. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/verify.h"

#include <stdio.h>

static const struct cli_cmd cmd = {
    "verify",
    "verify [--store URL|DIR] [--check-contents] [--repair-from URL|DIR] [--repair] [-q]",
    "Checks every object of the store: each blob file against its BLAKE3 digest\n"
    "(damaged ones are moved to the store's quarantine/ and reported), each\n"
    "Directory's digest and closure (all children present), and each store\n"
    "path's root, its references (one that is not registered is a note: a store\n"
    "a substituter fills holds paths without them) and its CA: the CA\n"
    "must give the store path and fit the contents (a flat or text CA is checked\n"
    "against the file's bytes, \"fixed:r:sha256\" against the NAR hash).\n"
    "Blobs and Directories that no path reaches are counted in the summary\n"
    "(a failed or killed import leaves them; they are not a problem).\n"
    "Prints one line per problem (\"blob|directory|path|quarantined SUBJECT: why\")\n"
    "and a summary line.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR        the store (default: $STOREFS_STORE, else\n"
    "                         /var/lib/storefs as root, else\n"
    "                         $XDG_DATA_HOME/storefs)\n"
    "  --check-contents       also render every path's NAR and compare its SHA-256\n"
    "                         and size with the recorded ones: this reads every\n"
    "                         file of every path once more and hashes it with\n"
    "                         SHA-256: it costs more than the whole default run\n"
    "                         (2.3x its time in all, measured in docs/trust.md),\n"
    "                         hence not the default; damaged blobs are found\n"
    "                         without it\n"
    "  --repair-from URL|DIR  fetch missing or damaged blobs and Directories from\n"
    "                         this store (opened read-only; blobs are checked\n"
    "                         against their digest first), then check again\n"
    "  --repair               then remove the unreferenced blobs and Directories\n"
    "                         (what refused, failed or killed writes left), if the\n"
    "                         store has no problem left: waits until no import,\n"
    "                         upload, fetch or gc runs and keeps them out while\n"
    "                         it removes, sparing what paths registered meanwhile\n"
    "                         use (docs/trust.md \"Orphans\")\n"
    "  -q, --quiet            print problems only, no notes or summary\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit status: 0 no problem (left), 1 problems or an error, 2 usage error.\n",
};

enum { OPT_REPAIR = 256, OPT_CHECK_CONTENTS, OPT_REMOVE };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"repair-from", required_argument, NULL, OPT_REPAIR},
    {"check-contents", no_argument, NULL, OPT_CHECK_CONTENTS},
    {"repair", no_argument, NULL, OPT_REMOVE},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {0},
};

struct verify_cli {
	struct cli_progress progress;
	bool quiet, check_contents, remove;
	const char *prefix; /* "" or "after repair: " */
};

static void print_finding(void *ctx, const struct verify_finding *f)
{
	static const char *const kinds[] = {"blob", "directory", "path", "quarantined"};
	struct verify_cli *c = ctx;

	if (!f->problem && c->quiet)
		return;
	cli_progress_done(&c->progress);
	printf("%s%s %s: %s%s\n", c->prefix, kinds[f->kind], f->subject, f->why,
	       f->problem ? "" : " (note)");
}

/* Writable if we may (to record verified blobs and quarantine damaged
 * ones), else read-only. */
static int open_checked_store(const char *url, unsigned extra, struct store **st)
{
	int rc = cli_open_store(url, extra, st);

	if (rc == -EACCES || rc == -EROFS || rc == -EBUSY) {
		sf_err_clear();
		rc = cli_open_store(url, STORE_OPEN_READONLY, st);
	}
	return rc;
}

static int verify_run(struct store *st, struct verify_cli *c, struct verify_result *res)
{
	struct verify_options opt = {
	    .report = print_finding, .report_ctx = c, .check_contents = c->check_contents};

	opt.progress = cli_progress_update;
	opt.progress_ctx = &c->progress;
	cli_progress_init(&c->progress);
	return store_verify(st, &opt, res);
}

static int repair_run(struct store *st, const char *from_url, struct verify_cli *c,
		      const struct verify_result *res, uint64_t *repaired)
{
	struct verify_options opt = {.report = print_finding, .report_ctx = c};
	struct store *from = NULL;
	int rc = cli_open_store(from_url, STORE_OPEN_READONLY, &from);

	if (rc == 0)
		rc = store_verify_repair(st, from, res, &opt, repaired);
	store_free(from);
	return rc;
}

static void summary(const struct verify_cli *c, const struct verify_result *r, uint64_t repaired,
		    bool repairing)
{
	if (c->quiet)
		return;
	printf("%schecked %llu blobs (%.1f MiB), %llu directories, %llu paths", c->prefix,
	       (unsigned long long)r->blobs, (double)r->blob_bytes / (1 << 20),
	       (unsigned long long)r->dirs, (unsigned long long)r->paths);
	if (r->quarantined)
		printf(", %llu quarantined files", (unsigned long long)r->quarantined);
	if (r->unref_blobs || r->unref_dirs)
		printf(", unreferenced: %llu blobs (%.1f MiB), %llu directories",
		       (unsigned long long)r->unref_blobs, (double)r->unref_blob_bytes / (1 << 20),
		       (unsigned long long)r->unref_dirs);
	if (repairing)
		printf(", %llu objects repaired", (unsigned long long)repaired);
	printf(": %llu problem%s\n", (unsigned long long)r->problems, r->problems == 1 ? "" : "s");
}

/* Only a store that verified clean is swept: a missing Directory hides
 * the blobs below it from the walk, which would then look unreferenced. */
static int remove_unreferenced(struct store *st, const struct verify_cli *c,
			       const struct verify_result *res)
{
	struct verify_removed r;
	int rc;

	if (res->problems) {
		printf("not removing unreferenced objects: the store has problems\n");
		return 0;
	}
	rc = store_verify_remove_unreferenced(st, res, &r);
	if (rc == 0 && !c->quiet)
		printf("removed %llu unreferenced blobs (%.1f MiB) and %llu directories\n",
		       (unsigned long long)r.blobs, (double)r.blob_bytes / (1 << 20),
		       (unsigned long long)r.dirs);
	return rc;
}

static int verify_main(const char *url, const char *from, struct verify_cli *c, bool *clean)
{
	struct verify_result res;
	struct store *st = NULL;
	uint64_t repaired = 0;
	/* Removing needs the store writable: no read-only fallback then. */
	int rc = c->remove ? cli_open_store(url, 0, &st) : open_checked_store(url, 0, &st);

	if (rc == 0)
		rc = verify_run(st, c, &res);
	if (rc == 0 && from && res.problems) {
		rc = repair_run(st, from, c, &res, &repaired);
		verify_result_release(&res);
		c->prefix = "after repair: ";
		if (rc == 0)
			rc = verify_run(st, c, &res);
	}
	cli_progress_done(&c->progress);
	if (rc == 0) {
		summary(c, &res, repaired, from != NULL);
		*clean = res.problems == 0;
	}
	if (rc == 0 && c->remove)
		rc = remove_unreferenced(st, c, &res);
	if (st)
		verify_result_release(&res);
	store_free(st);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	struct verify_cli c = {.prefix = ""};
	const char *url = NULL, *from = NULL;
	bool clean = false;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "hq", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		case OPT_REPAIR:
			from = optarg;
			break;
		case 'q':
			c.quiet = true;
			break;
		case OPT_CHECK_CONTENTS:
			c.check_contents = true;
			break;
		case OPT_REMOVE:
			c.remove = true;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage(&cmd, "unexpected argument '%s'", argv[optind]);
	rc = verify_main(url, from, &c, &clean);
	if (rc == 0)
		rc = cli_flush_stdout();
	if (rc < 0)
		return cli_fail(&cmd, rc);
	return clean ? CLI_OK : CLI_FAILED;
}
