/*
 * The control socket: a unix stream socket (mode 0600) at the system's control_socket
 * path, speaking JSON lines. A client sends one request object per line and gets one
 * reply object per request; `events` and `console` turn the connection into a stream.
 * The supervisor never blocks on a client: one that cannot keep up is disconnected.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

#define CTL_MAX_CLIENTS 16
#define CTL_LINE_MAX    4096

enum ctl_sub { CTL_SUB_NONE, CTL_SUB_EVENTS, CTL_SUB_CONSOLE };

struct ctl_client {
	int fd;
	size_t len;
	char in[CTL_LINE_MAX];
	enum ctl_sub sub;
	int console_of;              /* partition index for CTL_SUB_CONSOLE */
};

struct sup_control {
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_client clients[CTL_MAX_CLIENTS];
};

static const char *const state_names[] = { "idle", "running", "stopped" };

static int64_t ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* A path already there: a live supervisor's socket is refused, a stale one removed. */
static int clear_stale(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	return unlink(path) ? -errno : 0;
}

int sup_control_open(struct sup *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SUP_TAG(SUP_TAG_CTL_LISTEN, 0) };
	const char *path = s->sys->control_socket;
	struct sup_control *c;
	mode_t old;
	int rc;

	if (strlen(path) + 4 >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bulkhead run: control_socket '%s' is longer than %zu bytes\n", path,
			sizeof(sa.sun_path) - 5);
		return -ENAMETOOLONG;
	}
	{
		char dir[sizeof(sa.sun_path)], *slash;
		strcpy(dir, path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			sup_mkdir_p(dir);
		}
	}
	rc = clear_stale(path);
	if (rc) {
		fprintf(stderr, "bulkhead run: control_socket '%s': %s\n", path,
			rc == -EADDRINUSE ? "another supervisor is listening there"
			: rc == -EEXIST ? "exists and is not a socket" : strerror(-rc));
		return rc;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	strcpy(c->path, path);
	/* Bound under a temporary name and renamed once listening, so that a client that
	 * sees the path can connect: no window of "connection refused". */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path);
	unlink(sa.sun_path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0077);           /* the socket is born 0600: no window for others */
	rc = c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	     chmod(sa.sun_path, 0600) || listen(c->listen_fd, 8) || rename(sa.sun_path, path) ||
	     epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->listen_fd, &ev) ? -errno : 0;
	umask(old);
	if (rc) {
		fprintf(stderr, "bulkhead run: control_socket '%s': %s\n", path, strerror(-rc));
		if (c->listen_fd >= 0)
			close(c->listen_fd);
		free(c);
		return rc;
	}
	s->control = c;
	return 0;
}

static void drop(struct sup *s, struct ctl_client *cl)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	cl->sub = CTL_SUB_NONE;
}

/* Sends one line; a client whose socket is full is dropped rather than waited for. */
static void send_line(struct sup *s, struct ctl_client *cl, const char *text)
{
	size_t n = strlen(text);
	struct iovec iov[2] = { { (void *)text, n }, { "\n", 1 } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(n + 1))
		drop(s, cl);
}

static void reply(struct sup *s, struct ctl_client *cl, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(obj);
	if (text) {
		send_line(s, cl, text);
		free(text);
	}
}

static void reply_error(struct sup *s, struct ctl_client *cl, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	reply(s, cl, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static json_t *cpus_json(const struct bh_cpuset *set)
{
	json_t *a = json_array();
	for (unsigned c = 0; c < BH_MAX_CPUS; c++)
		if (bh_cpuset_has(set, c))
			json_array_append_new(a, json_integer(c));
	return a;
}

static json_t *partition_status(const struct sup_partition *p)
{
	json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:s, s:i, s:i}", "name", p->cfg->name,
			      "state", state_names[p->state], "cpus", cpus_json(&p->cfg->cpus),
			      "memory", (json_int_t)p->cfg->memory,
			      "isolation", bh_isolation_names[p->cfg->isolation],
			      "starts", (int)p->starts, "restarts", (int)p->restarts);

	json_object_set_new(o, "pid", p->pid > 0 ? json_integer(p->pid) : json_null());
	json_object_set_new(o, "uptime_ms", p->state == SUP_RUNNING
				? json_integer(ms_since(&p->started)) : json_null());
	json_object_set_new(o, "exit_status", p->out.exited ? json_integer(p->out.status)
							     : json_null());
	json_object_set_new(o, "summary", p->state == SUP_STOPPED ? json_string(p->summary)
								   : json_null());
	return o;
}

