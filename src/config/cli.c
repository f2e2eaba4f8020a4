/*
 * `bulkhead check [--print] FILE`: proves a system file sound before anything runs.
 * Exit status 0 when sound, 1 when not (every problem listed), 2 for usage errors and
 * files that cannot be read.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config/system.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bulkhead check [--print] [--quiet] FILE\n"
		"\n"
		"Checks a system file and reports every problem as FILE:LINE:COL: error: MESSAGE.\n"
		"Relative paths in the file are taken from the file's own directory.\n"
		"\n"
		"  -p, --print   print the compiled system as JSON (defaults filled in, memory maps,\n"
		"                devices, networks) when the file is sound\n"
		"  -q, --quiet   print nothing when the file is sound\n"
		"  -h, --help    show this help\n"
		"\n"
		"exit status: 0 sound, 1 problems found, 2 usage error or unreadable file\n");
}

int cfg_cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "print", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool print = false, quiet = false;
	struct bh_system *sys;
	struct bh_host host;
	struct diag d;
	char *text;
	size_t len;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "pqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': print = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	rc = cfg_read(argv[optind], &text, &len);
	if (rc) {
		fprintf(stderr, "bulkhead check: cannot read '%s': %s\n", argv[optind], strerror(-rc));
		return 2;
	}
	cfg_host_probe(&host);
	diag_init(&d, argv[optind]);
	sys = cfg_load_text(argv[optind], text, len, &host, &d);
	free(text);
	diag_print(&d, stderr);
	rc = d.errors ? 1 : 0;
	if (!rc && print) {
		char *json = cfg_to_json(sys);
		puts(json);
		free(json);
	} else if (!rc && !quiet) {
		printf("%s: ok: system '%s', %u partition%s, %u I/O server%s%s\n", argv[optind],
		       sys->name, sys->npartitions, sys->npartitions == 1 ? "" : "s", sys->nservers,
		       sys->nservers == 1 ? "" : "s", d.warnings ? " (see warnings)" : "");
	} else if (rc) {
		fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", argv[optind], d.errors,
			d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
	}
	cfg_free(sys);
	diag_free(&d);
	return rc;
}
