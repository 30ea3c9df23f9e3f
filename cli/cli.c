/* cli.c - helpers shared by the storefs subcommands. */
#include "cli/cli.h"
#include "cli/progress.h"

#include "backends/registry.h"
#include "castore/dir_service.h"
#include "common/err.h"
#include "common/io.h"
#include "store/store_gc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* `*url`, or the default location in `buf` for NULL. */
static int resolve_url(const char **url, char *buf, size_t len)
{
	if (!*url) {
		*url = store_default_location(buf, len);
		if (!*url)
			return sf_err(-EINVAL, "no default store location is known; use --store");
	}
	if (!**url)
		return sf_err(-EINVAL, "the store location is empty");
	return 0;
}

int cli_open_services(const char *blobs, const char *dirs, const char *paths, const char *cache,
		      unsigned flags, struct store **out)
{
	char b[PATH_MAX], d[PATH_MAX], p[PATH_MAX];
	struct store_addrs a = {blobs, dirs, paths, cache};
	int rc = resolve_url(&a.blobs, b, sizeof(b));

	if (rc == 0)
		rc = resolve_url(&a.dirs, d, sizeof(d));
	if (rc == 0)
		rc = resolve_url(&a.paths, p, sizeof(p));
	if (rc == 0 && cache && !*cache)
		rc = sf_err(-EINVAL, "the cache directory (--cache) is empty");
	if (rc == 0)
		rc = store_open_services(&a, flags, out);
	if (rc == 0)
		cli_progress_fetches(*out);
	return rc;
}

int cli_open_store(const char *url, unsigned flags, struct store **out)
{
	return cli_open_services(url, url, url, NULL, flags, out);
}

/* --- output --- */

int cli_write_all(int fd, const void *buf, size_t len)
{
	int rc = write_all(fd, buf, len);

	return rc < 0 ? sf_err_sys(-rc, "cannot write to standard output") : 0;
}

int cli_flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return sf_err_sys(errno, "cannot write to standard output");
	return 0;
}

/* --- STOREPATH[/sub/path] --- */

/* Steps from t->node into the child `name`; `upto` is the sub path so far. */
static int resolve_step(struct store *st, struct cli_target *t, const char *name, size_t len,
			size_t upto)
{
	struct directory *d;
	const struct node *n;
	int rc;
	size_t before = upto - len; /* the sub path up to the parent, with '/' */

	if (t->node.kind != NODE_DIRECTORY && before == 0)
		return sf_err(-ENOTDIR, "'%s' is not a directory", t->full);
	if (t->node.kind != NODE_DIRECTORY)
		return sf_err(-ENOTDIR, "'%s/%.*s' is not a directory", t->full, (int)(before - 1),
			      t->sub);
	rc = dir_service_get(st->dirs, &t->node.digest, &d);
	if (rc == -ENOENT)
		return sf_err(-EIO, "a directory of '%s' is missing from the store", t->full);
	if (rc < 0)
		return rc;
	n = directory_find(d, (const uint8_t *)name, len);
	if (!n) {
		directory_free(d);
		return sf_err(-ENOENT, "'%s/%.*s' does not exist", t->full, (int)upto, t->sub);
	}
	t->node = *n;
	directory_free(t->parent);
	t->parent = d;
	return 0;
}

static int resolve_walk(struct store *st, struct cli_target *t)
{
	const char *p = t->sub, *e;

	for (; *p; p = *e ? e + 1 : e) {
		size_t len;
		int rc;

		e = strchrnul(p, '/');
		len = (size_t)(e - p);
		if (len == 0 || (len == 1 && p[0] == '.'))
			continue;
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return sf_err(-EINVAL, "'..' is not allowed in '%s/%s'", t->full, t->sub);
		if (len > CASTORE_MAX_NAME_LEN)
			return sf_err(-ENOENT, "'%s/%.*s' does not exist", t->full,
				      (int)(e - t->sub), t->sub);
		rc = resolve_step(st, t, p, len, (size_t)(e - t->sub));
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cli_resolve(struct store *st, const char *arg, struct cli_target *t)
{
	const char *p = arg, *slash;
	struct store_path sp;
	int rc;

	*t = (struct cli_target){.sub = ""};
	if (!strncmp(p, STORE_DIR "/", sizeof(STORE_DIR)))
		p += sizeof(STORE_DIR);
	else if (p[0] == '/')
		return sf_err(-EINVAL, "'%s' is not in %s", arg, STORE_DIR);
	slash = strchrnul(p, '/');
	rc = store_path_parse_basename(p, (size_t)(slash - p), &sp);
	if (rc < 0)
		return rc;
	store_path_full(&sp, t->full);
	rc = path_info_service_get(st->paths, sp.digest, &t->pi);
	if (rc == 0 && strcmp(t->pi->path.name, sp.name) != 0) {
		path_info_free(t->pi);
		t->pi = NULL;
		rc = -ENOENT;
	}
	if (rc == -ENOENT)
		return sf_err(-ENOENT, "'%s' is not in the store", t->full);
	if (rc < 0)
		return rc;
	t->node = t->pi->root;
	t->sub = *slash ? slash + 1 : "";
	return resolve_walk(st, t);
}

void cli_target_release(struct cli_target *t)
{
	path_info_free(t->pi);
	directory_free(t->parent);
	t->pi = NULL, t->parent = NULL;
}

int cli_print_registered(const struct cli_ctx *c, const struct path_info *pi,
			 enum path_info_put_result res)
{
	char full[STORE_PATH_FULL_MAX];

	store_path_full(&pi->path, full);
	if (c->verbose && res != PATH_INFO_ADDED)
		fprintf(stderr, "storefs %s: '%s' is already registered with this content; %s\n",
			c->cmd->name, full,
			res == PATH_INFO_SIGS_ADDED ? "its new signatures were added"
						    : "nothing changed");
	printf("%s\n", full);
	/* Each path as it is done, for whoever reads the output as it comes. */
	return cli_flush_stdout();
}

int cli_add_root(struct store *st, const char *name, const struct store_path *sp)
{
	int rc = store_root_add(st, name, sp);

	return rc == -ENOTSUP ? sf_err(rc, "store '%s' has no GC roots", st->location) : rc;
}

int cli_store_usage(void *ctx, uint64_t *bytes, uint64_t *objects)
{
	struct store_usage u;
	int rc = store_usage(ctx, &u);

	if (rc < 0) {
		sf_err_clear();
		return rc;
	}
	*bytes = u.blob_bytes;
	*objects = u.objects;
	return 0;
}
