/*
 * `bulkhead ctl`: the client of a running system's control socket. Sends one JSON
 * request and shows the reply as a table (or as JSON with --json); `events` and
 * `console` keep printing what the supervisor streams until interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "config/system.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bulkhead ctl (--socket PATH | --system FILE) [--json] COMMAND [ARG]\n"
		"\n"
		"Talks to a running system's supervisor over its control socket.\n"
		"\n"
		"commands:\n"
		"  status              partitions and I/O servers, their state and counters\n"
		"  start PARTITION     start a stopped partition (from zeroed memory)\n"
		"  stop PARTITION      stop a running partition\n"
		"  restart PARTITION   stop it and start it again\n"
		"  events              print health events as they happen (until interrupted)\n"
		"  console PARTITION   print a partition's console lines as they come\n"
		"\n"
		"  -s, --socket PATH   the control socket (control_socket in the system file)\n"
		"  -f, --system FILE   take the socket path from this system file\n"
		"  -j, --json          print the supervisor's JSON replies as they are\n"
		"  -h, --help          show this help\n"
		"\n"
		"exit status: 0 done, 1 the supervisor refused the command, 2 usage error or no\n"
		"supervisor reachable\n");
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bulkhead ctl: socket path '%s' is too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == ENOENT)
		fprintf(stderr, "bulkhead ctl: no control socket at '%s' (is the system running?)\n",
			path);
	else if (errno == ECONNREFUSED)
		fprintf(stderr, "bulkhead ctl: nothing listens at '%s' (the system has stopped)\n",
			path);
	else if (errno == EACCES || errno == EPERM)
		fprintf(stderr, "bulkhead ctl: permission denied for '%s' (the socket is its "
			"owner's only)\n", path);
	else
		fprintf(stderr, "bulkhead ctl: cannot connect to '%s': %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Reads one line (without its newline) into a malloc'd string; NULL at end. */
