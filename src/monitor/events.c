/*
 * Events for the supervisor: one JSON object per line on the event fd, written with a
 * single write() so lines from a pipe never interleave. Formatted by hand into a stack
 * buffer: no allocation, so events work the same inside the sandbox.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json_quote.h"
#include "monitor/mon.h"

#define EV_LINE_MAX 4096     /* PIPE_BUF: one write is atomic on a pipe */

int ev_init(struct mon *m)
{
	m->event_fd = m->opt->event_fd;
	if (json_quote(m->name_json, sizeof(m->name_json), m->opt->name) < 0)
		return -ENAMETOOLONG;
	return 0;
}

void ev_emit(struct mon *m, const char *event, const char *fields_fmt, ...)
{
	char line[EV_LINE_MAX];
	int n = snprintf(line, sizeof(line), "{\"event\":\"%s\",\"partition\":%s", event,
			 m->name_json);
	size_t off = 0;

	if (fields_fmt && n > 0 && (size_t)n < sizeof(line) - 1) {
		va_list ap;

		line[n++] = ',';
		va_start(ap, fields_fmt);
		n += vsnprintf(line + n, sizeof(line) - n, fields_fmt, ap);
		va_end(ap);
	}
	if (n < 0 || (size_t)n > sizeof(line) - 3)
		return;     /* cannot happen with the fixed fields used; never emit half a line */
	memcpy(line + n, "}\n", 3);
	n += 2;
	while (off < (size_t)n) {
		ssize_t w = write(m->event_fd, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}
