/*
 * Hot standby I/O servers (`standby: true`): a second `bulkhead ioserver CLASS
 * --standby-fd 4` process, exec'd ahead of need and blocked on a SOCK_SEQPACKET channel.
 * When the server must start again, the supervisor sends the standby what a fork + exec
 * would have given it (one message: the argument vector and every descriptor with its
 * number, the plan of ioserver.c) and the standby becomes the server; a new standby is
 * started a little later. The wire format is in include/bulkhead/control.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "supervisor/sup.h"

/* A replacement standby waits this long after a take-over, so that its exec does not
 * compete for the CPU with the server recovering the devices. */
#define STANDBY_AFTER_TAKEOVER_MS  200
/* A standby that died (it should not) is replaced after this long. */
#define STANDBY_RETRY_MS           1000
enum { STANDBY_CHAN_FD = SRV_FIRST_FD };

static void due_in(struct sup_standby *sb, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, &sb->due);
	sb->due.tv_nsec += (long)ms * 1000000L;
	sb->due.tv_sec += sb->due.tv_nsec / 1000000000L;
	sb->due.tv_nsec %= 1000000000L;
	if (!sb->due.tv_sec)
		sb->due.tv_sec = 1;           /* tv_sec 0 means "not planned" */
}

void sup_standby_init(struct sup_server *v)
{
	v->standby = (struct sup_standby){ .chan_fd = -1, .events_r = -1 };
}

/* Closes our ends; the process, if any, is the caller's business. */
static void forget(struct sup_standby *sb)
{
	if (sb->chan_fd >= 0)
		close(sb->chan_fd);
	if (sb->events_r >= 0)
		close(sb->events_r);
	sb->chan_fd = sb->events_r = -1;
	sb->pid = 0;
}

static void exec_standby(struct sup *s, struct sup_server *v, int chan, int event_w)
{
	const char *argv[] = { "bulkhead", "ioserver", bh_class_names[v->cfg->class], "--name",
			       v->cfg->name, "--event-fd", SRV_EVENT_FD_STR, "--standby-fd",
			       "4", NULL };
	int devnull, ev, ch;

	_Static_assert(STANDBY_CHAN_FD == 4, "the --standby-fd argument above");
	sup_child_init();
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ev = sup_child_lift(event_w, STANDBY_CHAN_FD + 1);
	ch = sup_child_lift(chan, STANDBY_CHAN_FD + 1);
	if (devnull < 0 || ev < 0 || ch < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
	    dup2(ev, SRV_EVENT_FD) < 0 || dup2(ch, STANDBY_CHAN_FD) < 0)
		_exit(127);
	execv(s->self, (char *const *)argv);
	_exit(127);
}

static int spawn(struct sup *s, struct sup_server *v)
{
	struct sup_standby *sb = &v->standby;
	int chan[2], events[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan))
		return -errno;
	if (pipe2(events, O_CLOEXEC)) {
		close(chan[0]);
		close(chan[1]);
		return -errno;
	}
	sb->pid = fork();
	if (sb->pid == 0)
		exec_standby(s, v, chan[1], events[1]);
	close(chan[1]);
	close(events[1]);
	sb->chan_fd = chan[0];
	sb->events_r = events[0];
	if (sb->pid < 0) {
		int err = -errno;

		forget(sb);
		return err;
	}
	sup_event(s, "standby_start", NULL, "\"server\":\"%s\",\"pid\":%d", v->cfg->name,
		  (int)sb->pid);
	return 0;
}

void sup_standby_plan(struct sup_server *v, bool after_takeover)
{
	if (v->cfg->standby && !v->standby.pid)
		due_in(&v->standby, after_takeover ? STANDBY_AFTER_TAKEOVER_MS : 0);
}