static json_t *status(struct sup *s)
{
	json_t *parts = json_array(), *servers = json_array();

	for (unsigned i = 0; i < s->nparts; i++)
		json_array_append_new(parts, partition_status(&s->parts[i]));
	for (unsigned i = 0; i < s->nservers; i++) {
		const struct sup_server *v = &s->servers[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:o}",
			"name", v->cfg->name, "class", bh_class_names[v->cfg->class],
			"state", v->pid > 0 ? "running" : v->failed ? "failed" : "stopped",
			"pid", v->pid > 0 ? json_integer(v->pid) : json_null(),
			"connections", (int)v->nconns, "restarts", (int)v->restarts,
			"standby", v->standby.pid > 0 ? json_integer(v->standby.pid) : json_null());

		/* net: per port (devices and uplinks); the others: per device */
		json_object_set_new(o, v->cfg->class == BH_CLASS_NET ? "ports" : "devices",
				    sup_counters_json(v));
		json_array_append_new(servers, o);
	}
	return json_pack("{s:b, s:s, s:I, s:o, s:o}", "ok", 1, "system", s->sys->name,
			 "uptime_ms", (json_int_t)ms_since(&s->t0), "partitions", parts,
			 "io_servers", servers);
}

static struct sup_partition *named(struct sup *s, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "partition"));
	int idx = name ? cfg_find_partition(s->sys, name) : -1;
	return idx < 0 ? NULL : &s->parts[idx];
}

static void partition_command(struct sup *s, struct ctl_client *cl, json_t *req,
			      const char *cmd)
{
	struct sup_partition *p = named(s, req);
	const char *name = json_string_value(json_object_get(req, "partition"));
	int rc;

	if (!name) {
		reply_error(s, cl, "'%s' needs a partition", cmd);
		return;
	}
	if (!p) {
		reply_error(s, cl, "no such partition '%s'", name);
		return;
	}
	if (!strcmp(cmd, "start"))
		rc = sup_operator_start(s, p);
	else
		rc = sup_operator_stop(s, p, !strcmp(cmd, "restart"));
	if (rc == -EALREADY)
		reply_error(s, cl, "partition '%s' is already running", name);
	else if (rc == -ESRCH)
		reply_error(s, cl, "partition '%s' is not running", name);
	else if (rc == -ENOTCONN)
		reply_error(s, cl, "partition '%s': an I/O server it uses has failed for good "
			    "(restart it first)", name);
	else if (rc)
		reply_error(s, cl, "%s", strerror(-rc));
	else
		reply(s, cl, json_pack("{s:b}", "ok", 1));
}

static void server_restart(struct sup *s, struct ctl_client *cl, const char *name)
{
	int idx = cfg_find_server(s->sys, name);
	int rc;

	if (idx < 0) {
		reply_error(s, cl, "no such I/O server '%s'", name);
		return;
	}
	rc = sup_operator_restart_server(s, &s->servers[idx]);
	if (rc == -ECANCELED)
		reply_error(s, cl, "the system is stopping: I/O server '%s' is not restarted", name);
	else if (rc)
		reply_error(s, cl, "I/O server could not be restarted: %s", strerror(-rc));
	else
		reply(s, cl, json_pack("{s:b}", "ok", 1));
}

/* restart: {"partition":P}, {"server":S}, or {"name":N} for either, when N names only
 * one of them (names are unique per kind, not across kinds). */
static void restart_command(struct sup *s, struct ctl_client *cl, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *server = json_string_value(json_object_get(req, "server"));
	bool is_part, is_server;

	if (server) {
		server_restart(s, cl, server);
		return;
	}
	if (!name) {
		partition_command(s, cl, req, "restart");
		return;
	}
	is_part = cfg_find_partition(s->sys, name) >= 0;
	is_server = cfg_find_server(s->sys, name) >= 0;
	if (is_part && is_server) {
		char msg[3 * BH_MAX_NAME + 96];

		snprintf(msg, sizeof(msg), "'%s' names both a partition and an I/O server: say "
			 "'restart partition %s' or 'restart server %s'", name, name, name);
		reply_error(s, cl, "%s", msg);
	} else if (is_server) {
		server_restart(s, cl, name);
	} else if (is_part) {
		json_object_set_new(req, "partition", json_string(name));
		partition_command(s, cl, req, "restart");
	} else {
		reply_error(s, cl, "no partition or I/O server named '%s'", name);
	}
}

/* input: {"partition":P,"data":TEXT}: TEXT's bytes (UTF-8, as JSON strings are) go to
 * the partition's UART receiver. */
static void input_command(struct sup *s, struct ctl_client *cl, json_t *req)
{
	struct sup_partition *p = named(s, req);
	const char *name = json_string_value(json_object_get(req, "partition"));
	json_t *data = json_object_get(req, "data");
	int rc;

	if (!p) {
		reply_error(s, cl, name ? "no such partition '%s'" : "'input' needs a partition%s",
			    name);
		return;
	}
	if (!json_is_string(data)) {
		reply_error(s, cl, "'input' needs \"data\", a string%s", NULL);
		return;
	}
	rc = sup_console_input(s, p, json_string_value(data), json_string_length(data));
	if (rc == -ESRCH)
		reply_error(s, cl, "partition '%s' is not running", name);
	else if (rc == -EAGAIN)
		reply_error(s, cl, "partition '%s' is not taking input now (try again)", name);
	else if (rc)
		reply_error(s, cl, "%s", strerror(-rc));
	else
		reply(s, cl, json_pack("{s:b, s:I}", "ok", 1, "bytes",
				       (json_int_t)json_string_length(data)));
}

