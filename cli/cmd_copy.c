/* cmd_copy.c - `storefs copy`: store paths (and with -r their closure)
 * from one store to another, reusing what the destination has. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/closure.h"
#include "store/copy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct copy_opts {
	const char *from, *to;
	bool recursive;
};

static const struct cli_opt copy_options[] = {
    CLI_STRING_REQUIRED(0, "from", struct copy_opts, from, "URL|DIR", "the store to copy from"),
    CLI_STRING_REQUIRED(0, "to", struct copy_opts, to, "URL|DIR",
			"the store to copy to (created if missing); its import lock is held "
			"while copying"),
    CLI_BOOL('r', "recursive", struct copy_opts, recursive,
	     "copy the closure too, references first (without it, a reference missing from the "
	     "destination is an error)"),
    {0},
};

struct copy_run {
	struct store *src, *dst;
	bool recursive;
	struct path_set done; /* copied (or found) in this run */
	struct copy_stats stats;
};

static int copy_closure(struct copy_run *r, const struct store_path *p, unsigned depth);

/* References first (depth-first, post-order), each path once. */
static int copy_one(struct copy_run *r, const struct path_info *pi, unsigned depth)
{
	int rc = 0;

	for (size_t i = 0; r->recursive && rc == 0 && i < pi->n_refs; i++)
		if (memcmp(pi->refs[i].digest, pi->path.digest, STORE_PATH_DIGEST_LEN))
			rc = copy_closure(r, &pi->refs[i], depth + 1);
	if (rc == 0)
		rc = store_copy_path(r->src, r->dst, pi, &r->stats);
	return rc;
}

static int copy_closure(struct copy_run *r, const struct store_path *p, unsigned depth)
{
	char full[STORE_PATH_FULL_MAX];
	struct path_info *pi;
	bool found = false;
	int rc;

	if (path_set_get(&r->done, p->digest))
		return 0;
	if (depth > 10000)
		return sf_err(-ELOOP, "references nest more than 10000 levels deep");
	rc = path_set_put(&r->done, p->digest, &closure_seen_mark);
	/* A path the destination has comes with its closure (references are
	 * registered first), so the source is not asked at all. */
	if (rc == 0)
		rc = store_path_has(r->dst, p, &found);
	if (rc == 0 && found) {
		r->stats.paths_present++;
		return 0;
	}
	if (rc == 0)
		rc = path_info_service_get(r->src->paths, p->digest, &pi);
	if (rc == 0 && strcmp(pi->path.name, p->name)) {
		path_info_free(pi);
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		store_path_full(p, full);
		return sf_err(-ENOENT, "'%s' is not in the source store", full);
	}
	if (rc < 0)
		return rc;
	rc = copy_one(r, pi, depth);
	path_info_free(pi);
	return rc;
}

static int run(struct copy_run *r, char **args, int n)
{
	struct store_path p;
	char full[STORE_PATH_FULL_MAX];
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		rc = store_path_parse(args[i], strlen(args[i]), true, &p);
		if (rc == 0)
			rc = copy_closure(r, &p, 0);
		if (rc == 0) {
			store_path_full(&p, full);
			puts(full);
		}
	}
	if (rc == 0)
		rc = cli_flush_stdout();
	fprintf(stderr,
		"%" PRIu64 " paths copied, %" PRIu64 " present; %" PRIu64 " blobs (%" PRIu64
		" bytes) copied, %" PRIu64 " present\n",
		r->stats.paths, r->stats.paths_present, r->stats.blobs, r->stats.blob_bytes,
		r->stats.blobs_present);
	if (r->stats.nars)
		fprintf(stderr, "%" PRIu64 " NARs (%" PRIu64 " bytes) uploaded\n", r->stats.nars,
			r->stats.nar_bytes);
	return rc;
}

static int copy_cmd_run(struct cli_ctx *c)
{
	const struct copy_opts *o = c->opts;
	struct copy_run r = {.recursive = o->recursive};
	int rc = cli_open_store(o->from, STORE_OPEN_READONLY, &r.src);

	if (rc == 0)
		rc = cli_open_store(o->to, STORE_OPEN_CREATE | STORE_OPEN_IMPORT | STORE_OPEN_WAIT,
				    &r.dst);
	if (rc == 0) {
		path_set_init(&r.done);
		rc = run(&r, c->argv, c->argc);
		path_set_release(&r.done);
	}
	store_free(r.dst);
	store_free(r.src);
	return rc;
}

const struct cli_cmd cmd_copy = {
    .name = "copy",
    .summary = "copy store paths (with -r their closure) between stores",
    .operands = "STOREPATH...",
    .operand = "STOREPATH",
    .min_operands = 1,
    .max_operands = -1,
    .about = "Copies each STOREPATH from the store --from into the store --to, like\n"
	     "`nix copy`: the blobs the destination lacks (by digest, each checked as\n"
	     "it is written), the Directories, then the PathInfo with its references,\n"
	     "signatures and CA, in one atomic step where the destination can. A path\n"
	     "the destination has is not copied again. Prints each STOREPATH, then a\n"
	     "summary on standard error: paths copied and present, blobs and bytes\n"
	     "copied, blobs the destination had, NARs uploaded. Both stores are any URL\n"
	     "storefs opens (a directory, local://DIR, nix+http(s)://HOST...).\n"
	     "\n"
	     "To a Nix binary cache (nix+http(s)://HOST[:PORT][/PATH]) each path goes\n"
	     "as Nix's client sends it: unless the cache has its narinfo, the NAR\n"
	     "(uncompressed; skipped if a HEAD finds it there), then the narinfo. A\n"
	     "`storefs serve --allow-uploads` wants its token: name the file holding it\n"
	     "in the URL, ?upload-token-file=FILE (sent as a Bearer credential, never\n"
	     "shown), and add &cache=memory:// so no local cache is created. From a\n"
	     "cache, paths are fetched (and checked) through &cache=DIR.\n",
    .notes = "Each NAR fetched from a cache shows a progress line on standard error when\n"
	     "it is a terminal.\n",
    .options = copy_options,
    .opts_size = sizeof(struct copy_opts),
    .run = copy_cmd_run,
};
