/* main.c - the storefs command (see cli/commands.c and cli/cli.h). */
#include "cli/commands.h"
#include "common/fdlimit.h"

#include <signal.h>

int main(int argc, char **argv)
{
	/* A closed pipe becomes EPIPE from write(), reported like any error. */
	signal(SIGPIPE, SIG_IGN);
	/* Mounts and servers keep many files open; see docs/limits.md. */
	fdlimit_raise();
	return cli_main(argc, argv);
}
