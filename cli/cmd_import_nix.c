/* cmd_import_nix.c - `storefs import-nix`: copy store paths, with their
 * metadata, from a local Nix store (through nix-bin's own commands). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "store/nar_load.h"
#include "common/err.h"
#include "common/io.h"
#include "store/nix_hash.h"
#include "store/signing.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct import_nix_opts {
	const char *nix_store;
	bool recursive;
};

static const struct cli_opt import_nix_options[] = {
    CLI_STRING(0, "nix-store", struct import_nix_opts, nix_store, "DIR",
	       "read from the Nix chroot store rooted at DIR (as with `nix --store DIR`; files "
	       "under DIR/nix/store) instead of the system's /nix/store (which must then exist)"),
    CLI_BOOL('r', "recursive", struct import_nix_opts, recursive,
	     "import the whole closure, references first"),
    {0},
};

#define JSON_MAX (256u << 20)

/* One path as `nix path-info --json` describes it. */
struct nix_path {
	struct path_info *pi;
	bool done, visiting;
};

struct import_nix {
	const struct cli_ctx *c;
	struct store *st;
	const char *nix_store; /* chroot root or NULL */
	struct nix_path *paths;
	size_t n;
	/* The progress line: paths done of n, NAR bytes read before this
	 * path's and of it. */
	struct cli_progress prog;
	size_t done;
	uint64_t bytes, path_bytes;
};

static void show(void *ctx, uint64_t path_bytes)
{
	struct import_nix *im = ctx;

	im->path_bytes = path_bytes;
	cli_progress_draw(&im->prog, "import-nix: %zu of %zu paths, %.1f MiB", im->done, im->n,
			  (double)(im->bytes + path_bytes) / (1024.0 * 1024.0));
}

/* --- running Nix --- */

/* Starts `argv` with its stdout on a pipe whose read end is *out_fd. */
static int spawn_reader(char *const argv[], pid_t *pid, int *out_fd)
{
	posix_spawn_file_actions_t fa;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return sf_err_sys(errno, "cannot create a pipe");
	rc = posix_spawn_file_actions_init(&fa);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	if (rc == 0)
		rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return sf_err(-rc, "cannot run '%s': %s", argv[0], strerror(rc));
	}
	*out_fd = p[0];
	return 0;
}

/* Waits for `pid`; a failure is -EIO naming `what`. */
static int reap(pid_t pid, const char *what)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return sf_err_sys(errno, "cannot wait for '%s'", what);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return sf_err(-EIO, "'%s' failed (status %d)", what,
		      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static int read_all(int fd, char **out, size_t *out_len)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap), *nb;
	ssize_t n;

	while (buf) {
		if (len + 1 == cap) {
			nb = cap < JSON_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb, cap *= 2;
		}
		n = read_retry(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			free(buf);
			return sf_err_sys((int)-n, "cannot read from 'nix path-info'");
		}
		if (n == 0) {
			buf[len] = '\0';
			*out = buf, *out_len = len;
			return 0;
		}
		len += (size_t)n;
	}
	free(buf);
	return cap >= JSON_MAX ? sf_err(-E2BIG, "'nix path-info' wrote too much") : -ENOMEM;
}

/* Runs `nix path-info --json [--store DIR] [-r] PATHS...` and returns its output. */
static int nix_path_info(const struct import_nix *im, bool recursive, char **paths, int n,
			 char **out)
{
	char **argv = malloc((13 + (size_t)n) * sizeof(*argv));
	int a = 0, fd, rc, rc2;
	size_t len;
	pid_t pid;

	if (!argv)
		return -ENOMEM;
	argv[a++] = "nix";
	argv[a++] = "--extra-experimental-features";
	argv[a++] = "nix-command";
	/* Offline and without substituters: only the named store is read
	 * (docs/trust.md "import-nix"). */
	argv[a++] = "--offline";
	argv[a++] = "--option";
	argv[a++] = "substituters";
	argv[a++] = "";
	argv[a++] = "path-info";
	argv[a++] = "--json";
	if (im->nix_store) {
		argv[a++] = "--store";
		argv[a++] = (char *)im->nix_store;
	}
	if (recursive)
		argv[a++] = "--recursive";
	for (int i = 0; i < n; i++)
		argv[a++] = paths[i];
	argv[a] = NULL;
	rc = spawn_reader(argv, &pid, &fd);
	free(argv);
	if (rc < 0)
		return rc;
	rc = read_all(fd, out, &len);
	close(fd);
	rc2 = reap(pid, "nix path-info");
	if (rc == 0 && rc2 < 0)
		free(*out);
	return rc < 0 ? rc : rc2;
}

