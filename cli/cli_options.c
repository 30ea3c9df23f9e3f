/* cli_options.c - a command's option tables turned into getopt_long's
 * options, into option values and into its --help text. */
#include "cli/cli.h"

#include "common/err.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH	     79	 /* the columns --help and usage lines fill */
#define LABEL_MAX    20	 /* a longer "--option ARG" gets a line of its own */
#define MAX_OPTIONS  64	 /* a command's options, common ones included */
#define OPT_VAL_BASE 256 /* getopt_long values above every short option */

/* The options cli_cmd.flags ask for; their values live in struct cli_ctx. */
static const struct cli_opt opt_store = CLI_STRING(0, "store", struct cli_ctx, store_url, "URL|DIR",
						   "the store (default: " CLI_DEFAULT_STORE ")");
/* snix-store's names; --store sets all three, each one given wins. */
static const struct cli_opt opt_blob_addr =
    CLI_STRING(0, "blob-service-addr", struct cli_ctx, blob_addr, "URL",
	       "take the blob service from the store at URL (default: --store's)");
static const struct cli_opt opt_dir_addr =
    CLI_STRING(0, "directory-service-addr", struct cli_ctx, dir_addr, "URL",
	       "take the Directory service from the store at URL (default: --store's)");
static const struct cli_opt opt_pi_addr =
    CLI_STRING(0, "path-info-service-addr", struct cli_ctx, pi_addr, "URL",
	       "take the PathInfo service from the store at URL (default: --store's)");
static const struct cli_opt opt_cache =
    CLI_STRING(0, "cache", struct cli_ctx, cache, "DIR",
	       "keep the blobs, Directories and PathInfos read from the store in the local store "
	       "at DIR (created if missing): read there first, a miss fetched, verified and kept, "
	       "so a later run reads them without the store; DIR?cache-size=10G keeps at most "
	       "that many blob bytes, least recently used evicted (docs/services.md)");
static const struct cli_opt opt_wait =
    CLI_BOOL(0, "wait", struct cli_ctx, wait,
	     "if another import holds the store's lock, wait for it instead of failing");
static const struct cli_opt opt_verbose =
    CLI_COUNT('v', "verbose", struct cli_ctx, verbose, "log more on standard error (twice: debug)");
static const struct cli_opt opt_help =
    CLI_BOOL('h', "help", struct cli_ctx, help, "show this help");

/* One option of a command, and whether its value goes to the cli_ctx. */
struct opt_ref {
	const struct cli_opt *o;
	bool common;
};

/* The options of `cmd` in --help order: --store, its own, the other common ones. */
static size_t collect(const struct cli_cmd *cmd, struct opt_ref *refs)
{
	size_t n = 0;

	if (cmd->flags & CLI_STORE) {
		refs[n++] = (struct opt_ref){&opt_store, true};
		refs[n++] = (struct opt_ref){&opt_blob_addr, true};
		refs[n++] = (struct opt_ref){&opt_dir_addr, true};
		refs[n++] = (struct opt_ref){&opt_pi_addr, true};
		refs[n++] = (struct opt_ref){&opt_cache, true};
	}
	for (const struct cli_opt *o = cmd->options; o && o->name; o++) {
		if (n == MAX_OPTIONS - 3) {
			fprintf(stderr, "storefs: BUG: '%s' has too many options\n", cmd->name);
			abort();
		}
		refs[n++] = (struct opt_ref){o, false};
	}
	if (cmd->flags & CLI_WAIT)
		refs[n++] = (struct opt_ref){&opt_wait, true};
	if (cmd->flags & CLI_VERBOSE)
		refs[n++] = (struct opt_ref){&opt_verbose, true};
	refs[n++] = (struct opt_ref){&opt_help, true};
	return n;
}

static bool takes_arg(const struct cli_opt *o)
{
	return o->kind == CLI_OPT_STRING || o->kind == CLI_OPT_UINT || o->kind == CLI_OPT_CHOICE ||
	       o->kind == CLI_OPT_LIST;
}

/* --- words on lines --- */

