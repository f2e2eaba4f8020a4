/* Placeholder until the supervisor lands. */
#include <stdio.h>
#include "commands.h"
int sup_cmd_run(int argc, char **argv)
{
	fprintf(stderr, "bulkhead run: not built yet\n");
	return 2;
}
