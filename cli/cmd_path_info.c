/* cmd_path_info.c - `storefs path-info`: show what the store records for paths. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "store/nix_hash.h"
#include "cli/json.h"
#include "common/encoding.h"
#include "common/err.h"
#include "store/nar_load.h"
#include "store/closure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
	bool json, recursive, closure_size, all;
};

static const struct cli_opt path_info_options[] = {
    CLI_BOOL('r', "recursive", struct opts, recursive,
	     "also every path in the closure of the STOREPATHs (their references, "
	     "recursively), like `nix path-info -r`"),
    CLI_BOOL('S', "closure-size", struct opts, closure_size,
	     "also the closure size: the sum of the NAR sizes of the path's closure"),
    CLI_BOOL(0, "all", struct opts, all, "every path in the store"),
    CLI_BOOL(0, "json", struct opts, json,
	     "print a JSON array in the shape of `nix path-info --json` (Nix >= 2.4): one object "
	     "per path with path, narHash (SRI: sha256-<base64>), narSize, references (full "
	     "paths), ca, deriver and signatures only when present, closureSize with -S, and "
	     "storefs's root {type, digest, size, executable, target}. A STOREPATH that is not "
	     "in the store appears as {\"path\": ..., \"valid\": false} and the status is 1."),
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

static int text_one(const struct path_info *pi, const uint64_t *closure)
{
	char full[STORE_PATH_FULL_MAX], hash[NAR_HASH_TEXT_LEN], ca[NIX_CA_TEXT_MAX], sig[256];
	int rc;

	store_path_full(&pi->path, full);
	nar_hash_text(pi->nar_sha256, hash);
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
	if (closure)
		printf("  closure-size: %llu\n", (unsigned long long)*closure);
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
	fputc(']', stdout);
}

static void json_sigs(const struct path_info *pi)
{
	char sig[256];

	if (!pi->n_sigs)
		return;
	fputc(',', stdout);
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

/* "sha256-<base64>", the SRI form Nix >= 2.4 prints. */
static void sri_text(const uint8_t sha256[32], char *out)
{
	memcpy(out, "sha256-", 7);
	base64_encode(sha256, 32, out + 7, BASE64_STD);
}

static void json_optional(const struct path_info *pi, const char *ca)
{
	char full[STORE_PATH_FULL_MAX + 4];

	if (pi->has_ca) {
		fputc(',', stdout);
		json_key(stdout, "ca");
		json_cstring(stdout, ca);
	}
	if (pi->has_deriver) {
		store_path_full(&pi->deriver, full);
		strcat(full, ".drv");
		fputc(',', stdout);
		json_key(stdout, "deriver");
		json_cstring(stdout, full);
	}
	json_sigs(pi);
}

static int json_one(const struct path_info *pi, const uint64_t *closure)
{
	char full[STORE_PATH_FULL_MAX], hash[7 + 44 + 1], ca[NIX_CA_TEXT_MAX];
	int rc = pi->has_ca ? ca_print(pi->ca_type, pi->ca_digest, pi->ca_digest_len, ca) : 0;

	for (size_t i = 0; i < pi->n_sigs && rc == 0; i++)
		if (strlen(pi->sigs[i].name) > 150)
			rc = sf_err(-EINVAL, "signature key name is too long");
	if (rc < 0)
		return rc;
	store_path_full(&pi->path, full);
	sri_text(pi->nar_sha256, hash);
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
	json_optional(pi, ca);
	if (closure) {
		fputc(',', stdout);
		json_key(stdout, "closureSize");
		json_u64(stdout, *closure);
	}
	fputc('}', stdout);
	return 0;
}

static void json_invalid(const char *full)
{
	fputc('{', stdout);
	json_key(stdout, "path");
	json_cstring(stdout, full);
	fputc(',', stdout);
	json_key(stdout, "valid");
	fputs("false}", stdout);
}

/* --- selecting the paths --- */

/* One output entry: a PathInfo (owned), or a path not in the store. */
struct entry {
	char full[STORE_PATH_FULL_MAX];
	struct path_info *pi;
};

struct selection {
	struct path_set found; /* digest -> struct path_info * (owned) */
	struct entry *missing; /* pi NULL */
	size_t n_missing;
};

static void selection_release(struct selection *sel)
{
	digest_map_foreach(&sel->found.map, slot)
	{
		if (slot->value != &closure_seen_mark)
			path_info_free(slot->value);
	}
	path_set_release(&sel->found);
	free(sel->missing);
}

