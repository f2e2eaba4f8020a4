/*
 * C side of start-up: keep the boot information, install the exception handlers,
 * split the command line into argc/argv and run main; its value is the exit status.
 */
#include <inmate/runtime.h>
#include <inmate/string.h>
#include "internal.h"

static char cmdline_buf[BH_CMDLINE_MAX];
static char *argv_buf[INMATE_MAX_ARGS + 1];

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Split in place on whitespace; a double-quoted word may contain spaces. */
static int split_args(char *s, char **argv, int max)
{
	int argc = 0;

	while (*s && argc < max) {
		while (is_space(*s))
			s++;
		if (!*s)
			break;
		if (*s == '"') {
			argv[argc++] = ++s;
			while (*s && *s != '"')
				s++;
		} else {
			argv[argc++] = s;
			while (*s && !is_space(*s))
				s++;
		}
		if (*s)
			*s++ = '\0';
	}
	argv[argc] = 0;
	return argc;
}

void inmate_start(const struct bh_bootinfo *raw)
{
	const struct bh_bootinfo *bi;
	int argc;

	bootinfo_init(raw);
	idt_init();

	bi = bh_bootinfo();
	/* argv[0] is the partition's name, as a program name would be on a host. */
	argv_buf[0] = bi->name[0] ? (char *)bi->name : "inmate";
	memcpy(cmdline_buf, bi->cmdline, sizeof(cmdline_buf));
	argc = 1 + split_args(cmdline_buf, argv_buf + 1, INMATE_MAX_ARGS - 1);

	bh_exit((uint32_t)main(argc, argv_buf));
}
