/* cmd_nar_import.c - `storefs nar-import`: register a NAR as a store path. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/nar_load.h"
#include "common/err.h"
#include "backends/registry.h"
#include "store/nix_hash.h"

#include "store/store_gc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct cli_cmd cmd = {
    "nar-import",
    "nar-import [--store URL|DIR] (--name NAME | --path STOREPATH) [--nar-hash HASH]\n"
    "                  [--ca CA] [--add-root NAME] [--wait] [-v] FILE|-",
    "Reads a NAR (Nix ARchive) from FILE (or standard input for '-'), stores its\n"
    "contents and registers it as a store path, which is printed. The NAR is\n"
    "parsed strictly (at least as strictly as modern Nix): unsorted or duplicate\n"
    "names, bad names or symlink targets, non-zero padding, fields out of order,\n"
    "nesting of 64 levels, truncation or trailing bytes are refused with a message\n"
    "naming the byte offset, and then nothing is registered.\n"
    "\n"
    "A registered path never changes: registering a path again with the same\n"
    "NAR is a no-op (-v says so), with another NAR it is refused naming both\n"
    "NAR hashes. A claimed CA (--name, --ca) is checked against the contents\n"
    "and the store path (\"ca hash mismatch ...\" as in Nix).\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs); created if missing\n"
    "  --name NAME      register the content-addressed \"source\" path NAME that\n"
    "                   `nix-store --add` would make for this NAR (CA fixed:r:sha256)\n"
    "  --path STOREPATH register the NAR under STOREPATH as given, without\n"
    "                   references (and without a CA unless --ca is given)\n"
    "  --ca CA          with --path: its CA (\"fixed:[r:]ALGO:HASH\" or\n"
    "                   \"text:sha256:HASH\"), which must match the contents and\n"
    "                   STOREPATH\n"
    "  --nar-hash HASH  the NAR's expected SHA-256, in any Nix syntax\n"
    "                   (sha256:<nix32|hex|base64> or SRI sha256-<base64>); a NAR\n"
    "                   with another hash is refused\n"
    "  --add-root NAME  also make the path a GC root named NAME (as `storefs\n"
    "                   add-root`, before the import lock is released)\n"
    "  --wait           if another import holds the store's lock, wait for it\n"
    "  -v, --verbose    say when the path was registered already\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum { OPT_NAME = 256, OPT_PATH, OPT_NAR_HASH, OPT_CA, OPT_WAIT, OPT_ADD_ROOT };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"name", required_argument, NULL, OPT_NAME},
    {"path", required_argument, NULL, OPT_PATH},
    {"nar-hash", required_argument, NULL, OPT_NAR_HASH},
    {"ca", required_argument, NULL, OPT_CA},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"verbose", no_argument, NULL, 'v'},
    {"add-root", required_argument, NULL, OPT_ADD_ROOT},
    {0},
};

struct opts {
	const char *url, *name, *path, *nar_hash, *ca, *file, *root;
	unsigned flags;
	bool has_hash, verbose;
	uint8_t hash[32];
	struct store_path sp; /* with --path */
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
	char got[CLI_NAR_HASH_TEXT_LEN], want[CLI_NAR_HASH_TEXT_LEN];

	if (!o->has_hash || !memcmp(o->hash, l->sum.sha256, 32))
		return 0;
	cli_nar_hash_text(l->sum.sha256, got);
	cli_nar_hash_text(o->hash, want);
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

static int nar_import(struct store *st, const struct opts *o)
{
	char full[STORE_PATH_FULL_MAX];
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct nar_summary e;
	struct nar_loaded *l = malloc(sizeof(*l));
	struct path_info *pi = NULL;
	struct store_write *w = NULL;
	int fd = -1, rc = l ? open_input(o->file, &fd) : -ENOMEM;

	/* A refused NAR takes back the blobs it wrote (docs/trust.md). */
	if (rc == 0)
		rc = store_write_begin(st, &w);
	if (rc == 0)
		rc = nar_load_fd(st, w, fd, expectation(o, fd, &e), l);
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
		rc = store_root_add(st, o->root, &pi->path);
	if (rc == -ENOTSUP)
		rc = sf_err(rc, "store '%s' has no GC roots", st->location);
	if (rc == 0) {
		cli_report_registration(&cmd, o->verbose, pi, res);
		store_path_full(&pi->path, full);
		printf("%s\n", full);
		rc = cli_flush_stdout();
	}
	if (fd > STDIN_FILENO)
		close(fd);
	path_info_free(pi);
	free(l);
	return rc;
}

static int parse_opt(struct opts *o, int ch)
{
	switch (ch) {
	case CLI_OPT_STORE:
		o->url = optarg;
		break;
	case OPT_NAME:
		o->name = optarg;
		break;
	case OPT_PATH:
		o->path = optarg;
		break;
	case OPT_NAR_HASH:
		o->nar_hash = optarg;
		break;
	case OPT_CA:
		o->ca = optarg;
		break;
	case OPT_WAIT:
		o->flags |= STORE_OPEN_WAIT;
		break;
	case 'v':
		o->verbose = true;
		break;
	case OPT_ADD_ROOT:
		o->root = optarg;
		break;
	default:
		return CLI_USAGE;
	}
	return 0;
}

static int check_opts(struct opts *o, int argc, char **argv)
{
	int rc;

	if (optind == argc)
		return cli_usage(&cmd, "no FILE given (use '-' for standard input)");
	if (argc - optind > 1)
		return cli_usage(&cmd, "only one FILE is allowed");
	o->file = argv[optind];
	if (!o->name == !o->path)
		return cli_usage(&cmd, "exactly one of --name and --path is required");
	if (o->ca && !o->path)
		return cli_usage(&cmd, "--ca needs --path (--name always makes a CA path)");
	rc = o->name ? store_path_name_check(o->name, strlen(o->name))
		     : store_path_parse(o->path, strlen(o->path), true, &o->sp);
	if (rc == 0 && o->nar_hash)
		rc = nar_hash_parse(o->nar_hash, o->hash);
	if (rc < 0)
		return cli_usage(&cmd, "%s", sf_errmsg(rc));
	o->has_hash = o->nar_hash != NULL;
	return 0;
}

int cmd_nar_import(int argc, char **argv)
{
	struct opts o = {.flags = STORE_OPEN_CREATE | STORE_OPEN_IMPORT};
	struct store *st;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "hv", longopts)) != -1) {
		if (ch == CLI_OPT_HELP)
			return cli_help(&cmd);
		if (parse_opt(&o, ch))
			return CLI_USAGE;
	}
	rc = check_opts(&o, argc, argv);
	if (rc)
		return rc;
	rc = cli_open_store(o.url, o.flags, &st);
	if (rc < 0)
		return cli_fail(&cmd, rc);
	rc = nar_import(st, &o);
	store_free(st);
	return rc < 0 ? cli_fail(&cmd, rc) : CLI_OK;
}
