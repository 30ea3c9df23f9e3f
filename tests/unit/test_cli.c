/* test_cli.c - the CLI's tables (cli/commands.c, cli/cli.h): every command's
 * options are well formed and fit --help, option values are parsed and
 * refused as the tables say, and storefs's own options reach the command. */
#include "harness.h"

#include "cli/cli.h"
#include "cli/commands.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- helpers --- */

/* Runs cli_main() with stdout and stderr in files; stderr's text in `err`. */
static int run_main(char *err, size_t errlen, int argc, char **argv)
{
	char out_path[] = "/tmp/storefs-test-cli-out.XXXXXX";
	char err_path[] = "/tmp/storefs-test-cli-err.XXXXXX";
	int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO), rc;
	ssize_t n;

	fflush(stdout);
	fflush(stderr);
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	rc = cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	n = pread(err_fd, err, errlen - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(saved_out);
	close(saved_err);
	close(out_fd);
	close(err_fd);
	unlink(out_path);
	unlink(err_path);
	return rc;
}

#define RUN(err, ...)                                                                              \
	run_main(err, sizeof(err), (int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)),        \
		 (char *[]){__VA_ARGS__, NULL})

/* The --help of `cmd` in `buf` (for the top level: synopsis and options). */
static bool help_text(const struct cli_cmd *cmd, char **buf)
{
	size_t len;
	FILE *f = open_memstream(buf, &len);

	if (!f)
		return false;
	if (cmd->name) {
		cli_print_help(f, cmd);
	} else {
		cli_print_synopsis(f, cmd);
		cli_print_options(f, cmd);
	}
	return fclose(f) == 0;
}

static const struct cli_cmd *all_cmd(size_t i)
{
	return i < cli_n_commands ? cli_commands[i] : &cli_top;
}

/* --- the tables --- */

/* No two options of a command share a long name or a letter, counting the
 * common ones (--store, --wait, -v, -h) its flags add. */
TEST(cli_options_are_unique)
{
	for (size_t i = 0; i <= cli_n_commands; i++) {
		const struct cli_cmd *cmd = all_cmd(i);
		char *help = NULL;

		CHECK(help_text(cmd, &help));
		for (const struct cli_opt *o = cmd->options; o && o->name; o++) {
			char label[80];
			const char *list = strstr(help, "Options:");

			snprintf(label, sizeof(label), "--%s", o->name);
			CHECK_MSG(list && strstr(list, label), "%s: --%s is not in --help",
				  cmd->name, o->name);
			for (const struct cli_opt *p = o + 1; p->name; p++) {
				CHECK_MSG(strcmp(o->name, p->name) != 0, "%s: --%s twice",
					  cmd->name, o->name);
				CHECK_MSG(!o->short_name || o->short_name != p->short_name,
					  "%s: -%c twice", cmd->name, o->short_name);
			}
			CHECK_MSG(strcmp(o->name, "store") && strcmp(o->name, "help") &&
				      strcmp(o->name, "wait") && strcmp(o->name, "verbose"),
				  "%s: --%s is a common option (use the command's flags)",
				  cmd->name, o->name);
			CHECK_MSG(o->short_name != 'h' && o->short_name != 'v',
				  "%s: -%c is a common option", cmd->name, o->short_name);
			CHECK_MSG(o->help && *o->help, "%s: --%s has no help", cmd->name, o->name);
		}
		free(help);
	}
}

/* Every line of every --help fits 79 columns, and every command is
 * described. */
TEST(cli_help_fits)
{
	for (size_t i = 0; i <= cli_n_commands; i++) {
		const struct cli_cmd *cmd = all_cmd(i);
		char *help = NULL, *line, *save = NULL;

		CHECK(help_text(cmd, &help));
		for (line = strtok_r(help, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			CHECK_MSG(strlen(line) <= 79, "%s: a line of %zu columns: %s",
				  cmd->name ? cmd->name : "storefs", strlen(line), line);
		free(help);
		if (cmd == &cli_top)
			continue;
		CHECK_MSG(cmd->summary && cmd->about && cmd->run, "%s is not described", cmd->name);
		CHECK_MSG(cmd->max_operands < 0 || cmd->min_operands <= cmd->max_operands,
			  "%s: operand counts", cmd->name);
		CHECK_MSG(!(cmd->flags & CLI_OPENS_STORE) || (cmd->flags & CLI_STORE),
			  "%s opens a store it has no --store for", cmd->name);
	}
}

/* --- parsing against a table --- */

struct demo_opts {
	bool flag;
	int count, choice;
	const char *text;
	unsigned long long number;
};

static const char *const demo_choices[] = {"zero", "one", "two", NULL};

static const struct cli_opt demo_options[] = {
    CLI_BOOL('f', "flag", struct demo_opts, flag, "a flag"),
    CLI_COUNT('c', "count", struct demo_opts, count, "counted"),
    CLI_STRING('t', "text", struct demo_opts, text, "TEXT", "a string"),
    CLI_UINT(0, "number", struct demo_opts, number, "N", 2, 10, "a number"),
    CLI_CHOICE(0, "choice", struct demo_opts, choice, demo_choices, "a choice"),
    {0},
};

static const struct cli_cmd demo = {
    .name = "demo",
    .summary = "a command for tests",
    .operands = "ARG...",
    .flags = CLI_STORE | CLI_WAIT,
    .options = demo_options,
    .opts_size = sizeof(struct demo_opts),
};

/* Parses argv (after "demo") into a fresh demo_opts; the parse result. */
static int parse(struct demo_opts *o, struct cli_ctx *c, int argc, char **argv)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY), rc;

	*o = (struct demo_opts){0};
	*c = (struct cli_ctx){.cmd = &demo, .opts = o};
	dup2(null, STDERR_FILENO); /* usage errors are printed */
	rc = cli_parse(&demo, argc, argv, false, c);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null);
	return rc;
}