/* Output filled up to WIDTH columns; continuation lines start at `indent`. */
struct lines {
	FILE *f;
	size_t col, indent;
	bool fresh; /* nothing on this line yet but the indent */
};

static void put_word(struct lines *l, const char *w, size_t len)
{
	if (!l->fresh && l->col + 1 + len > WIDTH) {
		fprintf(l->f, "\n%*s", (int)l->indent, "");
		l->col = l->indent;
	} else if (!l->fresh) {
		fputc(' ', l->f);
		l->col++;
	}
	fwrite(w, 1, len, l->f);
	l->col += len;
	l->fresh = false;
}

static void put_words(struct lines *l, const char *text)
{
	while (*text) {
		size_t len = strcspn(text, " ");

		if (len)
			put_word(l, text, len);
		text += len + (text[len] == ' ');
	}
}

/* The argument of an option as --help shows it ("N", "spec|native"). */
static void arg_text(const struct cli_opt *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (o->arg || o->kind != CLI_OPT_CHOICE) {
		snprintf(buf, len, "%s", o->arg ? o->arg : "");
		return;
	}
	for (const char *const *c = o->choices; *c && n < len; c++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", c == o->choices ? "" : "|", *c);
}

/* "[-v]", "[--name NAME]": the option in the synopsis. */
static void synopsis_word(const struct cli_opt *o, char *buf, size_t len)
{
	const char *open = o->required ? "" : "[", *close = o->required ? "" : "]";
	const char *more = o->kind == CLI_OPT_LIST ? "..." : "";
	char arg[128];

	arg_text(o, arg, sizeof(arg));
	if (o->short_name)
		snprintf(buf, len, "%s-%c%s%s%s%s", open, o->short_name, *arg ? " " : "", arg,
			 close, more);
	else
		snprintf(buf, len, "%s--%s%s%s%s%s", open, o->name, *arg ? " " : "", arg, close,
			 more);
}

void cli_print_synopsis(FILE *f, const struct cli_cmd *cmd)
{
	struct opt_ref refs[MAX_OPTIONS];
	size_t n = collect(cmd, refs);
	struct lines l = {f, 0, 0, false};
	char word[256];

	l.col = (size_t)fprintf(f, "usage: storefs%s%s", cmd->name ? " " : "",
				cmd->name ? cmd->name : "");
	l.indent = l.col + 1;
	for (size_t i = 0; i < n; i++) {
		if (refs[i].o == &opt_help)
			continue;
		synopsis_word(refs[i].o, word, sizeof(word));
		put_word(&l, word, strlen(word));
	}
	if (cmd->operands && *cmd->operands)
		put_words(&l, cmd->operands);
	fputc('\n', f);
}

/* "-n, --name NAME" */
static void label_text(const struct cli_opt *o, char *buf, size_t len)
{
	char arg[128];

	arg_text(o, arg, sizeof(arg));
	if (o->short_name)
		snprintf(buf, len, "-%c, --%s%s%s", o->short_name, o->name, *arg ? " " : "", arg);
	else
		snprintf(buf, len, "--%s%s%s", o->name, *arg ? " " : "", arg);
}

/* The help of option `o` of `cmd`: --store's says how the command opens it. */
static const char *help_text(const struct cli_cmd *cmd, const struct cli_opt *o, char *buf,
			     size_t len)
{
	if (o != &opt_store)
		return o->help;
	snprintf(buf, len, "%s%s%s%s", o->help,
		 cmd->open_flags & STORE_OPEN_CREATE ? "; created if missing" : "",
		 cmd->store_note ? "; " : "", cmd->store_note ? cmd->store_note : "");
	return buf;
}

static void print_option(FILE *f, const struct cli_cmd *cmd, const struct cli_opt *o, size_t col)
{
	char label[192], help[512];
	struct lines l = {f, col, col, true};
	size_t len;

	label_text(o, label, sizeof(label));
	len = (size_t)fprintf(f, "  %s", label);
	if (len + 2 > col)
		fprintf(f, "\n%*s", (int)col, "");
	else
		fprintf(f, "%*s", (int)(col - len), "");
	put_words(&l, help_text(cmd, o, help, sizeof(help)));
	fputc('\n', f);
}

void cli_print_options(FILE *f, const struct cli_cmd *cmd)
{
	struct opt_ref refs[MAX_OPTIONS];
	size_t n = collect(cmd, refs), col = 0;
	char label[192];

	for (size_t i = 0; i < n; i++) {
		label_text(refs[i].o, label, sizeof(label));
		if (strlen(label) <= LABEL_MAX && strlen(label) > col)
			col = strlen(label);
	}
	col += 4; /* two spaces before the label, two after */
	fputs("Options:\n", f);
	for (size_t i = 0; i < n; i++)
		print_option(f, cmd, refs[i].o, col);
}

void cli_print_help(FILE *f, const struct cli_cmd *cmd)
{
	struct lines l = {f, 0, 0, true};

	cli_print_synopsis(f, cmd);
	if (cmd->about)
		fprintf(f, "\n%s", cmd->about);
	fputc('\n', f);
	cli_print_options(f, cmd);
	fprintf(f, "\n%s%s", cmd->notes ? cmd->notes : "", cmd->notes ? "\n" : "");
	put_words(&l, "Exit status:");
	put_words(&l, cmd->exit_status ? cmd->exit_status : "0 success, 1 error, 2 usage error.");
	fputc('\n', f);
}

int cli_help(const struct cli_cmd *cmd)
{
	cli_print_help(stdout, cmd);
	return cli_flush_stdout();
}

int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
{
	const char *name = cmd->name ? cmd->name : "";
	va_list ap;

	fprintf(stderr, "storefs%s%s: ", *name ? " " : "", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_print_synopsis(stderr, cmd);
	fprintf(stderr, "Try 'storefs%s%s --help' for more.\n", *name ? " " : "", name);
	return CLI_USAGE;
}

/* --- parsing --- */

static int parse_uint(const struct cli_cmd *cmd, const struct cli_opt *o, const char *arg,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*arg >= '0' && *arg <= '9' && !errno && !*end && v >= o->min && v <= o->max) {
		*out = v;
		return 0;
	}
	if (o->max == ULLONG_MAX)
		return cli_usage(cmd, "--%s wants a number of at least %llu, not '%s'", o->name,
				 o->min, arg);
	return cli_usage(cmd, "--%s wants a number from %llu to %llu, not '%s'", o->name, o->min,
			 o->max, arg);
}

static int parse_choice(const struct cli_cmd *cmd, const struct cli_opt *o, const char *arg,
			int *out)
{
	char want[256];
	size_t n = 0;
	int i;

	for (i = 0; o->choices[i]; i++) {
		if (!strcmp(o->choices[i], arg)) {
			*out = i;
			return 0;
		}
	}
	/* "'a', 'b' or 'c'" */
	want[0] = '\0';
	for (int k = 0; k < i && n < sizeof(want); k++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%s'%s'",
				      k == 0	   ? ""
				      : k == i - 1 ? " or "
						   : ", ",
				      o->choices[k]);
	return cli_usage(cmd, "--%s wants %s, not '%s'", o->name, want, arg);
}

/* Stores the value of `o` given with `arg`: 0, or CLI_USAGE (reported). */
static int set_value(const struct cli_cmd *cmd, const struct cli_opt *o, void *base,
		     const char *arg)
{
	void *p = (char *)base + o->offset;

	switch (o->kind) {
	case CLI_OPT_BOOL:
		*(bool *)p = true;
		return 0;
	case CLI_OPT_COUNT:
		++*(int *)p;
		return 0;
	case CLI_OPT_STRING:
		*(const char **)p = arg;
		return 0;
	case CLI_OPT_UINT:
		return parse_uint(cmd, o, arg, p);
	case CLI_OPT_CHOICE:
		return parse_choice(cmd, o, arg, p);
	case CLI_OPT_LIST: {
		struct cli_list *l = p;

		if (l->n == CLI_LIST_MAX)
			return cli_usage(cmd, "--%s is given more than %d times", o->name,
					 CLI_LIST_MAX);
		l->v[l->n++] = arg;
		return 0;
	}
	}
	return cli_usage(cmd, "option '--%s' has an unknown kind", o->name);
}

int cli_opt_set(const struct cli_cmd *cmd, const struct cli_opt *o, void *base, const char *arg)
{
	return set_value(cmd, o, base, arg);
}

const struct cli_opt *cli_opt_find(const struct cli_cmd *cmd, const char *name)
{
	for (const struct cli_opt *o = cmd->options; o && o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

bool cli_opt_given(const struct cli_ctx *c, const struct cli_opt *o)
{
	ptrdiff_t i = o - c->cmd->options;

	return i >= 0 && i < 64 && (c->given >> i & 1);
}

static int report_bad_option(const struct cli_cmd *cmd, int ch, char **argv)
{
	/* Long options always advance optind; a bad short one may sit inside
	 * a bundle ("-lZ"), so name it by its character. */
	const char *el = optind > 0 ? argv[optind - 1] : "";
	bool is_long = !strncmp(el, "--", 2);

	if (ch == ':' && is_long)
		return cli_usage(cmd, "option '%s' needs an argument", el);
	if (ch == ':')
		return cli_usage(cmd, "option '-%c' needs an argument", optopt);
	if (is_long)
		return cli_usage(cmd, "unknown option '%s'", el);
	return cli_usage(cmd, "unknown option '-%c'", optopt);
}

/* getopt_long's view of `refs`: long options valued OPT_VAL_BASE + index. */
static void getopt_tables(const struct opt_ref *refs, size_t n, bool stop_at_operand,
			  struct option *longopts, char *shortopts)
{
	char *s = shortopts;

	if (stop_at_operand)
		*s++ = '+';
	/* A leading ':' makes getopt tell a missing argument (':') apart from
	 * an unknown option ('?'). */
	*s++ = ':';
	for (size_t i = 0; i < n; i++) {
		const struct cli_opt *o = refs[i].o;

		longopts[i] =
		    (struct option){o->name, takes_arg(o) ? required_argument : no_argument, NULL,
				    OPT_VAL_BASE + (int)i};
		if (o->short_name) {
			*s++ = o->short_name;
			if (takes_arg(o))
				*s++ = ':';
		}
	}
	longopts[n] = (struct option){0};
	*s = '\0';
}

static const struct opt_ref *find_ref(const struct opt_ref *refs, size_t n, int ch)
{
	if (ch >= OPT_VAL_BASE && (size_t)(ch - OPT_VAL_BASE) < n)
		return &refs[ch - OPT_VAL_BASE];
	for (size_t i = 0; i < n; i++)
		if (refs[i].o->short_name == ch)
			return &refs[i];
	return NULL;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, bool stop_at_operand,
	      struct cli_ctx *c)
{
	struct opt_ref refs[MAX_OPTIONS];
	struct option longopts[MAX_OPTIONS + 1];
	char shortopts[3 * MAX_OPTIONS + 3];
	size_t n = collect(cmd, refs);
	bool given[MAX_OPTIONS] = {0};
	const struct opt_ref *r;
	int ch, rc;

	getopt_tables(refs, n, stop_at_operand, longopts, shortopts);
	opterr = 0;
	optind = 0; /* GNU getopt: start again, and read shortopts' '+' again */
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch == '?' || ch == ':')
			return report_bad_option(cmd, ch, argv);
		r = find_ref(refs, n, ch);
		if (!r)
			return cli_usage(cmd, "unknown option '-%c'", ch);
		/* One value each (lists take many): a second would silently win
		 * over the first. */
		if (takes_arg(r->o) && r->o->kind != CLI_OPT_LIST && given[r - refs])
			return cli_usage(cmd, "option '--%s' given twice (it takes one value)",
					 r->o->name);
		given[r - refs] = true;
		rc = set_value(cmd, r->o, r->common ? (void *)c : c->opts, optarg);
		if (!r->common && r->o - cmd->options < 64)
			c->given |= 1ull << (r->o - cmd->options);
		if (rc || c->help)
			return rc;
	}
	c->argc = argc - optind;
	c->argv = argv + optind;
	return 0;
}
