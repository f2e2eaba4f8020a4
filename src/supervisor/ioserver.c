/*
 * The I/O servers as the supervisor runs them: disk files opened (and created) up
 * front, one socket pair per device of a monitor (the monitor gets one end, the server
 * the other, so no socket path exists for anyone else to reach), for QEMU partitions a
 * connection to the socket QEMU listens on (qemu_sock.c), console pipes, and one
 * `bulkhead ioserver` process per server in the system file (or its hot standby,
 * standby.c); restarts; and when a partition with devices starts again, new connections
 * handed to its running servers over their control channels (a server is replaced only
 * when that cannot be done).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "supervisor/sup.h"

/* Restart backoff: a server that lived at least SRV_STABLE_MS is restarted at once;
 * one that keeps dying young waits twice as long each time, up to SRV_BACKOFF_MAX_MS. */
#define SRV_STABLE_MS       1000
#define SRV_BACKOFF_MIN_MS  50
#define SRV_BACKOFF_MAX_MS  2000
/* How often the supervisor looks for the sockets of QEMU partitions still starting. */
#define SRV_QEMU_POLL_MS    5
/* How long a running server has to answer a REPLACE on its control channel before it
 * is replaced instead; it answers at the end of its current loop turn. */
#define SRV_CTL_REPLY_MS    1000

static int replace_server(struct sup *s, struct sup_server *v, const char *reason);

static int open_disk(const struct bh_disk *disk)
{
	int fd = open(disk->file, O_RDWR | O_CLOEXEC | (disk->create ? O_CREAT : 0), 0644);
	struct stat st;

	if (fd < 0)
		return -errno;
	/* create: the file is made or extended to its size; never shrunk */
	if (fstat(fd, &st) || (disk->create && (uint64_t)st.st_size < disk->size &&
			       ftruncate(fd, (off_t)disk->size))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int add_conn(struct sup *s, struct sup_partition *p, unsigned d)
{
	const struct bh_device *dev = &p->cfg->devices[d];
	struct sup_server *v = &s->servers[dev->server.idx];
	int sv[2], rc;

	if (v->nconns == SUP_MAX_CONNS)
		return -ENOSPC;
	/* QEMU partitions: the server starts once QEMU listens (sup_servers_tick). */
	if (p->cfg->engine == BH_ENGINE_QEMU) {
		rc = sup_qemu_sock_path(s, p, d);
		if (rc)
			return rc;
		v->conns[v->nconns++] = (struct sup_conn){ .fd = -1, .part = p->id, .dev = d,
			.disk = dev->disk.idx, .out_fd = -1, .qemu = true };
		v->waiting = true;
		return 0;
	}
	if (p->ctl_fd < 0) {
		int cv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv))
			return -errno;
		p->ctl_fd = cv[0];
		p->ctl_mon_fd = cv[1];
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	p->dev_fd[d] = sv[0];
	v->conns[v->nconns++] = (struct sup_conn){ .fd = sv[1], .part = p->id, .dev = d,
		.disk = dev->disk.idx, .out_fd = -1 };
	if (dev->type != BH_DEV_CONSOLE)
		return 0;
	/* All console devices of a partition share one pipe, read like its UART. */
	if (p->vcon_w < 0) {
		int pfd[2];

		if (pipe2(pfd, O_CLOEXEC))
			return -errno;
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		sup_stream_init(&p->vcon, pfd[0], p->log_fd, sup_console_line, p);
		p->vcon_w = pfd[1];
		sup_stream_watch(s, &p->vcon, SUP_TAG(SUP_TAG_VCON, p->id));
	}
	v->conns[v->nconns - 1].out_fd = p->vcon_w;
	return 0;
}

int sup_prepare_devices(struct sup *s)
{
	int rc;

	for (unsigned i = 0; i < s->nparts; i++)
		memset(s->parts[i].vu_fd, -1, sizeof(s->parts[i].vu_fd));
	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];

		for (unsigned k = 0; k < v->cfg->ndisks; k++) {
			v->disk_fd[k] = open_disk(&v->cfg->disks[k]);
			if (v->disk_fd[k] < 0) {
				fprintf(stderr, "bulkhead run: I/O server '%s': disk '%s' (%s): %s\n",
					v->cfg->name, v->cfg->disks[k].name, v->cfg->disks[k].file,
					strerror(-v->disk_fd[k]));
				return v->disk_fd[k];
			}
		}
	}
	for (unsigned i = 0; i < s->nparts; i++)
		for (unsigned d = 0; d < s->parts[i].cfg->ndevices; d++) {
			rc = add_conn(s, &s->parts[i], d);
			if (rc)
				return rc;
		}
	return 0;
}


