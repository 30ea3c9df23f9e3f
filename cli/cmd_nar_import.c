/* cmd_nar_import.c - `storefs nar-import`: register a NAR as a store path. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "store/nar_load.h"
#include "common/err.h"
#include "common/io.h"
#include "store/gc.h"
#include "store/nix_hash.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* docs/limits.md "Ingest": larger than any store path we know of, small
 * enough that an endless stream on standard input stops. */
#define NAR_IMPORT_DEFAULT_MAX_SIZE (64ull << 30)

struct opts {
	const char *name, *path, *nar_hash, *ca, *file, *root;
	unsigned long long max_size, max_dirs; /* 0: the default */
	bool has_hash;
	uint8_t hash[32];
	struct store_path sp; /* with --path */
};

static const struct cli_opt nar_import_options[] = {
    CLI_STRING(0, "name", struct opts, name, "NAME",
	       "register the content-addressed \"source\" path NAME that `nix-store --add` would "
	       "make for this NAR (CA fixed:r:sha256)"),
    CLI_STRING(0, "path", struct opts, path, "STOREPATH",
	       "register the NAR under STOREPATH as given, without references (and without a CA "
	       "unless --ca is given)"),
    CLI_STRING(0, "ca", struct opts, ca, "CA",
	       "with --path: its CA (\"fixed:[r:]ALGO:HASH\" or \"text:sha256:HASH\"), which must "
	       "match the contents and STOREPATH"),
    CLI_STRING(0, "nar-hash", struct opts, nar_hash, "HASH",
	       "the NAR's expected SHA-256, in any Nix syntax (sha256:<nix32|hex|base64> or SRI "
	       "sha256-<base64>); a NAR with another hash is refused"),
    CLI_STRING(0, "add-root", struct opts, root, "NAME",
	       "also make the path a GC root named NAME (as `storefs add-root`, before the import "
	       "lock is released)"),
    CLI_UINT(0, "max-nar-size", struct opts, max_size, "BYTES", 1, ULLONG_MAX,
	     "refuse a NAR larger than BYTES (default 64 GiB)"),
    CLI_UINT(0, "max-directories", struct opts, max_dirs, "N", 1, ULLONG_MAX,
	     "refuse a NAR with more than N directories (default 1000000)"),
    {0},
};

