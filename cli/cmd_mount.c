/* cmd_mount.c - `storefs mount` (placeholder until fs/ lands). */
#include "cli/commands.h"

#include <stdio.h>

int cmd_mount(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "storefs mount: not implemented yet\n");
	return 1;
}