/* --- before Nix runs: what it is given must exist --- */

/* The store Nix would read must be there: running Nix against a missing one
 * creates it (and for the host, /nix). */
static int nix_store_check(const struct import_nix *im)
{
	const char *root = im->nix_store ? im->nix_store : "";
	char db[PATH_MAX];
	struct stat sb;

	if (snprintf(db, sizeof(db), "%s/nix/var/nix/db/db.sqlite", root) >= (int)sizeof(db))
		return sf_err(-ENAMETOOLONG, "--nix-store '%s' is too long", root);
	if (stat(db, &sb) == 0 && S_ISREG(sb.st_mode))
		return 0;
	if (!im->nix_store)
		return sf_err(-ENOENT,
			      "there is no Nix store at /nix (no %s); name a chroot store "
			      "with --nix-store DIR",
			      db);
	return sf_err(-ENOENT, "there is no Nix store at '%s' (no %s)", root, db);
}

/* Each argument must be a store path in that store, as its full path;
 * anything else would reach Nix as a flake reference. */
static int nix_path_arg(const struct import_nix *im, const char *arg, char *full)
{
	char phys[PATH_MAX];
	struct store_path sp;
	struct stat sb;

	if (store_path_parse(arg, strlen(arg), true, &sp) < 0)
		return sf_err(-EINVAL, "'%s' is not a store path (/nix/store/<hash>-<name>)", arg);
	store_path_full(&sp, full);
	if (snprintf(phys, sizeof(phys), "%s%s", im->nix_store ? im->nix_store : "", full) >=
	    (int)sizeof(phys))
		return sf_err(-ENAMETOOLONG, "--nix-store '%s' is too long", im->nix_store);
	if (lstat(phys, &sb) < 0)
		return sf_err(-ENOENT, "'%s' is not in the Nix store at '%s'", full,
			      im->nix_store ? im->nix_store : "/nix");
	return 0;
}