static int open_input(const char *file, int *fd)
{
	if (!strcmp(file, "-")) {
		*fd = STDIN_FILENO;
		return 0;
	}
	*fd = open(file, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return sf_err_sys(errno, "cannot open '%s'", file);
	return 0;
}

/* The expected summary when it is known in full: a regular file's size
 * together with --nar-hash lets the ingester stop early on a mismatch. */
static const struct nar_summary *expectation(const struct opts *o, int fd, struct nar_summary *e)
{
	struct stat sb;

	if (!o->has_hash || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return NULL;
	memcpy(e->sha256, o->hash, 32);
	e->size = (uint64_t)sb.st_size;
	return e;
}

static int check_hash(const struct opts *o, const struct nar_loaded *l)
{
	char got[NAR_HASH_TEXT_LEN], want[NAR_HASH_TEXT_LEN];

	if (!o->has_hash || !memcmp(o->hash, l->sum.sha256, 32))
		return 0;
	nar_hash_text(l->sum.sha256, got);
	nar_hash_text(o->hash, want);
	return sf_err(-EIO, "NAR hash mismatch: got %s, expected %s", got, want);
}

static int fill_path_info(const struct opts *o, const struct nar_loaded *l, struct path_info *pi)
{
	int rc;

	if (o->name) {
		rc = store_path_make_source(l->sum.sha256, o->name, NULL, 0, false, &pi->path);
		pi->ca_type = CA_NAR_SHA256;
		memcpy(pi->ca_digest, l->sum.sha256, 32);
		pi->ca_digest_len = 32;
		pi->has_ca = true;
	} else {
		pi->path = o->sp;
		rc = 0;
		if (o->ca) {
			rc = ca_parse(o->ca, strlen(o->ca), &pi->ca_type, pi->ca_digest,
				      &pi->ca_digest_len);
			pi->has_ca = rc == 0;
		}
	}
	if (rc < 0)
		return rc;
	pi->nar_size = l->sum.size;
	memcpy(pi->nar_sha256, l->sum.sha256, 32);
	return path_info_set_root(pi, &l->root);
}

static int nar_import(const struct cli_ctx *c, struct store *st, const struct opts *o)
{
	struct cli_progress_reader rd;
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct nar_limits lim = {
	    .max_size = o->max_size ? o->max_size : NAR_IMPORT_DEFAULT_MAX_SIZE,
	    .max_dirs = o->max_dirs ? o->max_dirs : NAR_DEFAULT_MAX_DIRS,
	};
	struct nar_summary e;
	struct nar_loaded *l = malloc(sizeof(*l));
	struct path_info *pi = NULL;
	struct store_write *w = NULL;
	int fd = -1, rc = l ? open_input(o->file, &fd) : -ENOMEM;

	/* A refused NAR takes back the blobs and Directories it wrote
	 * (docs/trust.md). */
	if (rc == 0)
		rc = store_write_begin(st, &w);
	if (rc == 0) {
		rd = (struct cli_progress_reader){.fd = fd};
		cli_progress_init(&rd.prog);
		rc = nar_load_read(st, w, cli_progress_read, &rd, expectation(o, fd, &e), &lim, l);
		cli_progress_done(&rd.prog);
	}
	if (rc == 0)
		rc = check_hash(o, l);
	if (rc == 0)
		rc = path_info_new(&pi);
	if (rc == 0)
		rc = fill_path_info(o, l, pi);
	if (rc == 0)
		rc = nar_load_register(st, pi, &res);
	if (w)
		store_write_finish(w, rc, o->file);
	if (rc == 0 && o->root)
		rc = cli_add_root(st, o->root, &pi->path);
	if (rc == 0)
		rc = cli_print_registered(c, pi, res);
	if (fd > STDIN_FILENO)
		close(fd);
	path_info_free(pi);
	free(l);
	return rc;
}

/* Usage errors beyond the option table, before the store is opened. */
static int nar_import_check(struct cli_ctx *c)
{
	struct opts *o = c->opts;
	int rc;

	o->file = c->argv[0];
	if (!o->name == !o->path)
		return cli_usage(c->cmd, "exactly one of --name and --path is required");
	if (o->ca && !o->path)
		return cli_usage(c->cmd, "--ca needs --path (--name always makes a CA path)");
	rc = o->name ? store_path_name_check(o->name, strlen(o->name))
		     : store_path_parse(o->path, strlen(o->path), true, &o->sp);
	if (rc == 0 && o->nar_hash)
		rc = nar_hash_parse(o->nar_hash, o->hash);
	/* A bad root name found after the import would leave the path unrooted. */
	if (rc == 0 && o->root)
		rc = store_root_name_check(o->root);
	if (rc < 0)
		return cli_usage(c->cmd, "%s", sf_errmsg(rc));
	o->has_hash = o->nar_hash != NULL;
	return 0;
}

static int nar_import_run(struct cli_ctx *c)
{
	return nar_import(c, c->store, c->opts);
}

const struct cli_cmd cmd_nar_import = {
    .name = "nar-import",
    .summary = "register a NAR read from a file as a store path",
    .operands = "FILE|-",
    .operand = "FILE (or '-' for standard input)",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Reads a NAR (Nix ARchive) from FILE (or standard input for '-'), stores its\n"
	     "contents and registers it as a store path, which is printed. Exactly one of\n"
	     "--name and --path is required. The NAR is parsed strictly (at least as\n"
	     "strictly as modern Nix): unsorted or duplicate names, bad names or symlink\n"
	     "targets, non-zero padding, fields out of order, nesting of 64 levels,\n"
	     "truncation or trailing bytes are refused with a message naming the byte\n"
	     "offset, and then nothing is registered.\n"
	     "\n"
	     "A registered path never changes: registering a path again with the same\n"
	     "NAR is a no-op (-v says so), with another NAR it is refused naming both\n"
	     "NAR hashes. A claimed CA (--name, --ca) is checked against the contents\n"
	     "and the store path (\"ca hash mismatch ...\" as in Nix).\n",
    .flags = CLI_STORE | CLI_OPENS_STORE | CLI_WAIT | CLI_VERBOSE,
    .open_flags = STORE_OPEN_CREATE | STORE_OPEN_IMPORT,
    .options = nar_import_options,
    .opts_size = sizeof(struct opts),
    .check = nar_import_check,
    .run = nar_import_run,
};
