/*
 * What the I/O server tells the supervisor: one JSON object per line on the event fd,
 * written with one write() so lines never interleave on a pipe; and human-readable
 * messages on stderr. Formatted on the stack: works the same inside the sandbox.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json_quote.h"
#include "ioserver/ioserver.h"

#define IOS_LINE_MAX 1024

void ios_event_write(struct ios *s, const char *line, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(s->event_fd, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;      /* nobody listening: events are not worth dying for */
		off += (size_t)w;
	}
}

void ios_event_ready(struct ios *s)
{
	char name[IOS_NAME_MAX * 6 + 3], line[IOS_LINE_MAX];
	int n;

	if (json_quote(name, sizeof(name), s->name) < 0)
		return;
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"ready\",\"server\":%s,\"class\":\"%s\",\"connections\":%u}\n",
		     name, s->ops->name, s->ndevs);
	if (n > 0 && (size_t)n < sizeof(line))
		ios_event_write(s, line, (size_t)n);
}

void ios_event_dev(struct vu_dev *d, const char *event, const char *reason, int queue)
{
	char name[IOS_NAME_MAX * 6 + 3], part[IOS_NAME_MAX * 6 + 3], line[IOS_LINE_MAX];
	int n;

	if (json_quote(name, sizeof(name), d->s->name) < 0 ||
	    json_quote(part, sizeof(part), d->partition) < 0)
		return;
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"%s\",\"server\":%s,\"partition\":%s,\"device\":%u", event,
		     name, part, d->device);
	if (reason && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ",\"reason\":\"%s\"", reason);
	if (queue >= 0 && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ",\"queue\":%d", queue);
	if (n <= 0 || (size_t)n > sizeof(line) - 3)
		return;
	memcpy(line + n, "}\n", 3);
	ios_event_write(d->s, line, (size_t)n + 2);
}

void ios_log(struct ios *s, const struct vu_dev *d, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d)
		fprintf(stderr, "bulkhead ioserver: %s: %s device %u: %s\n", s->name, d->partition,
			d->device, msg);
	else
		fprintf(stderr, "bulkhead ioserver: %s: %s\n", s->name, msg);
}

/* A restarted server found requests of queue left in flight and resubmits them. */
void ios_event_replay(struct vu_dev *d, int queue, unsigned requests)
{
	char name[IOS_NAME_MAX * 6 + 3], part[IOS_NAME_MAX * 6 + 3], line[IOS_LINE_MAX];
	int n;

	if (json_quote(name, sizeof(name), d->s->name) < 0 ||
	    json_quote(part, sizeof(part), d->partition) < 0)
		return;
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"replay\",\"server\":%s,\"partition\":%s,\"device\":%u,"
		     "\"queue\":%d,\"requests\":%u}\n", name, part, d->device, queue, requests);
	if (n > 0 && (size_t)n < sizeof(line))
		ios_event_write(d->s, line, (size_t)n);
}