static char *read_line(FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);

	if (n <= 0) {
		free(line);
		return NULL;
	}
	if (line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

static const char *str_or(json_t *v, const char *dflt)
{
	return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_cpus(json_t *cpus, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *c;

	buf[0] = '\0';
	json_array_foreach(cpus, i, c)
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, i ? ",%lld" : "%lld",
					 (long long)json_integer_value(c));
}

static void print_status(json_t *r)
{
	json_t *parts = json_object_get(r, "partitions"), *servers = json_object_get(r, "io_servers");
	json_t *p;
	size_t i;

	printf("system %s, up %.1f s\n\n", str_or(json_object_get(r, "system"), "?"),
	       (double)json_integer_value(json_object_get(r, "uptime_ms")) / 1000);
	printf("%-16s %-8s %-6s %8s %-9s %6s %8s %9s  %s\n", "PARTITION", "STATE", "CPUS",
	       "MEMORY", "ISOLATION", "STARTS", "RESTARTS", "UPTIME", "EXIT");
	json_array_foreach(parts, i, p) {
		char cpus[64], uptime[24] = "-", exit_s[24] = "-";
		json_t *up = json_object_get(p, "uptime_ms"), *st = json_object_get(p, "exit_status");

		print_cpus(json_object_get(p, "cpus"), cpus, sizeof(cpus));
		if (json_is_integer(up))
			snprintf(uptime, sizeof(uptime), "%.1f s", (double)json_integer_value(up) / 1000);
		if (json_is_integer(st))
			snprintf(exit_s, sizeof(exit_s), "%lld", (long long)json_integer_value(st));
		printf("%-16s %-8s %-6s %7lldM %-9s %6lld %8lld %9s  %s\n",
		       str_or(json_object_get(p, "name"), "?"), str_or(json_object_get(p, "state"), "?"),
		       cpus, (long long)(json_integer_value(json_object_get(p, "memory")) >> 20),
		       str_or(json_object_get(p, "isolation"), "?"),
		       (long long)json_integer_value(json_object_get(p, "starts")),
		       (long long)json_integer_value(json_object_get(p, "restarts")), uptime,
		       str_or(json_object_get(p, "summary"), exit_s));
	}
	if (!json_array_size(servers))
		return;
	printf("\n%-16s %-8s %-8s %8s %12s\n", "I/O SERVER", "CLASS", "STATE", "PID", "CONNECTIONS");
	json_array_foreach(servers, i, p)
		printf("%-16s %-8s %-8s %8lld %12lld\n", str_or(json_object_get(p, "name"), "?"),
		       str_or(json_object_get(p, "class"), "?"), str_or(json_object_get(p, "state"), "?"),
		       (long long)json_integer_value(json_object_get(p, "pid")),
		       (long long)json_integer_value(json_object_get(p, "connections")));
}

/* A streamed line, readable: "12.3 ms  fault  partition=p kind=violation ...". */
static void print_streamed(const char *line, bool json, bool console)
{
	json_t *o = json_loads(line, 0, NULL), *v;
	const char *key;

	if (json || !o) {
		puts(line);
	} else if (console) {
		printf("%s\n", str_or(json_object_get(o, "line"), ""));
	} else {
		printf("%9.1f ms  %-18s", json_real_value(json_object_get(o, "t_ms")),
		       str_or(json_object_get(o, "event"), "?"));
		json_object_foreach(o, key, v) {
			char *text;
			if (!strcmp(key, "event") || !strcmp(key, "time") || !strcmp(key, "t_ms"))
				continue;
			text = json_is_string(v) ? strdup(json_string_value(v))
						 : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			printf(" %s=%s", key, text ? text : "?");
			free(text);
		}
		putchar('\n');
	}
	fflush(stdout);
	json_decref(o);
}

static char *socket_from_system(const char *file)
{
	struct bh_host host;
	struct diag d;
	struct bh_system *sys;
	char *path = NULL;

	cfg_host_probe(&host);
	diag_init(&d, file);
	sys = cfg_load_file(file, &host, &d);
	if (!sys || d.errors) {
		diag_print(&d, stderr);
		fprintf(stderr, "bulkhead ctl: cannot use '%s'\n", file);
	} else {
		path = strdup(sys->control_socket);
	}
	cfg_free(sys);
	diag_free(&d);
	return path;
}

int ctl_cmd_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "system", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *sock = NULL, *system = NULL, *cmd, *arg = NULL;
	bool json = false, streaming;
	char *path = NULL, *line;
	json_t *req, *rep;
	FILE *in;
	int opt, fd, rc;

	while ((opt = getopt_long(argc, argv, "s:f:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'f': system = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc || (!sock == !system)) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (strcmp(cmd, "status") && strcmp(cmd, "events") && !arg) {
		fprintf(stderr, "bulkhead ctl: '%s' needs a partition name\n", cmd);
		return 2;
	}
	if (!sock) {
		path = socket_from_system(system);
		if (!path)
			return 2;
		sock = path;
	}
	fd = connect_to(sock);
	free(path);
	if (fd < 0)
		return 2;
	req = json_pack("{s:s}", "cmd", cmd);
	if (arg)
		json_object_set_new(req, "partition", json_string(arg));
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line || dprintf(fd, "%s\n", line) < 0) {
		fprintf(stderr, "bulkhead ctl: cannot send the request\n");
		free(line);
		close(fd);
		return 2;
	}
	free(line);
	in = fdopen(fd, "r");
	line = in ? read_line(in) : NULL;
	rep = line ? json_loads(line, 0, NULL) : NULL;
	if (!rep) {
		fprintf(stderr, "bulkhead ctl: no reply from the supervisor\n");
		rc = 2;
	} else if (!json_is_true(json_object_get(rep, "ok"))) {
		if (json)
			puts(line);
		fprintf(stderr, "bulkhead ctl: %s\n", str_or(json_object_get(rep, "error"), "refused"));
		rc = 1;
	} else {
		streaming = !strcmp(cmd, "events") || !strcmp(cmd, "console");
		if (json && !streaming)
			puts(line);
		else if (!strcmp(cmd, "status"))
			print_status(rep);
		else if (!streaming)
			printf("%s %s: done\n", cmd, arg);
		rc = 0;
		if (streaming) {
			char *l;
			while ((l = read_line(in))) {
				print_streamed(l, json, !strcmp(cmd, "console"));
				free(l);
			}
		}
	}
	json_decref(rep);
	free(line);
	if (in)
		fclose(in);
	return rc;
}
