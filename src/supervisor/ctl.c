/*
 * `bulkhead ctl`: the client of a running system's control socket. Sends one JSON
 * request and shows the reply as a table (or as JSON with --json); `events` and
 * `console` keep printing what the supervisor streams until interrupted, `console`
 * sending the lines typed on stdin to the partition's UART meanwhile.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
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
		"usage: bulkhead ctl (--socket PATH | --system FILE) [--json] [--send TEXT] COMMAND [ARG]\n"
		"\n"
		"Talks to a running system's supervisor over its control socket.\n"
		"\n"
		"commands:\n"
		"  status              partitions and I/O servers, their state and counters\n"
		"  start PARTITION     start a stopped partition (from zeroed memory)\n"
		"  stop PARTITION      stop a running partition\n"
		"  restart NAME        restart the partition or the I/O server of that name\n"
		"  restart partition NAME | restart server NAME\n"
		"                      the same, for a name both a partition and a server have\n"
		"  events              print health events as they happen (until interrupted)\n"
		"  console PARTITION   print a partition's console lines as they come, and send\n"
		"                      the lines read from stdin to its UART\n"
		"\n"
		"  -s, --socket PATH   the control socket (control_socket in the system file)\n"
		"  -f, --system FILE   take the socket path from this system file\n"
		"  -j, --json          print the supervisor's JSON replies as they are\n"
		"  -t, --send TEXT     with console: send TEXT and a newline to the partition's\n"
		"                      UART, then exit (nothing is printed)\n"
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

/* Lines from a descriptor, read raw (no stdio buffer), so that poll() on the
 * descriptor tells the truth about what is left. */
struct lines {
	int fd;
	bool eof;
	size_t len;
	char buf[65536];
};

/* The next complete line (without its newline) as a malloc'd string, or NULL when none
 * is buffered; at end of input, what is left as a last line. */
static char *lines_next(struct lines *l)
{
	char *nl = memchr(l->buf, '\n', l->len), *line;
	size_t n;

	if (!nl && !(l->eof && l->len) && l->len < sizeof(l->buf))
		return NULL;
	n = nl ? (size_t)(nl - l->buf) : l->len;
	line = strndup(l->buf, n);
	n = nl ? n + 1 : n;
	l->len -= n;
	memmove(l->buf, l->buf + n, l->len);
	return line;
}

/* Reads what is there (blocking when nothing is); false at end of input. */
static bool lines_fill(struct lines *l)
{
	ssize_t n;

	if (l->eof)
		return false;
	do
		n = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		l->eof = true;
	else
		l->len += (size_t)n;
	return n > 0;
}