/* A net device's part of its --conn: its network, MAC and transmit rate limit. */
static int net_conn_spec(const struct sup *s, const struct bh_device *dev, char *buf, size_t len)
{
	const uint8_t *m = dev->mac;
	int n = snprintf(buf, len, ",network=%s,mac=%02x:%02x:%02x:%02x:%02x:%02x",
			 s->sys->networks[dev->network.idx].name, m[0], m[1], m[2], m[3], m[4], m[5]);

	if (dev->rate.at.line && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ",rate=%llu,burst=%llu",
			      (unsigned long long)dev->rate.bytes_per_sec,
			      (unsigned long long)dev->rate.burst);
	return n;
}

/* Fills the plan of what the server's process is given: its arguments and every
 * descriptor with the number it must have there (from SRV_FIRST_FD up; the event pipe
 * is SRV_EVENT_FD, set up by whoever makes the process). ctl is the server's end of
 * its control channel. Each connection given notes its --conn index (slot). */
static void plan_server(struct sup *s, struct sup_server *v, int ctl, struct srv_plan *pl)
{
	int next = SRV_FIRST_FD, disk_num[BH_MAX_DISKS], slot = 0;
	const char **argv = pl->argv;
	unsigned n = 0;

	pl->nfds = 0;
#define PLAN_FD(fd) (pl->src[pl->nfds] = (fd), pl->dst[pl->nfds++] = next++)
	for (unsigned k = 0; k < v->cfg->ndisks; k++)
		disk_num[k] = PLAN_FD(v->disk_fd[k]);
	argv[n++] = "bulkhead";
	argv[n++] = "ioserver";
	argv[n++] = bh_class_names[v->cfg->class];
	argv[n++] = "--name";
	argv[n++] = v->cfg->name;
	argv[n++] = "--event-fd";
	argv[n++] = SRV_EVENT_FD_STR;
	snprintf(pl->control, sizeof(pl->control), "%d", PLAN_FD(ctl));
	argv[n++] = "--control-fd";
	argv[n++] = pl->control;
	for (unsigned c = 0; c < v->nconns; c++) {
		struct sup_conn *cn = &v->conns[c];
		const struct sup_partition *p = &s->parts[cn->part];
		const struct bh_device *dev = &p->cfg->devices[cn->dev];
		char *spec = pl->specs[c];
		size_t size = sizeof(pl->specs[c]);
		int len;

		cn->slot = cn->fd < 0 ? -1 : slot++;
		if (cn->fd < 0)
			continue;           /* a QEMU partition that is gone */
		len = snprintf(spec, size, "fd=%d,partition=%s,device=%u", PLAN_FD(cn->fd),
			       p->cfg->name, cn->dev);
		if (dev->type == BH_DEV_BLK)
			len += snprintf(spec + len, size - (size_t)len,
					",disk-fd=%d,offset=%llu,size=%llu,readonly=%d",
					disk_num[cn->disk], (unsigned long long)dev->offset,
					(unsigned long long)dev->size, dev->readonly);
		if (dev->type == BH_DEV_NET)
			len += net_conn_spec(s, dev, spec + len, size - (size_t)len);
		if (cn->out_fd >= 0)
			snprintf(spec + len, size - (size_t)len, ",out=%d", PLAN_FD(cn->out_fd));
		argv[n++] = "--conn";
		argv[n++] = spec;
	}
	for (unsigned i = 0; i < s->sys->nnetworks; i++) {
		if (s->sys->networks[i].server.idx != (int)v->id || s->uplink_fd[i] < 0)
			continue;
		snprintf(pl->uplinks[i], sizeof(pl->uplinks[i]), "network=%s,fd=%d",
			 s->sys->networks[i].name, PLAN_FD(s->uplink_fd[i]));
		argv[n++] = "--uplink";
		argv[n++] = pl->uplinks[i];
	}
#undef PLAN_FD
	argv[n] = NULL;
	pl->argc = n;
}