#define PARSE(o, c, ...)                                                                           \
	parse(o, c, (int)(sizeof((char *[]){"demo", __VA_ARGS__}) / sizeof(char *)),               \
	      (char *[]){"demo", __VA_ARGS__, NULL})

TEST(cli_parse_stores_values)
{
	struct demo_opts o;
	struct cli_ctx c;

	CHECK(PARSE(&o, &c, "-ff", "--count", "x", "-cc", "--text=hi", "--number", "10", "--choice",
		    "two", "--store", "memory://", "--wait", "y") == 0);
	CHECK(o.flag && o.count == 3 && o.choice == 2 && o.number == 10);
	CHECK(!strcmp(o.text, "hi"));
	CHECK(c.store_url && !strcmp(c.store_url, "memory://") && c.wait && !c.help);
	/* Operands stay, in order, options having been taken out of them. */
	CHECK(c.argc == 2 && !strcmp(c.argv[0], "x") && !strcmp(c.argv[1], "y"));
	CHECK(PARSE(&o, &c, "-t", "a", "--", "-f") == 0);
	CHECK(!o.flag && c.argc == 1 && !strcmp(c.argv[0], "-f"));
	/* --help stops the parse at once. */
	CHECK(PARSE(&o, &c, "--help", "--bogus") == 0 && c.help);
}

TEST(cli_parse_refuses_bad_values)
{
	struct demo_opts o;
	struct cli_ctx c;

	CHECK(PARSE(&o, &c, "--number", "1") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--number", "11") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--number", "-3") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--number", "5x") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--number", "99999999999999999999999") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--number", "2") == 0 && o.number == 2);
	CHECK(PARSE(&o, &c, "--choice", "three") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--choice", "On") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--bogus") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "-x") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "-fx") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--text") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "-t") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--flag=yes") == CLI_USAGE);
	/* Options of other commands are not this one's. */
	CHECK(PARSE(&o, &c, "--verbose") == CLI_USAGE);
	CHECK(PARSE(&o, &c, "--list-root") == CLI_USAGE);
}

/* --- storefs ARGS --- */

TEST(cli_main_statuses)
{
	char err[4096];

	CHECK(RUN(err, "storefs") == CLI_USAGE);
	CHECK(RUN(err, "storefs", "frobnicate") == CLI_USAGE);
	CHECK(strstr(err, "unknown command 'frobnicate'"));
	CHECK(RUN(err, "storefs", "--bogus") == CLI_USAGE);
	CHECK(RUN(err, "storefs", "--version") == CLI_OK);
	CHECK(RUN(err, "storefs", "--help") == CLI_OK);
	CHECK(RUN(err, "storefs", "help", "mount") == CLI_OK);
	CHECK(RUN(err, "storefs", "help", "nosuch") == CLI_USAGE);
	CHECK(RUN(err, "storefs", "help", "ls", "cat") == CLI_USAGE);
	for (size_t i = 0; i < cli_n_commands; i++) {
		char *name = (char *)cli_commands[i]->name;

		CHECK_MSG(RUN(err, "storefs", name, "--help") == CLI_OK, "%s --help", name);
		CHECK_MSG(RUN(err, "storefs", name, "-h") == CLI_OK, "%s -h", name);
		CHECK_MSG(RUN(err, "storefs", name, "--no-such-option") == CLI_USAGE, "%s", name);
		CHECK_MSG(strstr(err, "usage: storefs "), "%s: no usage line", name);
	}
	CHECK(RUN(err, "storefs", "import") == CLI_USAGE);
	CHECK(strstr(err, "storefs import: no PATH given\n"));
	CHECK(RUN(err, "storefs", "cat", "a", "b") == CLI_USAGE);
	CHECK(strstr(err, "only one"));
	CHECK(RUN(err, "storefs", "verify", "extra") == CLI_USAGE);
	CHECK(strstr(err, "unexpected argument 'extra'"));
}

/* --store before the command is the command's store; its own --store wins. */
TEST(cli_store_before_the_command)
{
	const char *p = "00000000000000000000000000000000-x";
	char err[4096];

	setenv("STOREFS_STORE", "/nonexistent/storefs-test-store", 1);
	CHECK(RUN(err, "storefs", "path-info", (char *)p) == CLI_FAILED);
	CHECK_MSG(!strstr(err, "is not in the store"), "the default store answered: %s", err);
	CHECK(RUN(err, "storefs", "--store", "memory://", "path-info", (char *)p) == CLI_FAILED);
	CHECK_MSG(strstr(err, "is not in the store"), "%s", err);
	CHECK(RUN(err, "storefs", "--store=memory://", "ls", (char *)p) == CLI_FAILED);
	CHECK_MSG(strstr(err, "storefs ls: ") && strstr(err, "is not in the store"), "%s", err);
	CHECK(RUN(err, "storefs", "--store", "/nonexistent/x", "cat", "--store", "memory://",
		  (char *)p) == CLI_FAILED);
	CHECK_MSG(strstr(err, "is not in the store"), "%s", err);
	/* One line on stderr for a failure. */
	CHECK(strchr(err, '\n') == err + strlen(err) - 1);
	CHECK(RUN(err, "storefs", "--store", "memory://", "help") == CLI_USAGE);
	unsetenv("STOREFS_STORE");
}
