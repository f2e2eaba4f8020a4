/*
 * What the supervisor writes: partition consoles (live, each line prefixed with the
 * partition's name, and raw into <log_dir>/<name>.console.log) and health events as
 * JSON lines in <log_dir>/events.jsonl.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "supervisor/sup.h"

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int sup_open_logs(struct sup *s)
{
	char path[4096];
	int rc = mkdir_p(s->sys->log_dir);

	if (rc) {
		fprintf(stderr, "bulkhead run: cannot create log_dir '%s': %s\n", s->sys->log_dir,
			strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/events.jsonl", s->sys->log_dir);
	s->events_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (s->events_fd < 0)
		goto fail;
	for (unsigned i = 0; i < s->nparts; i++) {
		snprintf(path, sizeof(path), "%s/%s.console.log", s->sys->log_dir,
			 s->parts[i].cfg->name);
		s->parts[i].log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
					  0644);
		if (s->parts[i].log_fd < 0)
			goto fail;
	}
	return 0;
fail:
	rc = -errno;
	fprintf(stderr, "bulkhead run: cannot create '%s': %s\n", path, strerror(errno));
	return rc;
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;          /* a full disk must not stop the system */
		buf += w;
		n -= (size_t)w;
	}
}

/* Adds the time stamp and writes one event object as a line. Steals obj. */
static void write_event(struct sup *s, json_t *obj)
{
	struct timespec now;
	struct timeval tv;
	struct tm tm;
	char stamp[96], *text;

	clock_gettime(CLOCK_MONOTONIC, &now);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tv.tv_usec / 1000);
	json_object_set_new(obj, "time", json_string(stamp));
	json_object_set_new(obj, "t_ms", json_real((double)(now.tv_sec - s->t0.tv_sec) * 1e3 +
						   (double)(now.tv_nsec - s->t0.tv_nsec) / 1e6));
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text)
		return;
	if (s->events_fd >= 0) {
		write_all(s->events_fd, text, strlen(text));
		write_all(s->events_fd, "\n", 1);
	}
	free(text);
}

/* fmt holds extra JSON members, e.g. "\"status\":%d"; NULL for none. */
void sup_event(struct sup *s, const char *event, const char *partition, const char *fmt, ...)
{
	char members[1024] = "{";
	json_t *obj = json_object(), *extra;
	va_list ap;

	json_object_set_new(obj, "event", json_string(event));
	if (partition)
		json_object_set_new(obj, "partition", json_string(partition));
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(members + 1, sizeof(members) - 2, fmt, ap);
		va_end(ap);
		strcat(members, "}");
		extra = json_loads(members, 0, NULL);
		if (extra)
			json_object_update(obj, extra);
		json_decref(extra);
	}
	write_event(s, obj);
}

void sup_relay_event_line(struct sup *s, struct sup_partition *p, const char *line)
{
	json_t *obj = json_loads(line, 0, NULL);
	const char *ev;

	if (!obj || !json_is_object(obj)) {
		json_decref(obj);
		obj = json_pack("{s:s, s:s, s:s}", "event", "monitor_garbage", "partition",
				p->cfg->name, "text", line);
		if (obj)
			write_event(s, obj);
		return;
	}
	ev = json_string_value(json_object_get(obj, "event"));
	if (ev && !strcmp(ev, "exit")) {
		p->out.exited = true;
		p->out.status = (unsigned)json_integer_value(json_object_get(obj, "status"));
	} else if (ev && !strcmp(ev, "reset")) {
		p->out.reset = true;
	} else if (ev && !strcmp(ev, "fault")) {
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		const char *access = json_string_value(json_object_get(obj, "access"));
		const char *addr = json_string_value(json_object_get(obj, "address"));
		const char *dir = json_string_value(json_object_get(obj, "direction"));

		p->out.fault = true;
		if (kind && !strcmp(kind, "violation"))
			snprintf(p->out.what, sizeof(p->out.what), "isolation violation: %s %s at %s, "
				 "%d byte%s", access ? access : "?", dir ? dir : "access",
				 addr ? addr : "?", (int)json_integer_value(json_object_get(obj, "size")),
				 json_integer_value(json_object_get(obj, "size")) == 1 ? "" : "s");
		else
			snprintf(p->out.what, sizeof(p->out.what), "%s", kind ? kind : "fault");
	} else if (ev && !strcmp(ev, "error")) {
		const char *msg = json_string_value(json_object_get(obj, "message"));
		snprintf(p->out.what, sizeof(p->out.what), "%s", msg ? msg : "monitor error");
	}
	write_event(s, obj);
}

static void emit_line(struct sup *s, struct sup_partition *p, const char *text, size_t n)
{
	if (s->quiet)
		return;
	/* One write per line, so lines of different partitions never interleave. */
	char buf[sizeof(p->line) + BH_MAX_NAME + 8];
	int len = snprintf(buf, sizeof(buf), "%-*s | %.*s\n", 8, p->cfg->name, (int)n, text);
	write_all(STDOUT_FILENO, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1);
}

void sup_console_bytes(struct sup *s, struct sup_partition *p, const char *buf, size_t n)
{
	write_all(p->log_fd, buf, n);
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\n' || p->line_len == sizeof(p->line) - 1) {
			emit_line(s, p, p->line, p->line_len);
			p->line_len = 0;
			if (c == '\n')
				continue;
		}
		if (c != '\r')
			p->line[p->line_len++] = c;
	}
}

void sup_console_flush(struct sup *s, struct sup_partition *p)
{
	if (p->line_len)
		emit_line(s, p, p->line, p->line_len);
	p->line_len = 0;
}