/* In the forked child: the event pipe and the plan's descriptors at their numbers,
 * then exec. */
static void exec_server(struct sup *s, struct sup_server *v, const struct srv_plan *pl,
			int event_w)
{
	int above = SRV_FIRST_FD + (int)pl->nfds, lifted[SRV_MAX_FDS], lifted_ev, devnull;

	sup_child_init();
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	lifted_ev = sup_child_lift(event_w, above);
	for (unsigned i = 0; i < pl->nfds; i++)
		lifted[i] = sup_child_lift(pl->src[i], above);
	if (devnull < 0 || lifted_ev < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
	    dup2(lifted_ev, SRV_EVENT_FD) < 0)
		_exit(127);
	for (unsigned i = 0; i < pl->nfds; i++)
		if (lifted[i] < 0 || dup2(lifted[i], pl->dst[i]) < 0)
			_exit(127);
	execv(s->self, (char *const *)pl->argv);
	fprintf(stderr, "bulkhead run: cannot start I/O server '%s': %s\n", v->cfg->name,
		strerror(errno));
	_exit(127);
}

static void close_control(struct sup_server *v)
{
	if (v->ctl_fd >= 0)
		close(v->ctl_fd);
	v->ctl_fd = -1;
}

/* Starts the server's process: its standby takes over if it has one ready, else a fork
 * and exec. Each process gets a control channel of its own. */
static int start_server(struct sup *s, struct sup_server *v)
{
	static struct srv_plan plan;        /* large; the supervisor is single-threaded */
	unsigned nconns = 0;
	int events[2] = { -1, -1 }, ctl[2];
	bool standby;

	for (unsigned c = 0; c < v->nconns; c++)
		nconns += v->conns[c].fd >= 0;
	/* Every partition it would serve is gone (QEMU partitions that ended before they
	 * listened): a server without connections has nothing to do. */
	if (!nconns) {
		v->stopping = true;
		return 0;
	}
	close_control(v);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl))
		return -errno;
	plan_server(s, v, ctl[1], &plan);
	v->pid = sup_standby_take_over(s, v, &plan, &events[0]);
	standby = v->pid > 0;
	if (!standby) {
		if (pipe2(events, O_CLOEXEC)) {
			close(ctl[0]);
			close(ctl[1]);
			return -errno;
		}
		v->pid = fork();
		if (v->pid < 0) {
			int err = -errno;

			close(events[0]);
			close(events[1]);
			close(ctl[0]);
			close(ctl[1]);
			v->pid = 0;
			return err;
		}
		if (v->pid == 0)
			exec_server(s, v, &plan, events[1]);
		close(events[1]);
	}
	close(ctl[1]);
	v->ctl_fd = ctl[0];
	fcntl(events[0], F_SETFL, O_NONBLOCK);
	sup_stream_init(&v->events, events[0], -1, sup_server_event_line, v);
	sup_stream_watch(s, &v->events, SUP_TAG(SUP_TAG_SEVENT, v->id));
	/* The server holds its ends now; ours would keep connections open after it dies. */
	for (unsigned c = 0; c < v->nconns; c++) {
		close(v->conns[c].fd);
		v->conns[c].fd = -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &v->started);
	sup_event(s, "server_start", NULL, "\"server\":\"%s\",\"class\":\"%s\",\"pid\":%d,"
		  "\"connections\":%u,\"standby\":%s", v->cfg->name,
		  bh_class_names[v->cfg->class], (int)v->pid, nconns, standby ? "true" : "false");
	sup_standby_plan(v, standby);
	return 0;
}