int sup_standby_tick(struct sup *s, const struct timespec *now)
{
	int next = -1;

	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];
		struct sup_standby *sb = &v->standby;
		int64_t wait;
		int rc;

		if (!sb->due.tv_sec)
			continue;
		if (v->stopping || v->failed || s->stop_signal) {
			sb->due.tv_sec = 0;
			continue;
		}
		wait = (int64_t)(sb->due.tv_sec - now->tv_sec) * 1000 +
		       (sb->due.tv_nsec - now->tv_nsec) / 1000000;
		if (wait > 0) {
			next = next < 0 || wait < next ? (int)wait : next;
			continue;
		}
		sb->due.tv_sec = 0;
		rc = spawn(s, v);
		if (rc) {
			fprintf(stderr, "bulkhead run: I/O server '%s': cannot start its standby: "
				"%s\n", v->cfg->name, strerror(-rc));
			due_in(sb, STANDBY_RETRY_MS);
		}
	}
	return next;
}

/* One message: the header, the descriptors' numbers, then the arguments, each ended by
 * a NUL; the descriptors themselves as SCM_RIGHTS, in the same order. */
static int send_plan(int chan, const struct srv_plan *pl)
{
	static char buf[BH_STANDBY_MSG_MAX];
	static char control[CMSG_SPACE(sizeof(int) * BH_STANDBY_MAX_FDS)];
	struct bh_standby_msg h = { .magic = BH_STANDBY_MAGIC, .nfds = pl->nfds,
				    .argc = pl->argc };
	size_t len = sizeof(h) + pl->nfds * sizeof(int32_t);
	struct iovec iov = { buf, 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (pl->nfds > BH_STANDBY_MAX_FDS || len > sizeof(buf))
		return -E2BIG;
	memcpy(buf, &h, sizeof(h));
	for (unsigned i = 0; i < pl->nfds; i++) {
		int32_t dst = pl->dst[i];

		memcpy(buf + sizeof(h) + i * sizeof(dst), &dst, sizeof(dst));
	}
	for (unsigned a = 0; a < pl->argc; a++) {
		size_t n = strlen(pl->argv[a]) + 1;

		if (len + n > sizeof(buf))
			return -E2BIG;
		memcpy(buf + len, pl->argv[a], n);
		len += n;
	}
	iov.iov_len = len;
	if (pl->nfds) {
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * pl->nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * pl->nfds);
		memcpy(CMSG_DATA(cm), pl->src, sizeof(int) * pl->nfds);
	}
	return sendmsg(chan, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

pid_t sup_standby_take_over(struct sup *s, struct sup_server *v, const struct srv_plan *pl,
			    int *events_r)
{
	struct sup_standby *sb = &v->standby;
	pid_t pid = sb->pid;
	int rc;

	if (pid <= 0)
		return 0;
	rc = send_plan(sb->chan_fd, pl);
	if (rc) {
		/* It died unseen, or the plan does not fit one message: a fork + exec will do;
		 * the standby is told to go by its channel closing. */
		sup_event(s, "standby_unused", NULL, "\"server\":\"%s\",\"pid\":%d,"
			  "\"reason\":\"%s\"", v->cfg->name, (int)pid, strerror(-rc));
		kill(pid, SIGTERM);
		forget(sb);
		return 0;
	}
	*events_r = sb->events_r;
	sb->events_r = -1;
	forget(sb);
	return pid;
}

bool sup_standby_exited(struct sup *s, pid_t pid, int wstatus)
{
	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];

		if (v->standby.pid != pid)
			continue;
		forget(&v->standby);
		if (v->stopping || s->stop_signal)
			return true;
		sup_event(s, "standby_exit", NULL, "\"server\":\"%s\",\"pid\":%d,\"%s\":%d",
			  v->cfg->name, (int)pid, WIFEXITED(wstatus) ? "status" : "signal",
			  WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
		due_in(&v->standby, STANDBY_RETRY_MS);
		return true;
	}
	return false;
}

void sup_standby_stop(struct sup_server *v)
{
	v->standby.due.tv_sec = 0;
	if (v->standby.pid > 0)
		kill(v->standby.pid, SIGTERM);
	/* the pid stays until it is reaped: run waits for it like for the server */
	if (v->standby.chan_fd >= 0) {
		close(v->standby.chan_fd);
		v->standby.chan_fd = -1;
	}
}
