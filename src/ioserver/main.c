/* Placeholder until the I/O servers land. */
#include <stdio.h>
#include "commands.h"
int io_cmd_ioserver(int argc, char **argv)
{
	fprintf(stderr, "bulkhead ioserver: not built yet\n");
	return 2;
}