static int64_t ms_between(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* Tells a partition's monitor about device `dev`: a new connection (fd >= 0) or that
 * its server is gone for good (fd < 0). */
/* One control message of LEN bytes on SOCK, with FD attached when it is not -1 (the
 * monitors' and the servers' control channels). Returns sendmsg's result. */
static ssize_t send_msg_fd(int sock, const void *msg, size_t len, int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = control;
		mh.msg_controllen = sizeof(control);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void tell_monitor(struct sup_partition *p, unsigned dev, int fd)
{
	struct bh_control_msg m = { .magic = BH_CONTROL_MAGIC, .device = dev,
		.type = fd >= 0 ? BH_CONTROL_RECONNECT : BH_CONTROL_FAILED };

	if (p->state != SUP_RUNNING || p->ctl_fd < 0)
		return;
	send_msg_fd(p->ctl_fd, &m, sizeof(m), fd);
}

/* New socket pairs for every connection of the server: its ends go to the new process,
 * the other ends to the monitors, which resubmit what the dead server had in flight.
 * QEMU partitions get new connections to their sockets instead. */
static int restart_server(struct sup *s, struct sup_server *v)
{
	int rc;

	for (unsigned c = 0; c < v->nconns; c++) {
		struct sup_conn *cn = &v->conns[c];
		int sv[2];

		if (cn->qemu) {
			/* connected already when its QEMU has just started again */
			if (cn->fd < 0)
				cn->fd = sup_qemu_reconnect(s, v, cn);
			continue;
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return -errno;
		cn->fd = sv[1];
		if (s->parts[cn->part].want_conns) {
			int *mine = &s->parts[cn->part].dev_fd[cn->dev];

			if (*mine >= 0)
				close(*mine);
			*mine = sv[0];          /* for the monitor about to start */
			continue;
		}
		tell_monitor(&s->parts[cn->part], cn->dev, sv[0]);
		close(sv[0]);
	}
	v->restarts++;
	rc = start_server(s, v);
	if (!rc)
		sup_event(s, "server_restart", NULL, "\"server\":\"%s\",\"restarts\":%u,"
			  "\"backoff_ms\":%u", v->cfg->name, v->restarts, v->backoff_ms);
	return rc;
}

static void fail_server(struct sup *s, struct sup_server *v, const char *why)
{
	v->failed = true;
	for (unsigned c = 0; c < v->nconns; c++)
		tell_monitor(&s->parts[v->conns[c].part], v->conns[c].dev, -1);
	sup_event(s, "server_failed", NULL, "\"server\":\"%s\",\"reason\":\"%s\"",
		  v->cfg->name, why);
	fprintf(stderr, "bulkhead run: I/O server '%s' %s; its devices need a reset\n",
		v->cfg->name, why);
}

int sup_servers_tick(struct sup *s)
{
	struct timespec now;
	int next = -1;

	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];

		if (!v->waiting || s->stop_signal)
			continue;
		if (!sup_qemu_connect_waiting(s, v)) {
			next = SRV_QEMU_POLL_MS;
			continue;
		}
		v->waiting = false;
		/* a running server: a QEMU partition started again, so replace it */
		if (v->pid > 0 ? replace_server(s, v, "partition_restart") : start_server(s, v))
			fail_server(s, v, "could not be started");
		sup_qemu_sock_dir_remove(s, false);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];
		int64_t wait;

		if (!v->restart_at.tv_sec)
			continue;
		wait = ms_between(&now, &v->restart_at);
		if (wait > 0) {
			next = next < 0 || wait < next ? (int)wait : next;
			continue;
		}
		v->restart_at.tv_sec = 0;
		if (restart_server(s, v))
			fail_server(s, v, "could not be restarted");
	}
	{
		int standby = sup_standby_tick(s, &now);

		if (standby >= 0 && (next < 0 || standby < next))
			next = standby;
	}
	return next;
}

/* Every server that serves monitors only; those with QEMU partitions among their
 * frontends start from sup_servers_tick once the partitions' QEMUs listen. */
int sup_start_servers(struct sup *s)
{
	for (unsigned i = 0; i < s->nservers; i++) {
		int rc = s->servers[i].waiting ? 0 : start_server(s, &s->servers[i]);
		if (rc)
			return rc;
	}
	return 0;
}

