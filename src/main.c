/*
 * bulkhead: a static partitioning hypervisor on KVM. This file only dispatches to the
 * subcommands; the supervisor starts monitors and I/O servers as subcommands of this
 * same binary.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	int internal;    /* started by the supervisor, not typed by users */
};

static const struct command commands[] = {
	{ "check",   cfg_cmd_check,   "check a system file; --print shows the compiled system", 0 },
	{ "run",     sup_cmd_run,     "boot a system: start every partition and I/O server", 0 },
	{ "ctl",     ctl_cmd_ctl,     "control a running system: status, start, stop, events, ...", 0 },
	{ "monitor", mon_cmd_monitor, "run one partition (started by 'run')", 1 },
	{ "ioserver", io_cmd_ioserver, "serve virtio devices over vhost-user (started by 'run', "
	  "or standalone)", 0 },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: bulkhead COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'bulkhead COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("bulkhead %s\n", BH_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "bulkhead: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
