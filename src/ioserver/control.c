/*
 * The supervisor's control channel of a supervised server (`--control-fd`, a
 * SOCK_SEQPACKET socket; messages in include/bulkhead/control.h). Its one request
 * replaces a connection: when a partition starts again, its new monitor gets a new
 * socket for each device while the server, and every other partition on it, goes on.
 * The channel is the supervisor's, but a message is still checked like any input: a
 * bad one is refused, reported and changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "common/json_quote.h"
#include "ioserver/ioserver.h"

/* Room for more descriptors than a REPLACE may carry, so that too many are seen (and
 * closed) rather than cut off by the kernel. */
#define CTL_MAX_FDS 8

static void ctl_reply(struct ios *s, unsigned conn, int status)
{
	struct bh_iosctl_msg m = { .magic = BH_IOSCTL_MAGIC, .type = BH_IOSCTL_REPLY,
				   .conn = conn, .status = status };

	if (s->ctl_fd >= 0 && send(s->ctl_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		ios_log(s, NULL, "control: cannot reply: %s", strerror(errno));
}

/* `control` events: what the channel asked and how it went (ok false: refused). */
static void ctl_event(struct ios *s, unsigned conn, const char *result, const char *why)
{
	char name[IOS_NAME_MAX * 6 + 3], part[IOS_NAME_MAX * 6 + 3] = "null", line[512];
	int n;

	if (json_quote(name, sizeof(name), s->name) < 0 ||
	    (conn < s->nconns && json_quote(part, sizeof(part), s->conns[conn].partition) < 0))
		return;
	n = snprintf(line, sizeof(line), "{\"event\":\"%s\",\"server\":%s,\"conn\":%u,"
		     "\"partition\":%s", result, name, conn, part);
	if (conn < s->nconns && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"device\":%u",
			      s->conns[conn].device);
	if (why && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"reason\":\"%s\"", why);
	if (n <= 0 || (size_t)n > sizeof(line) - 3)
		return;
	memcpy(line + n, "}\n", 3);
	ios_event_write(s, line, (size_t)n + 2);
}

static void ctl_refuse(struct ios *s, unsigned conn, int err, const char *why)
{
	ctl_event(s, conn, "control_refused", why);
	ios_log(s, NULL, "control: message refused: %s", why);
	ctl_reply(s, conn, err);
}

/* The supervisor is gone (or closed its end): the server goes on without it. */
static void ctl_closed(struct ios *s)
{
	ios_watch_del(s, &s->ctl_watch);
	close(s->ctl_fd);
	s->ctl_fd = -1;
}

/* What is wrong with a message, or NULL; *err the status to answer with. */
static const char *ctl_check(struct ios *s, const struct msghdr *mh, ssize_t got,
			     const struct bh_iosctl_msg *m, int nfds, int fd, int *err)
{
	*err = -EINVAL;
	if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC) || got != (ssize_t)sizeof(*m))
		return "bad_length";
	if (m->magic != BH_IOSCTL_MAGIC || m->type != BH_IOSCTL_REPLACE)
		return "bad_type";
	if (m->conn >= s->nconns) {
		*err = -ERANGE;
		return "bad_conn";
	}
	if (nfds != 1) {
		*err = -EBADF;
		return nfds ? "too_many_fds" : "no_fd";
	}
	if (!ios_fd_is_stream_socket(fd)) {
		*err = -ENOTSOCK;
		return "not_a_stream_socket";
	}
	if (s->ctl_new_fd >= 0) {
		*err = -EBUSY;
		return "busy";
	}
	return NULL;
}

static void ctl_readable(struct ios *s, struct ios_watch *w, uint32_t events)
{
	char control[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
	struct bh_iosctl_msg m = { 0 };
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	int fds[CTL_MAX_FDS], nfds = 0, err;
	const char *why;
	ssize_t got;

	got = recvmsg(s->ctl_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		ctl_closed(s);
		return;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (n > CTL_MAX_FDS - nfds)
			n = CTL_MAX_FDS - nfds;
		memcpy(fds + nfds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
		nfds += n;
	}
	why = ctl_check(s, &mh, got, &m, nfds, nfds ? fds[0] : -1, &err);
	if (why) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		ctl_refuse(s, m.conn, err, why);
		return;
	}
	s->ctl_new_fd = fds[0];
	s->ctl_conn = m.conn;
}

int ios_control_init(struct ios *s, int fd)
{
	s->ctl_fd = fd;
	s->ctl_new_fd = -1;
	if (fd < 0)
		return 0;
	s->ctl_watch.fd = fd;
	s->ctl_watch.fn = ctl_readable;
	return ios_watch_add(s, &s->ctl_watch, EPOLLIN);
}

/* The connection's device goes as if its frontend had hung up (its requests drained:
 * the server's own mapping keeps the dead partition's memory valid until then), and
 * the same spec is served on the new socket, as at start-up. */
void ios_control_apply(struct ios *s)
{
	unsigned k = s->ctl_conn;
	struct vu_dev *old = s->conn_dev[k], *d;
	struct ios_conn_spec spec = s->conns[k];
	int rc;

	if (s->ctl_new_fd < 0)
		return;
	spec.fd = s->ctl_new_fd;
	s->ctl_new_fd = -1;
	if (old) {
		vu_dev_close(old);
		vu_dev_free(old);
	}
	rc = vu_dev_new(s, &spec, &d);
	if (rc) {
		close(spec.fd);
		ctl_event(s, k, "control_refused", "device_setup_failed");
		ios_log(s, NULL, "control: connection %u: %s", k, strerror(-rc));
		ctl_reply(s, k, rc);
		return;
	}
	d->conn = (int)k;
	s->conn_dev[k] = d;
	ctl_event(s, k, "conn_replaced", NULL);
	ctl_reply(s, k, 0);
}
