/* main.c - the storefs command: dispatches to one file per subcommand. */
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "storefs: not built yet\n");
	return 2;
}