static void handle(struct sup *s, struct ctl_client *cl, const char *line)
{
	json_t *req = json_loads(line, 0, NULL);
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!req || !json_is_object(req) || !cmd) {
		reply_error(s, cl, "a request is a JSON object with a \"cmd\" on one line%s", NULL);
	} else if (!strcmp(cmd, "status")) {
		reply(s, cl, status(s));
	} else if (!strcmp(cmd, "restart")) {
		restart_command(s, cl, req);
	} else if (!strcmp(cmd, "start") || !strcmp(cmd, "stop")) {
		if (json_object_get(req, "server"))
			reply_error(s, cl, "I/O servers can only be restarted ('%s' is for "
				    "partitions)", cmd);
		else
			partition_command(s, cl, req, cmd);
	} else if (!strcmp(cmd, "input")) {
		input_command(s, cl, req);
	} else if (!strcmp(cmd, "events")) {
		reply(s, cl, json_pack("{s:b}", "ok", 1));
		if (cl->fd >= 0)
			cl->sub = CTL_SUB_EVENTS;
	} else if (!strcmp(cmd, "console")) {
		struct sup_partition *p = named(s, req);
		if (!p) {
			reply_error(s, cl, "no such partition '%s'",
				    json_string_value(json_object_get(req, "partition")));
		} else {
			reply(s, cl, json_pack("{s:b}", "ok", 1));
			if (cl->fd >= 0) {
				cl->sub = CTL_SUB_CONSOLE;
				cl->console_of = (int)p->id;
			}
		}
	} else {
		reply_error(s, cl, "unknown command '%s' (status, start, stop, restart, events, "
			    "console, input)", cmd);
	}
	json_decref(req);
}

static void accept_client(struct sup *s)
{
	struct sup_control *c = s->control;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &c->clients[i];
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u64 = SUP_TAG(SUP_TAG_CTL_CLIENT, i) };
		if (cl->fd >= 0)
			continue;
		*cl = (struct ctl_client){ .fd = fd };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
			break;
		return;
	}
	send(fd, "{\"ok\":false,\"error\":\"too many control clients\"}\n", 48,
	     MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void read_client(struct sup *s, struct ctl_client *cl)
{
	ssize_t n = recv(cl->fd, cl->in + cl->len, sizeof(cl->in) - cl->len, MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(s, cl);
		return;
	}
	cl->len += (size_t)n;
	while (cl->fd >= 0 && (nl = memchr(cl->in, '\n', cl->len))) {
		*nl = '\0';
		handle(s, cl, cl->in);
		if (cl->fd < 0)
			return;
		cl->len -= (size_t)(nl + 1 - cl->in);
		memmove(cl->in, nl + 1, cl->len);
	}
	if (cl->len == sizeof(cl->in)) {
		reply_error(s, cl, "request longer than %s bytes", "4096");
		if (cl->fd >= 0)
			drop(s, cl);
	}
}

void sup_control_event(struct sup *s, uint64_t tag)
{
	if (!s->control)
		return;
	if (SUP_TAG_KIND(tag) == SUP_TAG_CTL_LISTEN)
		accept_client(s);
	else if (SUP_TAG_IDX(tag) < CTL_MAX_CLIENTS && s->control->clients[SUP_TAG_IDX(tag)].fd >= 0)
		read_client(s, &s->control->clients[SUP_TAG_IDX(tag)]);
}

/* kind "event": text is an event's JSON line; kind "console": a console line of
 * partition. Each goes to the clients that asked for it. */
void sup_control_publish(struct sup *s, const char *kind, const char *partition,
			 const char *text)
{
	bool console = !strcmp(kind, "console");
	char *line = NULL;

	if (!s->control)
		return;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &s->control->clients[i];

		if (cl->fd < 0 || cl->sub == CTL_SUB_NONE || (cl->sub == CTL_SUB_CONSOLE) != console)
			continue;
		if (console && strcmp(s->parts[cl->console_of].cfg->name, partition))
			continue;
		if (console && !line) {
			json_t *o = json_pack("{s:s, s:s}", "partition", partition, "line", text);
			line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			json_decref(o);
			if (!line)
				return;
		}
		send_line(s, cl, console ? line : text);
	}
	free(line);
}

void sup_control_close(struct sup *s)
{
	struct sup_control *c = s->control;

	if (!c)
		return;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			close(c->clients[i].fd);
	close(c->listen_fd);
	unlink(c->path);
	free(c);
	s->control = NULL;
}
