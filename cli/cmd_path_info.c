/* cmd_path_info.c - `storefs path-info`: show what the store records for paths. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "store/nix_hash.h"
#include "cli/json.h"
#include "common/encoding.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_cmd cmd = {
    "path-info",
    "path-info [--store URL|DIR] [--json] STOREPATH...",
    "Shows what the store records for each STOREPATH (/nix/store/<hash>-<name>\n"
    "or just <hash>-<name>):\n"
    "\n"
    "  /nix/store/<hash>-<name>\n"
    "    root: <directory|file|symlink> ...   the castore root node: blake3-<base64>\n"
    "                                         digest and size (directory, file;\n"
    "                                         files also 'executable'), or the\n"
    "                                         target (symlink)\n"
    "    nar-hash: sha256:<nixbase32>         as `nix-store -q --hash` prints it\n"
    "    nar-size: <bytes>                    as `nix-store -q --size` prints it\n"
    "    references: <paths, space-separated>\n"
    "    ca: <fixed:r:sha256:...>             if content-addressed\n"
    "    deriver: <path>                      if known\n"
    "    signature: <key>:<base64>            one line per signature\n"
    "\n"
    "Paths are separated by an empty line. If any STOREPATH is not in the\n"
    "store, nothing is printed on standard output and the status is 1.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs)\n"
    "  --json           print a JSON array instead, one object per path with the\n"
    "                   keys path, root {type, digest, size, executable, target},\n"
    "                   narHash, narSize, references, ca, deriver, signatures\n"
    "                   (absent values are null or empty arrays)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum { OPT_JSON = 256 };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"json", no_argument, NULL, OPT_JSON},
    {0},
};

static const char *kind_name(enum node_kind k)
{
	return k == NODE_DIRECTORY ? "directory" : k == NODE_FILE ? "file" : "symlink";
}

static void sig_text(const struct path_signature *s, char *out)
{
	size_t n = strlen(s->name);

	memcpy(out, s->name, n);
	out[n] = ':';
	base64_encode(s->data, 64, out + n + 1, BASE64_STD);
}

/* --- text --- */

static void text_root(const struct node *r)
{
	char d[B3_TEXT_LEN + 1];

	printf("  root: %s", kind_name(r->kind));
	if (r->kind == NODE_SYMLINK) {
		fputs(" -> ", stdout);
		fwrite(r->target, 1, r->target_len, stdout);
		putchar('\n');
		return;
	}
	b3_digest_to_text(&r->digest, d);
	printf(" %s size %llu%s\n", d, (unsigned long long)r->size,
	       r->kind == NODE_FILE && r->executable ? " executable" : "");
}

static int text_one(const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX], hash[CLI_NAR_HASH_TEXT_LEN], ca[NIX_CA_TEXT_MAX], sig[256];
	int rc;

	store_path_full(&pi->path, full);
	cli_nar_hash_text(pi->nar_sha256, hash);
	printf("%s\n", full);
	text_root(&pi->root);
	printf("  nar-hash: %s\n  nar-size: %llu\n  references:", hash,
	       (unsigned long long)pi->nar_size);
	for (size_t i = 0; i < pi->n_refs; i++) {
		store_path_full(&pi->refs[i], full);
		printf(" %s", full);
	}
	putchar('\n');
	if (pi->has_ca) {
		rc = ca_print(pi->ca_type, pi->ca_digest, pi->ca_digest_len, ca);
		if (rc < 0)
			return rc;
		printf("  ca: %s\n", ca);
	}
	if (pi->has_deriver) {
		store_path_full(&pi->deriver, full);
		printf("  deriver: %s.drv\n", full);
	}
	for (size_t i = 0; i < pi->n_sigs; i++) {
		if (strlen(pi->sigs[i].name) > 150)
			return sf_err(-EINVAL, "signature key name is too long");
		sig_text(&pi->sigs[i], sig);
		printf("  signature: %s\n", sig);
	}
	return 0;
}

/* --- JSON --- */

static void json_root(const struct node *r)
{
	char d[B3_TEXT_LEN + 1];

	fputs("{", stdout);
	json_key(stdout, "type");
	json_cstring(stdout, kind_name(r->kind));
	if (r->kind == NODE_SYMLINK) {
		fputc(',', stdout);
		json_key(stdout, "target");
		json_string(stdout, r->target, r->target_len);
	} else {
		b3_digest_to_text(&r->digest, d);
		fputc(',', stdout);
		json_key(stdout, "digest");
		json_cstring(stdout, d);
		fputc(',', stdout);
		json_key(stdout, "size");
		json_u64(stdout, r->size);
	}
	if (r->kind == NODE_FILE) {
		fputc(',', stdout);
		json_key(stdout, "executable");
		fputs(r->executable ? "true" : "false", stdout);
	}
	fputs("}", stdout);
}