/* The full store paths of `args` (one malloc'd block), checked. */
static int nix_paths(const struct import_nix *im, char **args, int n, char ***out)
{
	char **v = malloc((size_t)n * (sizeof(char *) + STORE_PATH_FULL_MAX));
	int rc = v ? nix_store_check(im) : -ENOMEM;

	for (int i = 0; rc == 0 && i < n; i++) {
		v[i] = (char *)(v + n) + (size_t)i * STORE_PATH_FULL_MAX;
		rc = nix_path_arg(im, args[i], v[i]);
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* --- the JSON --- */

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_refs(struct path_info *pi, const cJSON *o, const char *full)
{
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(o, "references"), *r;
	struct store_path sp;
	int rc;

	if (!cJSON_IsArray(refs))
		return sf_err(-EINVAL, "nix path-info gave no references for '%s'", full);
	cJSON_ArrayForEach(r, refs)
	{
		if (!cJSON_IsString(r))
			return sf_err(-EINVAL, "nix path-info gave a bad reference for '%s'", full);
		rc = store_path_parse(r->valuestring, strlen(r->valuestring), false, &sp);
		if (rc == 0)
			rc = path_info_add_ref(pi, &sp);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_sigs(struct path_info *pi, const cJSON *o, const char *full)
{
	const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(o, "signatures"), *s;
	struct path_signature sig;
	int rc;

	if (!sigs)
		return 0;
	if (!cJSON_IsArray(sigs))
		return sf_err(-EINVAL, "nix path-info gave bad signatures for '%s'", full);
	cJSON_ArrayForEach(s, sigs)
	{
		if (!cJSON_IsString(s))
			return sf_err(-EINVAL, "nix path-info gave a bad signature for '%s'", full);
		rc = signing_sig_parse(s->valuestring, strlen(s->valuestring), &sig);
		if (rc < 0)
			return rc;
		rc = path_info_add_sig(pi, sig.name, sig.data);
		free(sig.name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_deriver(struct path_info *pi, const char *drv)
{
	size_t len;
	int rc;

	if (!drv)
		return 0;
	rc = store_path_parse(drv, strlen(drv), false, &pi->deriver);
	if (rc < 0)
		return rc;
	len = strlen(pi->deriver.name);
	if (len <= 4 || strcmp(pi->deriver.name + len - 4, ".drv"))
		return sf_err(-EINVAL, "deriver '%s' is not a .drv path", drv);
	pi->deriver.name[len - 4] = '\0';
	pi->has_deriver = true;
	return 0;
}

static int parse_nar(struct path_info *pi, const cJSON *o, const char *full)
{
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "narSize");
	const char *hash = json_str(o, "narHash");

	if (!hash || !cJSON_IsNumber(size) || size->valuedouble < 1 ||
	    size->valuedouble > 9007199254740992.0 ||
	    size->valuedouble != (double)(uint64_t)size->valuedouble)
		return sf_err(-EINVAL, "nix path-info gave no valid narHash/narSize for '%s'",
			      full);
	pi->nar_size = (uint64_t)size->valuedouble;
	return nar_hash_parse(hash, pi->nar_sha256);
}

static int parse_entry(const cJSON *o, struct path_info *pi)
{
	const cJSON *valid = cJSON_GetObjectItemCaseSensitive(o, "valid");
	const char *full = json_str(o, "path"), *ca = json_str(o, "ca");
	int rc;

	if (!full)
		return sf_err(-EINVAL, "nix path-info gave an entry without a path");
	if (cJSON_IsFalse(valid))
		return sf_err(-ENOENT, "'%s' is not a valid path in the Nix store", full);
	rc = store_path_parse(full, strlen(full), false, &pi->path);
	if (rc == 0)
		rc = parse_nar(pi, o, full);
	if (rc == 0)
		rc = parse_refs(pi, o, full);
	if (rc == 0)
		rc = parse_sigs(pi, o, full);
	if (rc == 0)
		rc = parse_deriver(pi, json_str(o, "deriver"));
	if (rc == 0 && ca) {
		rc = ca_parse(ca, strlen(ca), &pi->ca_type, pi->ca_digest, &pi->ca_digest_len);
		pi->has_ca = rc == 0;
	}
	return rc;
}

static int parse_json(struct import_nix *im, const char *text)
{
	cJSON *arr = cJSON_Parse(text), *o;
	int rc = 0, n;

	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return sf_err(-EINVAL, "cannot parse the output of 'nix path-info --json'");
	}
	n = cJSON_GetArraySize(arr);
	im->paths = calloc(n ? (size_t)n : 1, sizeof(*im->paths));
	if (!im->paths)
		rc = -ENOMEM;
	cJSON_ArrayForEach(o, arr)
	{
		struct nix_path *p = &im->paths[im->n];

		if (rc == 0)
			rc = path_info_new(&p->pi);
		if (rc < 0)
			break;
		im->n++;
		rc = parse_entry(o, p->pi);
	}
	cJSON_Delete(arr);
	return rc;
}

/* --- importing --- */

/* 1 if the store has `pi` with the same NAR already (then pi's root is set
 * to the registered one), 0 if not; -EEXIST (naming both NAR hashes) if it
 * has the path with other content, which would be refused anyway. */
static int already_present(struct store *st, struct path_info *pi)
{
	enum path_info_put_result res;
	struct path_info *have;
	int rc = path_info_service_get(st->paths, pi->path.digest, &have);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = path_info_set_root(pi, &have->root);
	if (rc == 0)
		rc = path_info_merge(have, pi, &res);
	path_info_free(have);
	return rc < 0 ? rc : 1;
}

static int dump_and_load(struct import_nix *im, struct store_write *w, struct path_info *pi,
			 struct nar_loaded *l)
{
	char full[STORE_PATH_FULL_MAX], *phys;
	struct nar_summary expect = {.size = pi->nar_size};
	char *argv[] = {"nix-store", "--dump", NULL, NULL};
	struct cli_progress_reader rd = {.show = show, .ctx = im};
	int fd, rc, rc2;
	pid_t pid;

	store_path_full(&pi->path, full);
	if (asprintf(&phys, "%s%s", im->nix_store ? im->nix_store : "", full) < 0)
		return -ENOMEM;
	argv[2] = phys;
	memcpy(expect.sha256, pi->nar_sha256, 32);
	rc = spawn_reader(argv, &pid, &fd);
	free(phys);
	if (rc < 0)
		return rc;
	rd.fd = fd;
	rc = nar_load_read(im->st, w, cli_progress_read, &rd, &expect, NULL, l);
	close(fd);
	rc2 = reap(pid, "nix-store --dump");
	if (rc == -EIO)
		return sf_err(-EIO, "the NAR of '%s' does not match its recorded hash and size",
			      full);
	return rc < 0 ? rc : rc2;
}

/* Checked before the NAR is read, with a hint in the message. */
static int check_refs(struct import_nix *im, const struct path_info *pi)
{
	char msg[512];
	int rc = nar_load_check_refs(im->st, pi);

	if (rc != -ENOENT)
		return rc;
	snprintf(msg, sizeof(msg), "%s", sf_errmsg(rc));
	return sf_err(rc, "%s (-r imports the closure)", msg);
}

/* Reads the NAR from Nix and registers the path. */
static int load_one(struct import_nix *im, struct path_info *pi, enum path_info_put_result *res)
{
	char full[STORE_PATH_FULL_MAX];
	struct store_write *w = NULL;
	struct nar_loaded *l;
	int rc = check_refs(im, pi);

	l = rc == 0 ? malloc(sizeof(*l)) : NULL;
	if (!l)
		return rc < 0 ? rc : -ENOMEM;
	rc = store_write_begin(im->st, &w);
	if (rc == 0)
		rc = dump_and_load(im, w, pi, l);
	if (rc == 0)
		rc = path_info_set_root(pi, &l->root);
	if (rc == 0)
		rc = nar_load_register(im->st, pi, res);
	store_path_full(&pi->path, full);
	if (w)
		store_write_finish(w, rc, full);
	free(l);
	return rc;
}

static int import_one(struct import_nix *im, struct path_info *pi)
{
	enum path_info_put_result res = PATH_INFO_ADDED;
	int rc = already_present(im->st, pi);

	/* Present with the same NAR: not read again; new signatures merge. */
	if (rc > 0)
		rc = path_info_service_register(im->st->paths, pi, &res);
	else if (rc == 0)
		rc = load_one(im, pi, &res);
	im->done++;
	im->bytes += im->path_bytes;
	im->path_bytes = 0;
	cli_progress_done(&im->prog);
	if (rc == 0)
		rc = cli_print_registered(im->c, pi, res);
	if (rc == 0)
		show(im, 0);
	return rc;
}

static struct nix_path *find_path(struct import_nix *im, const struct store_path *sp)
{
	for (size_t i = 0; i < im->n; i++)
		if (!store_path_cmp(&im->paths[i].pi->path, sp))
			return &im->paths[i];
	return NULL;
}

/* Depth first: references before referrers (Nix forbids cycles other
 * than self references, which are skipped). */
static int import_visit(struct import_nix *im, struct nix_path *p, unsigned depth)
{
	int rc;

	if (p->done)
		return 0;
	if (p->visiting || depth > 100000)
		return sf_err(-ELOOP, "the references of '%s' form a cycle", p->pi->path.name);
	p->visiting = true;
	for (size_t i = 0; i < p->pi->n_refs; i++) {
		struct nix_path *r = find_path(im, &p->pi->refs[i]);

		if (!r || r == p)
			continue;
		rc = import_visit(im, r, depth + 1);
		if (rc < 0)
			return rc;
	}
	p->visiting = false;
	p->done = true;
	return import_one(im, p->pi);
}

static int import_nix(struct import_nix *im, bool recursive, char **paths, int n)
{
	char *json = NULL;
	int rc = nix_path_info(im, recursive, paths, n, &json);

	if (rc < 0)
		return rc;
	rc = parse_json(im, json);
	free(json);
	cli_progress_init(&im->prog);
	for (size_t i = 0; rc == 0 && i < im->n; i++)
		rc = import_visit(im, &im->paths[i], 0);
	cli_progress_done(&im->prog);
	return rc;
}

static void import_nix_release(struct import_nix *im)
{
	for (size_t i = 0; i < im->n; i++)
		path_info_free(im->paths[i].pi);
	free(im->paths);
}

/* Before the store is opened (a bad argument must not create it). */
static int import_nix_check(struct cli_ctx *c)
{
	const struct import_nix_opts *o = c->opts;
	struct import_nix im = {.nix_store = o->nix_store};
	char **paths = NULL;
	int rc;

	if (o->nix_store && !*o->nix_store)
		return cli_usage(c->cmd, "--nix-store needs a directory");
	rc = nix_paths(&im, c->argv, c->argc, &paths);
	free(paths);
	return rc;
}

static int import_nix_run(struct cli_ctx *c)
{
	const struct import_nix_opts *o = c->opts;
	struct import_nix im = {.c = c, .st = c->store, .nix_store = o->nix_store};
	char **paths = NULL;
	int rc = nix_paths(&im, c->argv, c->argc, &paths);

	if (rc == 0)
		rc = import_nix(&im, o->recursive, paths, c->argc);
	free(paths);
	import_nix_release(&im);
	return rc;
}

const struct cli_cmd cmd_import_nix = {
    .name = "import-nix",
    .summary = "copy store paths from a local Nix store",
    .operands = "STOREPATH...",
    .operand = "STOREPATH",
    .min_operands = 1,
    .max_operands = -1,
    .about = "Copies STOREPATHs from a local Nix store into the store, with their\n"
	     "references, signatures, deriver, CA, NAR hash and size, as `nix path-info\n"
	     "--json` reports them; the contents come from `nix-store --dump` and must\n"
	     "match the recorded NAR hash and size. Prints each imported store path.\n"
	     "A path's references must be in the store already, be imported in the same\n"
	     "run, or -r must be given. Paths already present with the same NAR hash are\n"
	     "not read again (their new signatures are added; -v says so); a path present\n"
	     "with another NAR hash is refused (a registered path never changes). A\n"
	     "claimed CA is checked against the contents. `nix` and `nix-store` are run\n"
	     "from $PATH, offline and without substituters: only the named Nix store is\n"
	     "read, and it must exist (its nix/var/nix/db/db.sqlite), or nothing is run;\n"
	     "each STOREPATH must be a store path present in it.\n",
    .notes = "A progress line (paths done of all, NAR bytes read) is shown on standard\n"
	     "error when it is a terminal.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE | CLI_WAIT | CLI_VERBOSE,
    .open_flags = STORE_OPEN_CREATE | STORE_OPEN_IMPORT,
    .options = import_nix_options,
    .opts_size = sizeof(struct import_nix_opts),
    .check = import_nix_check,
    .run = import_nix_run,
};