static int note_missing(struct selection *sel, const struct store_path *p)
{
	struct entry *v = realloc(sel->missing, (sel->n_missing + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	sel->missing = v;
	store_path_full(p, v[sel->n_missing].full);
	v[sel->n_missing++].pi = NULL;
	return 0;
}

/* Adds `p` (and with -r its closure). A missing path is an error in text
 * mode and an invalid entry in JSON mode. */
static int select_one(struct store *st, const struct opts *o, struct selection *sel,
		      const struct store_path *p)
{
	struct path_info *pi;
	char full[STORE_PATH_FULL_MAX];
	int rc;

	if (path_set_get(&sel->found, p->digest))
		return 0;
	rc = path_info_service_get(st->paths, p->digest, &pi);
	if (rc == 0 && strcmp(pi->path.name, p->name) != 0) {
		path_info_free(pi);
		rc = -ENOENT;
	}
	if (rc == -ENOENT && o->json)
		return note_missing(sel, p);
	if (rc == -ENOENT) {
		store_path_full(p, full);
		return sf_err(-ENOENT, "'%s' is not in the store", full);
	}
	if (rc < 0)
		return rc;
	rc = path_set_put(&sel->found, p->digest, pi);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	if (o->recursive) {
		long n = closure_walk(st->paths, pi->refs, pi->n_refs, false, true, &sel->found);

		rc = n < 0 ? (int)n : 0;
	}
	return rc;
}

static int select_args(struct store *st, const struct opts *o, char **args, int n,
		       struct selection *sel)
{
	for (int i = 0; i < n; i++) {
		struct store_path p;
		int rc = store_path_parse(args[i], strlen(args[i]), true, &p);

		if (rc == 0)
			rc = select_one(st, o, sel, &p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct all_ctx {
	struct store *st;
	const struct opts *o;
	struct selection *sel;
};

static int select_listed(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct all_ctx *a = ctx;

	(void)cursor;
	return select_one(a->st, a->o, a->sel, &pi->path);
}

/* --- output --- */

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->full, ((const struct entry *)b)->full);
}

/* Every selected path, sorted by path as Nix prints them. */
static int selection_sorted(struct selection *sel, struct entry **out, size_t *n)
{
	struct entry *v = malloc((sel->found.map.count + sel->n_missing + 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	digest_map_foreach(&sel->found.map, slot)
	{
		if (slot->value == &closure_seen_mark)
			continue;
		v[k].pi = slot->value;
		store_path_full(&v[k].pi->path, v[k].full);
		k++;
	}
	if (sel->n_missing)
		memcpy(v + k, sel->missing, sel->n_missing * sizeof(*v));
	k += sel->n_missing;
	qsort(v, k, sizeof(*v), entry_cmp);
	*out = v, *n = k;
	return 0;
}

static int print_entry(struct store *st, const struct opts *o, const struct entry *e)
{
	uint64_t size;
	int rc = 0;

	if (!e->pi) {
		json_invalid(e->full);
		return 0;
	}
	if (o->closure_size)
		rc = closure_size(st->paths, &e->pi->path, &size);
	if (rc < 0)
		return rc;
	if (o->json)
		return json_one(e->pi, o->closure_size ? &size : NULL);
	return text_one(e->pi, o->closure_size ? &size : NULL);
}

static int print_all(struct store *st, const struct opts *o, const struct entry *v, size_t n)
{
	int rc = 0;

	if (o->json)
		putchar('[');
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i)
			fputs(o->json ? "," : "\n", stdout);
		rc = print_entry(st, o, &v[i]);
	}
	if (o->json)
		puts("]");
	return rc;
}

/* --- command --- */

static int run(struct store *st, const struct opts *o, char **args, int n)
{
	struct selection sel = {0};
	struct all_ctx a = {st, o, &sel};
	struct entry *v = NULL;
	size_t count = 0;
	int rc;

	path_set_init(&sel.found);
	rc = o->all ? path_info_service_list(st->paths, 0, select_listed, &a)
		    : select_args(st, o, args, n, &sel);
	if (rc == -ENOTSUP)
		rc = sf_err(rc, "store '%s' cannot list its paths", st->location);
	if (rc == 0)
		rc = selection_sorted(&sel, &v, &count);
	if (rc == 0)
		rc = print_all(st, o, v, count);
	if (rc == 0 && sel.n_missing)
		rc = sf_err(-ENOENT, "'%s' is not in the store", sel.missing[0].full);
	free(v);
	selection_release(&sel);
	return rc;
}

static int path_info_check(struct cli_ctx *c)
{
	const struct opts *o = c->opts;

	if (o->all && c->argc)
		return cli_usage(c->cmd, "--all takes no STOREPATH");
	if (!o->all && !c->argc)
		return cli_usage(c->cmd, "no STOREPATH given");
	return 0;
}

static int path_info_run(struct cli_ctx *c)
{
	return run(c->store, c->opts, c->argv, c->argc);
}

const struct cli_cmd cmd_path_info = {
    .name = "path-info",
    .summary = "show store paths: root node, NAR hash and size, references",
    .operands = "[STOREPATH...]",
    .operand = "STOREPATH",
    .max_operands = -1,
    .about = "Shows what the store records for each STOREPATH (/nix/store/<hash>-<name>\n"
	     "or just <hash>-<name>), sorted by path, each path once:\n"
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
	     "    closure-size: <bytes>                with -S\n"
	     "\n"
	     "Paths are separated by an empty line. If any STOREPATH is not in the\n"
	     "store, nothing is printed on standard output and the status is 1.\n",
    .exit_status = "0 success, 1 error (or a path not in the store), 2 usage error.",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .options = path_info_options,
    .opts_size = sizeof(struct opts),
    .check = path_info_check,
    .run = path_info_run,
};