void sup_server_exited(struct sup *s, struct sup_server *v, int wstatus)
{
	/* A supervised server ends by itself, with status 0, when its last connection has
	 * closed: every monitor it served is gone, so nothing is lost. */
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
		v->stopping = true;
	sup_stream_drain(&v->events);
	sup_stream_close(s, &v->events);
	sup_counters_fold(s, v);
	v->pid = 0;
	close_control(v);
	if (WIFEXITED(wstatus))
		sup_event(s, "server_exit", NULL, "\"server\":\"%s\",\"status\":%d,\"expected\":%s",
			  v->cfg->name, WEXITSTATUS(wstatus), v->stopping ? "true" : "false");
	else
		sup_event(s, "server_exit", NULL, "\"server\":\"%s\",\"signal\":%d,\"expected\":%s",
			  v->cfg->name, WTERMSIG(wstatus), v->stopping ? "true" : "false");
	if (v->stopping || s->stop_signal)
		return;
	if (v->cfg->restart == BH_RESTART_NEVER) {
		fail_server(s, v, "ended and has 'restart: never'");
		return;
	}
	/* Restart at once after a long life; back off while it keeps dying young. */
	{
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ms_between(&v->started, &now) >= SRV_STABLE_MS)
			v->backoff_ms = 0;
		else
			v->backoff_ms = v->backoff_ms ? 2 * v->backoff_ms : SRV_BACKOFF_MIN_MS;
		if (v->backoff_ms > SRV_BACKOFF_MAX_MS)
			v->backoff_ms = SRV_BACKOFF_MAX_MS;
		v->restart_at = now;
		v->restart_at.tv_nsec += (long)v->backoff_ms * 1000000L;
		v->restart_at.tv_sec += v->restart_at.tv_nsec / 1000000000L;
		v->restart_at.tv_nsec %= 1000000000L;
		if (!v->restart_at.tv_sec)
			v->restart_at.tv_sec = 1;     /* tv_sec 0 means "none pending" */
	}
}

void sup_stop_servers(struct sup *s)
{
	for (unsigned i = 0; i < s->nservers; i++) {
		s->servers[i].stopping = true;
		s->servers[i].waiting = false;
		if (s->servers[i].pid > 0)
			kill(s->servers[i].pid, SIGTERM);
		sup_standby_stop(&s->servers[i]);
	}
	for (unsigned i = 0; i < s->nparts; i++)
		for (unsigned d = 0; d < BH_MAX_DEVICES; d++)
			if (s->parts[i].vu_fd[d] >= 0) {
				close(s->parts[i].vu_fd[d]);
				s->parts[i].vu_fd[d] = -1;
			}
	sup_qemu_sock_dir_remove(s, true);
}

bool sup_servers_stopped(const struct sup *s)
{
	for (unsigned i = 0; i < s->nservers; i++)
		if (s->servers[i].pid > 0 || s->servers[i].standby.pid > 0)
			return false;
	return true;
}

/* How long a server asked to end by the operator has before SIGKILL; it ends at its
 * next loop turn, in milliseconds here. */
#define SRV_TERM_GRACE_MS   1000

/* Waits up to ms for pid to end; true when it did (*wstatus set). */
static bool reap_within(pid_t pid, int *wstatus, int ms)
{
	for (int waited = 0;; waited++) {
		pid_t r = waitpid(pid, wstatus, WNOHANG);

		if (r == pid)
			return true;
		if ((r < 0 && errno != EINTR) || waited >= ms)
			return false;
		usleep(1000);
	}
}

/* Ends the server's process (SIGTERM, SIGKILL after SRV_TERM_GRACE_MS), reaped here so
 * that sup_server_exited never sees it, and starts it again on new connections: the
 * monitors resume their devices as after a crash. reason names who asked. */
static int replace_server(struct sup *s, struct sup_server *v, const char *reason)
{
	int wstatus = 0, rc;

	if (v->pid > 0) {
		pid_t pid = v->pid;

		kill(pid, SIGTERM);
		if (!reap_within(pid, &wstatus, SRV_TERM_GRACE_MS)) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
				;
		}
		v->pid = 0;
		close_control(v);
		sup_stream_drain(&v->events);     /* as sup_server_exited does */
		sup_stream_close(s, &v->events);
		sup_counters_fold(s, v);
		sup_event(s, "server_exit", NULL, "\"server\":\"%s\",\"%s\":%d,"
			  "\"expected\":true,\"reason\":\"%s\"", v->cfg->name,
			  WIFEXITED(wstatus) ? "status" : "signal",
			  WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus), reason);
	}
	v->restart_at.tv_sec = 0;        /* a restart waiting for its backoff happens now */
	v->backoff_ms = 0;
	v->failed = false;
	v->stopping = false;             /* it may have ended with its last connection */
	rc = restart_server(s, v);
	if (rc)
		fail_server(s, v, "could not be restarted");
	return rc;
}

