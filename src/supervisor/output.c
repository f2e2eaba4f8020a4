/*
 * What the supervisor writes: partition consoles (live, each line prefixed with the
 * partition's name, and raw into <log_dir>/<name>.console.log) and health events as
 * JSON lines in <log_dir>/events.jsonl.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "supervisor/sup.h"

int sup_mkdir_p(const char *path)
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
	int rc = sup_mkdir_p(s->sys->log_dir);

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

/* Adds the time stamp and writes one event object as a line. Steals obj. */
void sup_log_event(struct sup *s, json_t *obj)
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
		sup_write_all(s->events_fd, text, strlen(text));
		sup_write_all(s->events_fd, "\n", 1);
	}
	sup_control_publish(s, "event", NULL, text);
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
	sup_log_event(s, obj);
}

/* Remembers what a monitor's exit, reset, fault, watchdog and error events say: the
 * supervisor decides on the partition's fate from them when the monitor is reaped. */
static void note_outcome(struct sup_partition *p, json_t *obj)
{
	const char *ev = json_string_value(json_object_get(obj, "event"));
	const char *action = json_string_value(json_object_get(obj, "action"));

	if (!ev)
		return;
	if (!strcmp(ev, "exit")) {
		p->out.exited = true;
		p->out.status = (unsigned)json_integer_value(json_object_get(obj, "status"));
	} else if (!strcmp(ev, "reset")) {
		p->out.reset = true;
	} else if (!strcmp(ev, "fault") && !(action && !strcmp(action, "ignored"))) {
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		const char *access = json_string_value(json_object_get(obj, "access"));
		const char *addr = json_string_value(json_object_get(obj, "address"));
		const char *dir = json_string_value(json_object_get(obj, "direction"));
		json_int_t size = json_integer_value(json_object_get(obj, "size"));

		p->out.fault = true;
		if (kind && !strcmp(kind, "violation"))
			snprintf(p->out.what, sizeof(p->out.what), "isolation violation: %s %s at %s, "
				 "%d byte%s", access ? access : "?", dir ? dir : "access",
				 addr ? addr : "?", (int)size, size == 1 ? "" : "s");
		else if (kind && !strcmp(kind, "panic"))
			snprintf(p->out.what, sizeof(p->out.what), "a kernel panic");
		else
			snprintf(p->out.what, sizeof(p->out.what), "%s", kind ? kind : "fault");
	} else if (!strcmp(ev, "watchdog") && !(action && !strcmp(action, "ignored"))) {
		/* The monitor stops the partition after this event, as after a fault. */
		p->out.fault = true;
		snprintf(p->out.what, sizeof(p->out.what), "watchdog: no kick for %lld ms",
			 (long long)json_integer_value(json_object_get(obj, "silent_ms")));
	} else if (!strcmp(ev, "error")) {
		const char *msg = json_string_value(json_object_get(obj, "message"));
		snprintf(p->out.what, sizeof(p->out.what), "%s", msg ? msg : "monitor error");
	}
}

/* An event line from a monitor or server: parsed, time-stamped and logged. Anything
 * that is not a JSON object is kept as text rather than dropped. */
static json_t *parse_event(const char *line, const char *who_key, const char *who)
{
	json_t *obj = json_loads(line, 0, NULL);

	if (obj && json_is_object(obj))
		return obj;
	json_decref(obj);
	return json_pack("{s:s, s:s, s:s}", "event", "garbage", who_key, who, "text", line);
}

void sup_monitor_event_line(void *ctx, const char *line, size_t len)
{
	struct sup_partition *p = ctx;
	json_t *obj;

	if (!len)
		return;
	obj = parse_event(line, "partition", p->cfg->name);
	if (!obj)
		return;
	note_outcome(p, obj);
	sup_log_event(p->sup, obj);
}

void sup_server_event_line(void *ctx, const char *line, size_t len)
{
	struct sup_server *v = ctx;
	json_t *obj;

	if (!len)
		return;
	obj = parse_event(line, "server", v->cfg->name);
	if (!obj)
		return;
	if (!json_object_get(obj, "server"))
		json_object_set_new(obj, "server", json_string(v->cfg->name));
	if (!sup_counters_event(v, obj))
		sup_log_event(v->sup, obj);
}

/* Whether a write to stdout would not block now. The echo is a convenience (every
 * line is in the console log already): a terminal paused with ^S or a reader that went
 * quiet must not stall supervision, nor, through the monitors' full console pipes, the
 * partitions. O_NONBLOCK is not an option: stdout is usually a terminal shared with
 * the shell. A pipe that polls writable takes a line up to PIPE_BUF whole. */
static bool stdout_writable(void)
{
	struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };

	return poll(&pfd, 1, 0) > 0;
}

/* Says on FD how many lines were not echoed: on stdout once it takes lines again, on
 * stderr with the summary at the end of the run. */
void sup_console_unshown_note(struct sup *s, int fd)
{
	char note[256];
	int len;

	if (!s->console_unshown)
		return;
	len = snprintf(note, sizeof(note), "bulkhead: %" PRIu64 " console line%s not shown here "
		       "(stdout did not keep up); every line is in %s/<partition>.console.log\n",
		       s->console_unshown, s->console_unshown == 1 ? "" : "s", s->sys->log_dir);
	sup_write_all(fd, note, (size_t)len < sizeof(note) ? (size_t)len : sizeof(note) - 1);
	s->console_unshown = 0;
}

/* One console line, from the UART or a virtio console: printed with the partition's
 * name in front, in one write so that partitions' lines never interleave. */
void sup_console_line(void *ctx, const char *text, size_t n)
{
	struct sup_partition *p = ctx;
	char buf[sizeof(p->uart.buf) + BH_MAX_NAME + 8];
	int len;

	/* A Linux partition's init reports its command's status on the console (guest/init). */
	if (p->cfg->engine == BH_ENGINE_QEMU && !strncmp(text, "bh: exit status ", 16)) {
		p->out.exited = true;
		p->out.status = (unsigned)strtoul(text + 16, NULL, 10);
	}
	sup_control_publish(p->sup, "console", p->cfg->name, text);
	if (p->sup->quiet)
		return;
	if (!stdout_writable()) {
		p->sup->console_unshown++;
		return;
	}
	sup_console_unshown_note(p->sup, STDOUT_FILENO);
	len = snprintf(buf, sizeof(buf), "%-*s | %.*s\n", 8, p->cfg->name, (int)n, text);
	sup_write_all(STDOUT_FILENO, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1);
}
