/* cmd_list.c - `storefs list`: every registered store path, sorted.
 *
 * The PathInfo service lists in registration order, so the names are
 * sorted here with bounded memory: runs of RUN_PATHS names are sorted in
 * memory and, when there is more than one run, spilled to unlinked
 * temporary files and merged (an external merge sort, as sort(1) does;
 * written here because no Debian C library offers one). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_PATHS    16384
#define NAME_MAX_LEN (STORE_PATH_MAX_BASENAME + 1)

struct list_opts {
	bool json;
};

static const struct cli_opt list_options[] = {
    CLI_BOOL(0, "json", struct list_opts, json, "print a JSON array of the paths instead"),
    {0},
};

struct sorter {
	char (*run)[NAME_MAX_LEN]; /* RUN_PATHS names */
	size_t n;
	FILE **spills;
	size_t n_spills;
	bool json;
	size_t printed;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int spill(struct sorter *s)
{
	FILE **v = realloc(s->spills, (s->n_spills + 1) * sizeof(*v));
	FILE *f;

	if (!v)
		return -ENOMEM;
	s->spills = v;
	f = tmpfile();
	if (!f)
		return sf_err_sys(errno, "cannot create a temporary file");
	v[s->n_spills++] = f;
	qsort(s->run, s->n, NAME_MAX_LEN, name_cmp);
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%s\n", s->run[i]);
	s->n = 0;
	if (fflush(f) != 0 || ferror(f) || fseek(f, 0, SEEK_SET) != 0)
		return sf_err_sys(errno, "cannot write a temporary file");
	return 0;
}

static int collect(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct sorter *s = ctx;

	(void)cursor;
	if (s->n == RUN_PATHS) {
		int rc = spill(s);

		if (rc < 0)
			return rc;
	}
	store_path_basename(&pi->path, s->run[s->n++]);
	return 0;
}

static void emit(struct sorter *s, const char *basename)
{
	char full[STORE_PATH_FULL_MAX];

	snprintf(full, sizeof(full), STORE_DIR "/%s", basename);
	if (!s->json) {
		puts(full);
	} else {
		fputs(s->printed ? "," : "[", stdout);
		json_cstring(stdout, full);
	}
	s->printed++;
}

/* Reads the next name of spill `i` into `s->run[i]`; "" at its end. */
static int next_of(struct sorter *s, size_t i)
{
	char *line = s->run[i];
	size_t len;

	if (!fgets(line, NAME_MAX_LEN + 1, s->spills[i])) {
		line[0] = '\0';
		return ferror(s->spills[i]) ? sf_err(-EIO, "cannot read a temporary file") : 0;
	}
	len = strlen(line);
	if (!len || line[len - 1] != '\n')
		return sf_err(-EIO, "a temporary file is damaged");
	line[len - 1] = '\0';
	return 0;
}

/* Merges the spills, reusing the run buffer for their current heads. */
static int merge(struct sorter *s)
{
	int rc = 0;

	for (size_t i = 0; i < s->n_spills && rc == 0; i++)
		rc = next_of(s, i);
	while (rc == 0) {
		size_t min = s->n_spills;

		for (size_t i = 0; i < s->n_spills; i++)
			if (s->run[i][0] &&
			    (min == s->n_spills || strcmp(s->run[i], s->run[min]) < 0))
				min = i;
		if (min == s->n_spills)
			break;
		emit(s, s->run[min]);
		rc = next_of(s, min);
	}
	return rc;
}

static int finish(struct sorter *s)
{
	int rc = 0;

	if (s->n_spills == 0) {
		qsort(s->run, s->n, NAME_MAX_LEN, name_cmp);
		for (size_t i = 0; i < s->n; i++)
			emit(s, s->run[i]);
	} else {
		if (s->n)
			rc = spill(s);
		if (rc == 0 && s->n_spills > RUN_PATHS)
			rc =
			    sf_err(-E2BIG, "too many paths to sort (more than %u runs)", RUN_PATHS);
		if (rc == 0)
			rc = merge(s);
	}
	if (rc == 0 && s->json)
		puts(s->printed ? "]" : "[]");
	return rc ? rc : cli_flush_stdout();
}

static int list(struct store *st, bool json)
{
	struct sorter s = {.json = json};
	int rc;

	s.run = malloc(RUN_PATHS * sizeof(*s.run));
	if (!s.run)
		return -ENOMEM;
	rc = path_info_service_list(st->paths, 0, collect, &s);
	if (rc == -ENOTSUP)
		rc = sf_err(rc, "store '%s' cannot list its paths", st->location);
	if (rc == 0)
		rc = finish(&s);
	for (size_t i = 0; i < s.n_spills; i++)
		fclose(s.spills[i]);
	free(s.spills);
	free(s.run);
	return rc;
}

static int list_run(struct cli_ctx *c)
{
	const struct list_opts *o = c->opts;

	return list(c->store, o->json);
}

const struct cli_cmd cmd_list = {
    .name = "list",
    .summary = "list every store path in the store, sorted",
    .about = "Prints every store path registered in the store, one per line\n"
	     "(/nix/store/<hash>-<name>), sorted. Memory use does not grow with the\n"
	     "number of paths (large listings are sorted through temporary files in\n"
	     "$TMPDIR).\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .options = list_options,
    .opts_size = sizeof(struct list_opts),
    .run = list_run,
};