/* `bulkhead ctl restart SERVER`, an operator's action: it applies whatever the server's
 * `restart` policy, and to a failed server too. Devices a failed server left
 * NEEDS_RESET are reconnected but stay so until the guest resets them. */
int sup_operator_restart_server(struct sup *s, struct sup_server *v)
{
	if (v->stopping || s->stop_signal)
		return -ECANCELED;
	sup_event(s, "operator_restart", NULL, "\"server\":\"%s\"", v->cfg->name);
	return replace_server(s, v, "operator");
}

/* Sends a REPLACE for the server's connection slot, fd its new socket, and waits for
 * the answer: 0 once the server serves it, else -errno (the server's refusal, or no
 * answer: a server that is ending, or stuck). */
static int send_replace(struct sup_server *v, int slot, int fd)
{
	struct bh_iosctl_msg m = { .magic = BH_IOSCTL_MAGIC, .type = BH_IOSCTL_REPLACE,
				   .conn = (uint32_t)slot };
	struct pollfd pfd = { .fd = v->ctl_fd, .events = POLLIN };
	struct bh_iosctl_msg r;
	ssize_t got;

	if (send_msg_fd(v->ctl_fd, &m, sizeof(m), fd) != (ssize_t)sizeof(m))
		return -errno;
	for (;;) {
		int n = poll(&pfd, 1, SRV_CTL_REPLY_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ETIMEDOUT;
		got = recv(v->ctl_fd, &r, sizeof(r), MSG_DONTWAIT);
		if (got <= 0)
			return got ? -errno : -ECONNRESET;    /* ended before it read ours */
		if (got == (ssize_t)sizeof(r) && r.magic == BH_IOSCTL_MAGIC &&
		    r.type == BH_IOSCTL_REPLY && r.conn == (uint32_t)slot)
			return r.status > 0 ? -EPROTO : r.status;
	}
}

/* A running server gives the partition's devices new connections without stopping:
 * its other partitions see nothing. -ESRCH when it is not running (or about to be
 * started again); any error leaves the caller to replace the server. */
static int replace_conns(struct sup *s, struct sup_server *v, struct sup_partition *p)
{
	if (v->pid <= 0 || v->ctl_fd < 0 || v->stopping || v->restart_at.tv_sec)
		return -ESRCH;
	for (unsigned c = 0; c < v->nconns; c++) {
		const struct sup_conn *cn = &v->conns[c];
		int sv[2], rc;

		if (cn->part != p->id)
			continue;
		if (cn->slot < 0 || cn->qemu)
			return -ESRCH;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return -errno;
		rc = send_replace(v, cn->slot, sv[1]);
		close(sv[1]);
		if (rc) {
			close(sv[0]);
			return rc;
		}
		if (p->dev_fd[cn->dev] >= 0)
			close(p->dev_fd[cn->dev]);
		p->dev_fd[cn->dev] = sv[0];       /* for the monitor about to start */
		sup_event(s, "server_conn_replaced", p->cfg->name, "\"server\":\"%s\","
			  "\"device\":%u,\"conn\":%d", v->cfg->name, cn->dev, cn->slot);
	}
	return 0;
}

int sup_servers_reconnect(struct sup *s, struct sup_partition *p)
{
	bool done[BH_MAX_SERVERS] = { false };
	int rc = 0;

	for (unsigned d = 0; d < p->cfg->ndevices; d++)
		if (s->servers[p->cfg->devices[d].server.idx].failed)
			return -ENOTCONN;
	if (p->cfg->engine == BH_ENGINE_QEMU)
		return sup_qemu_reconnect_later(s, p);
	p->want_conns = true;
	for (unsigned d = 0; d < p->cfg->ndevices && !rc; d++) {
		unsigned idx = (unsigned)p->cfg->devices[d].server.idx;
		struct sup_server *v = &s->servers[idx];

		if (done[idx])
			continue;
		done[idx] = true;
		rc = replace_conns(s, v, p);
		if (!rc)
			continue;
		if (rc != -ESRCH)
			sup_event(s, "server_conn_replace_failed", p->cfg->name, "\"server\":\"%s\","
				  "\"reason\":\"%s\"", v->cfg->name, strerror(-rc));
		rc = replace_server(s, v, "partition_restart");
	}
	p->want_conns = false;
	return rc;
}