static void json_refs(const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX];

	json_key(stdout, "references");
	fputc('[', stdout);
	for (size_t i = 0; i < pi->n_refs; i++) {
		store_path_full(&pi->refs[i], full);
		if (i)
			fputc(',', stdout);
		json_cstring(stdout, full);
	}
	fputs("],", stdout);
}

static void json_sigs(const struct path_info *pi)
{
	char sig[256];

	json_key(stdout, "signatures");
	fputc('[', stdout);
	for (size_t i = 0; i < pi->n_sigs; i++) {
		if (i)
			fputc(',', stdout);
		sig_text(&pi->sigs[i], sig);
		json_cstring(stdout, sig);
	}
	fputc(']', stdout);
}

static int json_one(const struct path_info *pi)
{
	char full[STORE_PATH_FULL_MAX + 4], hash[CLI_NAR_HASH_TEXT_LEN], ca[NIX_CA_TEXT_MAX];
	int rc = pi->has_ca ? ca_print(pi->ca_type, pi->ca_digest, pi->ca_digest_len, ca) : 0;

	for (size_t i = 0; i < pi->n_sigs && rc == 0; i++)
		if (strlen(pi->sigs[i].name) > 150)
			rc = sf_err(-EINVAL, "signature key name is too long");
	if (rc < 0)
		return rc;
	store_path_full(&pi->path, full);
	cli_nar_hash_text(pi->nar_sha256, hash);
	fputc('{', stdout);
	json_key(stdout, "path");
	json_cstring(stdout, full);
	fputc(',', stdout);
	json_key(stdout, "root");
	json_root(&pi->root);
	fputc(',', stdout);
	json_key(stdout, "narHash");
	json_cstring(stdout, hash);
	fputc(',', stdout);
	json_key(stdout, "narSize");
	json_u64(stdout, pi->nar_size);
	fputc(',', stdout);
	json_refs(pi);
	json_key(stdout, "ca");
	pi->has_ca ? json_cstring(stdout, ca) : (void)fputs("null", stdout);
	fputc(',', stdout);
	json_key(stdout, "deriver");
	if (pi->has_deriver) {
		store_path_full(&pi->deriver, full);
		strcat(full, ".drv");
		json_cstring(stdout, full);
	} else {
		fputs("null", stdout);
	}
	fputc(',', stdout);
	json_sigs(pi);
	fputc('}', stdout);
	return 0;
}

/* --- command --- */

/* Looks every argument up first, so that a missing one prints nothing. */
static int lookup_all(struct store *st, char **args, int n, struct path_info **pis)
{
	for (int i = 0; i < n; i++) {
		struct cli_target t;
		int rc = cli_resolve(st, args[i], &t);

		if (rc == 0 && *t.sub)
			rc = sf_err(-EINVAL, "'%s' is not a store path (it has a sub path)",
				    args[i]);
		if (rc < 0) {
			cli_target_release(&t);
			return rc;
		}
		pis[i] = t.pi;
		t.pi = NULL;
		cli_target_release(&t);
	}
	return 0;
}

static int print_all(struct path_info **pis, int n, bool json)
{
	int rc = 0;

	if (json)
		putchar('[');
	for (int i = 0; i < n && rc == 0; i++) {
		if (i)
			fputs(json ? "," : "\n", stdout);
		rc = json ? json_one(pis[i]) : text_one(pis[i]);
	}
	if (json)
		puts("]");
	return rc ? rc : cli_flush_stdout();
}

int cmd_path_info(int argc, char **argv)
{
	const char *url = NULL;
	struct path_info **pis;
	struct store *st = NULL;
	bool json = false;
	int ch, rc, n;

	while ((ch = cli_getopt(&cmd, argc, argv, "h", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		default:
			return CLI_USAGE;
		}
	}
	n = argc - optind;
	if (n == 0)
		return cli_usage(&cmd, "no STOREPATH given");
	pis = calloc((size_t)n, sizeof(*pis));
	if (!pis)
		return cli_fail(&cmd, -ENOMEM);
	rc = cli_open_store(url, STORE_OPEN_READONLY, &st);
	if (rc == 0) {
		rc = lookup_all(st, argv + optind, n, pis);
		if (rc == 0)
			rc = print_all(pis, n, json);
		store_free(st);
	}
	for (int i = 0; i < n; i++)
		path_info_free(pis[i]);
	free(pis);
	return rc < 0 ? cli_fail(&cmd, rc) : CLI_OK;
}
