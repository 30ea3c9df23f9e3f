/* cmd_verify.c - `storefs verify`: check a store's objects, optionally
 * repairing them from another store. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/err.h"
#include "store/verify.h"

#include <stdio.h>

struct verify_opts {
	const char *repair_from;
	bool check_contents, quiet, remove;
};

static const struct cli_opt verify_options[] = {
    CLI_BOOL(0, "check-contents", struct verify_opts, check_contents,
	     "also render every path's NAR and compare its SHA-256 and size with the recorded "
	     "ones: this reads every file of every path once more and hashes it with SHA-256: it "
	     "costs more than the whole default run (2.3x its time in all, measured in "
	     "docs/trust.md), hence not the default; damaged blobs are found without it"),
    CLI_STRING(0, "repair-from", struct verify_opts, repair_from, "URL|DIR",
	       "fetch missing or damaged blobs and Directories from this store (opened read-only; "
	       "blobs are checked against their digest first), then check again"),
    CLI_BOOL(0, "repair", struct verify_opts, remove,
	     "then remove the unreferenced blobs and Directories (what refused, failed or killed "
	     "writes left), if the store has no problem left: waits until no import, upload, fetch "
	     "or gc runs and keeps them out while it removes, sparing what paths registered "
	     "meanwhile use (docs/trust.md \"Orphans\")"),
    CLI_BOOL('q', "quiet", struct verify_opts, quiet, "print problems only, no notes or summary"),
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
static int open_checked_store(const struct cli_ctx *c, struct store **st)
{
	int rc = cli_ctx_open_store(c, 0, st);

	if (rc == -EACCES || rc == -EROFS || rc == -EBUSY) {
		sf_err_clear();
		rc = cli_ctx_open_store(c, STORE_OPEN_READONLY, st);
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

static int verify_main(const struct cli_ctx *cc, const char *from, struct verify_cli *c,
		       bool *clean)
{
	struct verify_result res;
	struct store *st = NULL;
	uint64_t repaired = 0;
	/* Removing needs the store writable: no read-only fallback then. */
	int rc = c->remove ? cli_ctx_open_store(cc, 0, &st) : open_checked_store(cc, &st);

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

static int verify(struct cli_ctx *cc)
{
	const struct verify_opts *o = cc->opts;
	struct verify_cli c = {.prefix = "",
			       .quiet = o->quiet,
			       .check_contents = o->check_contents,
			       .remove = o->remove};
	bool clean = false;
	int rc = verify_main(cc, o->repair_from, &c, &clean);

	if (rc == 0)
		rc = cli_flush_stdout();
	if (rc == 0 && !clean)
		return CLI_FAILED; /* the problems are printed */
	return rc;
}

const struct cli_cmd cmd_verify = {
    .name = "verify",
    .summary = "check every object of the store; repair from another",
    .about = "Checks every object of the store: each blob file against its BLAKE3 digest\n"
	     "(damaged ones are moved to the store's quarantine/ and reported), each\n"
	     "Directory's digest and closure (all children present), and each store\n"
	     "path's root, its references (one that is not registered is a note: a store\n"
	     "a substituter fills holds paths without them) and its CA: the CA\n"
	     "must give the store path and fit the contents (a flat or text CA is checked\n"
	     "against the file's bytes, \"fixed:r:sha256\" against the NAR hash).\n"
	     "Blobs and Directories that no path reaches are counted in the summary\n"
	     "(a failed or killed import leaves them; they are not a problem).\n"
	     "Prints one line per problem (\"blob|directory|path|quarantined SUBJECT: why\")\n"
	     "and a summary line.\n",
    .exit_status = "0 no problem (left), 1 problems or an error, 2 usage error.",
    .flags = CLI_STORE,
    .store_note = "opened writable if it may be, to quarantine damaged blobs",
    .options = verify_options,
    .opts_size = sizeof(struct verify_opts),
    .run = verify,
};