/* The next line, waiting for it; NULL at end of input. */
static char *read_line(struct lines *l)
{
	char *line;

	while (!(line = lines_next(l)))
		if (!lines_fill(l) && !l->len)
			return NULL;
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

static long long count(json_t *port, const char *key)
{
	return (long long)json_integer_value(json_object_get(port, key));
}

/* A net server's ports: traffic as the guest sees it, frames its rate limit held back,
 * drops by reason. */
static void print_ports(json_t *server)
{
	json_t *ports = json_object_get(server, "ports"), *port;
	size_t i;

	if (!json_array_size(ports))
		return;
	printf("\n%-22s %-8s %10s %12s %10s %12s %10s  %s\n", "PORT", "NETWORK", "RX FRAMES",
	       "RX BYTES", "TX FRAMES", "TX BYTES", "RATE HELD",
	       "DROPS spoof/rate/no-buffer/oversize/malformed");
	json_array_foreach(ports, i, port) {
		char who[64];

		if (json_object_get(port, "uplink"))
			snprintf(who, sizeof(who), "uplink %s", str_or(json_object_get(port, "uplink"), "?"));
		else
			snprintf(who, sizeof(who), "%s/%lld", str_or(json_object_get(port, "partition"), "?"),
				 count(port, "device"));
		printf("%-22s %-8s %10lld %12lld %10lld %12lld %10lld  %lld/%lld/%lld/%lld/%lld\n",
		       who, str_or(json_object_get(port, "network"), "?"), count(port, "rx_frames"),
		       count(port, "rx_bytes"), count(port, "tx_frames"), count(port, "tx_bytes"),
		       count(port, "rate_held"), count(port, "drop_spoof"), count(port, "drop_rate"),
		       count(port, "drop_no_buffer"), count(port, "drop_oversize"),
		       count(port, "drop_malformed"));
	}
}

/* Other classes' devices: the partition's device, then each count by name. */
static void print_devices(json_t *server)
{
	json_t *devices = json_object_get(server, "devices"), *dev, *v;
	const char *name;
	size_t i;

	if (!json_array_size(devices))
		return;
	printf("\n%-22s %s\n", "DEVICE", "COUNTERS");
	json_array_foreach(devices, i, dev) {
		char who[64];

		snprintf(who, sizeof(who), "%s/%lld", str_or(json_object_get(dev, "partition"), "?"),
			 count(dev, "device"));
		printf("%-22s", who);
		json_object_foreach(dev, name, v)
			if (json_is_integer(v) && strcmp(name, "device"))
				printf(" %s=%lld", name, (long long)json_integer_value(v));
		printf("\n");
	}
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
	printf("\n%-16s %-8s %-8s %8s %12s %8s %8s\n", "I/O SERVER", "CLASS", "STATE", "PID",
	       "CONNECTIONS", "RESTARTS", "STANDBY");
	json_array_foreach(servers, i, p) {
		json_t *sb = json_object_get(p, "standby");
		char standby[24] = "-";

		if (json_is_integer(sb))
			snprintf(standby, sizeof(standby), "%lld", (long long)json_integer_value(sb));
		printf("%-16s %-8s %-8s %8lld %12lld %8lld %8s\n", str_or(json_object_get(p, "name"), "?"),
		       str_or(json_object_get(p, "class"), "?"), str_or(json_object_get(p, "state"), "?"),
		       (long long)json_integer_value(json_object_get(p, "pid")),
		       (long long)json_integer_value(json_object_get(p, "connections")),
		       (long long)json_integer_value(json_object_get(p, "restarts")), standby);
	}
	json_array_foreach(servers, i, p) {
		print_ports(p);
		print_devices(p);
	}
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

/* Sends one request line; steals req. */
static bool send_request(int fd, json_t *req)
{
	char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	bool ok = line && dprintf(fd, "%s\n", line) >= 0;

	json_decref(req);
	free(line);
	return ok;
}

/* Bytes of input per request: even with every byte escaped (\u00XX) a request stays
 * under the supervisor's 4096-byte line limit. */
#define CTL_INPUT_PIECE 512

/* Text for partition name's UART, as input requests. A JSON string holds UTF-8 text,
 * so pieces are cut between characters. Returns the number of requests sent, -EILSEQ
 * when the text is not UTF-8, -EPIPE when the supervisor is gone. */
static int send_input(int fd, const char *name, const char *text, size_t n)
{
	int sent = 0;

	for (; n; sent++) {
		size_t k = n < CTL_INPUT_PIECE ? n : CTL_INPUT_PIECE;
		json_t *data;

		while (k < n && k > 1 && ((unsigned char)text[k] & 0xc0) == 0x80)
			k--;                 /* text[k] continues a character: cut before it */
		data = json_stringn(text, k);
		if (!data)
			return -EILSEQ;
		if (!send_request(fd, json_pack("{s:s, s:s, s:o}", "cmd", "input", "partition",
						name, "data", data)))
			return -EPIPE;
		text += k;
		n -= k;
	}
	return sent;
}

/* One line of stdin for the partition, with its newline. */
static void send_typed_line(int fd, const char *name, const char *line)
{
	size_t n = strlen(line);
	char *text = malloc(n + 2);

	if (!text)
		return;
	memcpy(text, line, n);
	memcpy(text + n, "\n", 2);
	if (send_input(fd, name, text, n + 1) == -EILSEQ)
		fprintf(stderr, "bulkhead ctl: a line of input is not UTF-8 text: not sent\n");
	free(text);
}

/* A line of the console stream: a console line, or the reply to an input request
 * (shown only when it is a refusal, or with --json). */
static void console_streamed(const char *line, bool json)
{
	json_t *o = json_loads(line, 0, NULL), *ok = json_object_get(o, "ok");

	if (ok && !json_is_true(ok))
		fprintf(stderr, "bulkhead ctl: %s\n", str_or(json_object_get(o, "error"), "refused"));
	else if (!ok || json)
		print_streamed(line, json, true);
	json_decref(o);
}

/* `console`: prints the partition's lines until the supervisor ends the stream; the
 * lines read from stdin meanwhile go to the partition's UART (until stdin ends). */
static void console_loop(int fd, struct lines *in, const char *name, bool json)
{
	struct lines *kb = calloc(1, sizeof(*kb));
	bool typing = kb != NULL;
	char *l;

	if (kb)
		kb->fd = STDIN_FILENO;
	for (;;) {
		struct pollfd pf[2] = { { .fd = fd, .events = POLLIN },
					{ .fd = STDIN_FILENO, .events = POLLIN } };

		while ((l = lines_next(in))) {
			console_streamed(l, json);
			free(l);
		}
		if (in->eof)
			break;
		if (poll(pf, typing ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents)
			lines_fill(in);
		if (typing && pf[1].revents) {
			typing = lines_fill(kb);
			while ((l = lines_next(kb))) {
				send_typed_line(fd, name, l);
				free(l);
			}
		}
	}
	free(kb);
}

int ctl_cmd_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "system", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "send", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *sock = NULL, *system = NULL, *cmd, *arg = NULL, *kind = NULL, *send = NULL;
	bool json = false, streaming;
	char *path = NULL, *line = NULL;
	struct lines *in;
	json_t *req, *rep = NULL;
	int opt, fd, rc, nargs;

	while ((opt = getopt_long(argc, argv, "s:f:jt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'f': system = optarg; break;
		case 'j': json = true; break;
		case 't': send = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc || (!sock == !system)) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	nargs = argc - optind - 1;
	arg = nargs > 0 ? argv[optind + 1] : NULL;
	if (!strcmp(cmd, "restart") && nargs == 2 &&
	    (!strcmp(arg, "partition") || !strcmp(arg, "server"))) {
		kind = arg;
		arg = argv[optind + 2];
	} else if (!strcmp(cmd, "restart") && nargs > 1) {
		fprintf(stderr, "bulkhead ctl: 'restart NAME', 'restart partition NAME' or "
			"'restart server NAME'\n");
		return 2;
	}
	if (strcmp(cmd, "status") && strcmp(cmd, "events") && !arg) {
		fprintf(stderr, "bulkhead ctl: '%s' needs a partition%s name\n", cmd,
			strcmp(cmd, "restart") ? "" : " or I/O server");
		return 2;
	}
	if (send && strcmp(cmd, "console")) {
		fprintf(stderr, "bulkhead ctl: --send goes with 'console PARTITION'\n");
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
	in = calloc(1, sizeof(*in));
	if (!in) {
		close(fd);
		return 2;
	}
	in->fd = fd;
	if (send) {
		size_t n = strlen(send);
		char *text = malloc(n + 2);
		int requests;

		rc = text ? 0 : -ENOMEM;
		if (text) {
			memcpy(text, send, n);
			memcpy(text + n, "\n", 2);
			rc = send_input(fd, arg, text, n + 1);
			free(text);
		}
		requests = rc > 0 ? rc : 0;
		rc = rc > 0 ? 0 : rc;
		if (rc == -EILSEQ) {
			fprintf(stderr, "bulkhead ctl: --send: the text is not UTF-8\n");
			goto out_usage;
		}
		/* One reply per request sent: the first refusal is the answer. */
		for (int i = 0; !rc && i < requests; i++) {
			free(line);
			json_decref(rep);
			line = read_line(in);
			rep = line ? json_loads(line, 0, NULL) : NULL;
			if (!rep || !json_is_true(json_object_get(rep, "ok")))
				break;
		}
		goto reply;
	}
	req = json_pack("{s:s}", "cmd", cmd);
	if (arg)
		json_object_set_new(req, kind ? kind : !strcmp(cmd, "restart") ? "name" : "partition",
				    json_string(arg));
	if (!send_request(fd, req)) {
		fprintf(stderr, "bulkhead ctl: cannot send the request\n");
		goto out_usage;
	}
	line = read_line(in);
	rep = line ? json_loads(line, 0, NULL) : NULL;
reply:
	if (!rep) {
		fprintf(stderr, "bulkhead ctl: no reply from the supervisor\n");
		rc = 2;
	} else if (!json_is_true(json_object_get(rep, "ok"))) {
		if (json)
			puts(line);
		fprintf(stderr, "bulkhead ctl: %s\n", str_or(json_object_get(rep, "error"), "refused"));
		rc = 1;
	} else {
		streaming = !send && (!strcmp(cmd, "events") || !strcmp(cmd, "console"));
		if (json && !streaming)
			puts(line);
		else if (send)
			;                        /* nothing to show */
		else if (!strcmp(cmd, "status"))
			print_status(rep);
		else if (!streaming)
			printf("%s%s%s %s: done\n", cmd, kind ? " " : "", kind ? kind : "", arg);
		rc = 0;
		if (streaming && !strcmp(cmd, "console")) {
			console_loop(fd, in, arg, json);
		} else if (streaming) {
			char *l;
			while ((l = read_line(in))) {
				print_streamed(l, json, false);
				free(l);
			}
		}
	}
	json_decref(rep);
	free(line);
	free(in);
	close(fd);
	return rc;
out_usage:
	free(in);
	close(fd);
	return 2;
}
