/* config.c - the configuration file (see config.h). */
#include "cli/config.h"

#include "cli/commands.h"
#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* The store options a file may set, and where each goes in cli_ctx. */
static const struct {
	const char *key;
	size_t offset;
} store_keys[] = {
    {"store", offsetof(struct cli_ctx, store_url)},
    {"blob-service-addr", offsetof(struct cli_ctx, blob_addr)},
    {"directory-service-addr", offsetof(struct cli_ctx, dir_addr)},
    {"path-info-service-addr", offsetof(struct cli_ctx, pi_addr)},
    {"cache", offsetof(struct cli_ctx, cache)},
};

#define N_STORE_KEYS (sizeof(store_keys) / sizeof(store_keys[0]))

void cli_config_release(struct cli_config *cfg)
{
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->v[i].key);
		free(cfg->v[i].value);
	}
	free(cfg->v);
	free(cfg->path);
	*cfg = (struct cli_config){0};
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static bool bool_value(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
										    "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return true;
		}
	}
	return false;
}

/* Whether `v` is a value option `o` takes; `why` says what it wants. */
static bool value_ok(const struct cli_opt *o, const char *v, char *why, size_t len)
{
	unsigned long long n;
	char *end;
	bool b;

	switch (o->kind) {
	case CLI_OPT_BOOL:
		snprintf(why, len, "true or false");
		return bool_value(v, &b);
	case CLI_OPT_STRING:
	case CLI_OPT_LIST: /* one value from a file */
		snprintf(why, len, "a value");
		return *v != '\0';
	case CLI_OPT_UINT:
		snprintf(why, len, "a number from %llu to %llu", o->min, o->max);
		errno = 0;
		n = strtoull(v, &end, 10);
		return isdigit((unsigned char)*v) && !errno && !*end && n >= o->min && n <= o->max;
	case CLI_OPT_CHOICE:
		snprintf(why, len, "one of the choices in 'storefs --help'");
		for (const char *const *c = o->choices; *c; c++)
			if (!strcmp(*c, v))
				return true;
		return false;
	case CLI_OPT_COUNT:
		break;
	}
	snprintf(why, len, "nothing: it cannot be set in a file");
	return false;
}

/* "mount.threads": the command and its own option. */
static int command_key(const char *path, unsigned line, struct cli_config_entry *e)
{
	const char *dot = strchr(e->key, '.');
	char name[64], why[160];

	if (!dot || (size_t)(dot - e->key) >= sizeof(name))
		return sf_err(-EINVAL, "%s:%u: unknown key '%s'", path, line, e->key);
	snprintf(name, sizeof(name), "%.*s", (int)(dot - e->key), e->key);
	e->cmd = cli_command_find(name);
	if (!e->cmd)
		return sf_err(-EINVAL, "%s:%u: unknown command '%s' in key '%s'", path, line, name,
			      e->key);
	e->opt = cli_opt_find(e->cmd, dot + 1);
	if (!e->opt)
		return sf_err(-EINVAL, "%s:%u: 'storefs %s' has no option '--%s'", path, line, name,
			      dot + 1);
	if (!value_ok(e->opt, e->value, why, sizeof(why)))
		return sf_err(-EINVAL, "%s:%u: %s wants %s, not '%s'", path, line, e->key, why,
			      e->value);
	return 0;
}

static bool is_store_key(const char *key)
{
	for (size_t i = 0; i < N_STORE_KEYS; i++)
		if (!strcmp(store_keys[i].key, key))
			return true;
	return false;
}

/* One line of the file: 0 (a setting added, or nothing to add) or an error. */
static int parse_line(struct cli_config *cfg, char *text, unsigned line)
{
	char *eq, *key, *value;
	struct cli_config_entry *e, *v;

	text = trim(text);
	if (!*text || *text == '#')
		return 0;
	eq = strchr(text, '=');
	if (!eq)
		return sf_err(-EINVAL, "%s:%u: expected 'key = value', not '%s'", cfg->path, line,
			      text);
	*eq = '\0';
	key = trim(text);
	value = trim(eq + 1);
	if (!*key || !*value)
		return sf_err(-EINVAL, "%s:%u: expected 'key = value' with both", cfg->path, line);
	for (size_t i = 0; i < cfg->n; i++)
		if (!strcmp(cfg->v[i].key, key))
			return sf_err(-EINVAL, "%s:%u: '%s' is set already on line %u", cfg->path,
				      line, key, cfg->v[i].line);
	v = realloc(cfg->v, (cfg->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cfg->v = v;
	e = &v[cfg->n];
	*e = (struct cli_config_entry){.key = strdup(key), .value = strdup(value), .line = line};
	if (!e->key || !e->value) {
		free(e->key);
		free(e->value);
		return -ENOMEM;
	}
	cfg->n++;
	return is_store_key(key) ? 0 : command_key(cfg->path, line, e);
}

static int parse_file(struct cli_config *cfg, FILE *f)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned line = 0;
	int rc = 0;

	errno = 0;
	while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
		line++;
		if (strlen(buf) != (size_t)len)
			rc = sf_err(-EINVAL, "%s:%u: a NUL byte", cfg->path, line);
		else
			rc = parse_line(cfg, buf, line);
	}
	if (rc == 0 && ferror(f))
		rc = sf_err_sys(errno ? errno : EIO, "cannot read '%s'", cfg->path);
	free(buf);
	return rc;
}

/* The file to read: `*path`, or where the environment or the default says. */
static int choose(const char **path, bool *required)
{
	const char *env = getenv("STOREFS_CONFIG");

	*required = true;
	if (*path)
		return *path[0] ? 0 : sf_err(-EINVAL, "--config names no file");
	if (env && *env) {
		*path = env;
		return 0;
	}
	*path = CLI_CONFIG_DEFAULT;
	*required = false;
	return 0;
}

int cli_config_load(const char *path, struct cli_config *out)
{
	bool required;
	FILE *f;
	int rc = choose(&path, &required);

	*out = (struct cli_config){0};
	if (rc < 0)
		return rc;
	f = fopen(path, "re");
	if (!f && errno == ENOENT && !required)
		return 0;
	if (!f)
		return sf_err_sys(errno, "cannot read configuration file '%s'", path);
	out->path = strdup(path);
	rc = out->path ? parse_file(out, f) : -ENOMEM;
	fclose(f);
	if (rc < 0)
		cli_config_release(out);
	return rc;
}

static void apply_store_key(const struct cli_config_entry *e, struct cli_ctx *c)
{
	for (size_t i = 0; i < N_STORE_KEYS; i++) {
		const char **field = (const char **)((char *)c + store_keys[i].offset);

		if (!strcmp(store_keys[i].key, e->key) && !*field)
			*field = e->value;
	}
}

void cli_config_apply(const struct cli_config *cfg, struct cli_ctx *c)
{
	/* --store on the command line names all three services: the file's
	 * addresses give way to it as a whole (its cache stays). */
	bool store_given = c->store_url != NULL, b;

	for (size_t i = 0; cfg && i < cfg->n; i++) {
		const struct cli_config_entry *e = &cfg->v[i];

		if (!e->cmd && (c->cmd->flags & CLI_STORE) &&
		    (!store_given || !strcmp(e->key, "cache")))
			apply_store_key(e, c);
		if (e->cmd != c->cmd || cli_opt_given(c, e->opt))
			continue;
		/* Checked when read: only "false" is not set. */
		if (e->opt->kind != CLI_OPT_BOOL || (bool_value(e->value, &b) && b))
			cli_opt_set(c->cmd, e->opt, c->opts, e->value);
	}
}
