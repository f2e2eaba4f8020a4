/* Placeholder until the monitor lands. */
#include <stdio.h>
#include "commands.h"
int mon_cmd_monitor(int argc, char **argv)
{
	fprintf(stderr, "bulkhead monitor: not built yet\n");
	return 2;
}
