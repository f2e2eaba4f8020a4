/*
 * The supervisor's control socket (--control-fd, include/bulkhead/control.h): a unix
 * SOCK_SEQPACKET socket the I/O thread reads. RECONNECT brings a new connection to a
 * restarted I/O server for one device, FAILED says the server will not come back,
 * CONSOLE_INPUT brings bytes for the UART's receiver.
 * The supervisor is trusted, but a malformed message is refused (and reported), never
 * acted on; any descriptor that is not wanted is closed at once.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "monitor/virtio.h"

#define CTL_REPORTS_MAX 16            /* bad messages reported */
#define CTL_FDS_MAX     4             /* descriptors taken from one message, then closed */

_Static_assert(sizeof(struct bh_control_msg) == 16, "the control message is 16 bytes");

/* What one recvmsg takes: the header, and for CONSOLE_INPUT its bytes. */
struct ctl_buf {
	struct bh_control_msg hdr;
	uint8_t data[BH_CONTROL_INPUT_MAX];
};

bool ctl_up(const struct mon *m)
{
	return m->ctl.fd >= 0;
}

static void ctl_report(struct mon *m, const char *why, const struct bh_control_msg *c)
{
	if (m->ctl.reports++ >= CTL_REPORTS_MAX)
		return;
	if (c)
		ev_emit(m, "control", "\"error\":\"%s\",\"type\":%u,\"device\":%u", why, c->type,
			c->device);
	else
		ev_emit(m, "control", "\"error\":\"%s\"", why);
}

/* The supervisor is gone: nobody will reconnect a paused device, and later hang-ups
 * need a reset at once. */
static void ctl_closed(struct mon *m)
{
	iot_del(&m->iot, &m->ctl.src);
	close(m->ctl.fd);
	m->ctl.fd = -1;
	for (unsigned i = 0; i < m->nvdev; i++) {
		struct vdev *d = m->vdev[i];

		pthread_mutex_lock(&d->lock);
		if (d->conn == VDEV_CONN_PAUSED)
			vdev_failed(d);
		pthread_mutex_unlock(&d->lock);
	}
}

/* One message: its header and bytes, and at most one descriptor (*fd, -1 when none).
 * Returns 1 for a message, 0 when none is waiting, -1 when the socket is closed. Extra
 * descriptors are closed here. */
static int ctl_recv(struct mon *m, struct ctl_buf *c, ssize_t *len, int *fd)
{
	char control[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
	struct iovec iov = { c, sizeof(*c) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(m->ctl.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nfds;
		int fds[CTL_FDS_MAX];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > CTL_FDS_MAX)
			nfds = CTL_FDS_MAX;
		memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		for (size_t i = 0; i < nfds; i++) {
			if (*fd < 0)
				*fd = fds[i];
			else
				close(fds[i]);
		}
	}
	if (n == 0 && !(mh.msg_flags & MSG_TRUNC)) {
		if (*fd >= 0)
			close(*fd);
		return -1;                    /* end of stream: the supervisor closed it */
	}
	*len = (mh.msg_flags & MSG_TRUNC) ? -1 : n;
	return 1;
}

/* Bytes for the UART's receiver; what does not fit in its buffer is dropped there. */
static void ctl_console_input(struct mon *m, const struct ctl_buf *b, size_t n)
{
	if (!n) {
		ctl_report(m, "CONSOLE_INPUT without bytes", &b->hdr);
		return;
	}
	uart_input(&m->uart, b->data, n);
}

static void ctl_dispatch(struct mon *m, const struct ctl_buf *b, ssize_t len, int fd)
{
	const struct bh_control_msg *c = &b->hdr;
	struct vdev *d;

	if (len < (ssize_t)sizeof(*c) || c->magic != BH_CONTROL_MAGIC ||
	    (len != sizeof(*c) && c->type != BH_CONTROL_CONSOLE_INPUT)) {
		ctl_report(m, "not a control message", NULL);
		goto drop;
	}
	if (c->type == BH_CONTROL_CONSOLE_INPUT) {
		ctl_console_input(m, b, (size_t)len - sizeof(*c));
		goto drop;
	}
	if (c->device >= m->nvdev) {
		ctl_report(m, "no such device", c);
		goto drop;
	}
	d = m->vdev[c->device];
	switch (c->type) {
	case BH_CONTROL_RECONNECT:
		if (fd < 0) {
			ctl_report(m, "RECONNECT without a socket", c);
			return;
		}
		vdev_reconnect(d, fd);        /* takes the descriptor */
		return;
	case BH_CONTROL_FAILED:
		pthread_mutex_lock(&d->lock);
		vdev_failed(d);
		pthread_mutex_unlock(&d->lock);
		goto drop;
	default:
		ctl_report(m, "unknown message type", c);
		goto drop;
	}
drop:
	if (fd >= 0)
		close(fd);
}

static void ctl_event(struct iot_source *s, uint32_t events)
{
	struct mon *m = s->opaque;

	while (m->ctl.fd >= 0) {
		struct ctl_buf c;
		ssize_t len = 0;
		int fd, ret = ctl_recv(m, &c, &len, &fd);

		if (ret < 0) {
			ctl_closed(m);
			return;
		}
		if (!ret)
			return;
		ctl_dispatch(m, &c, len, fd);
	}
}

/* Watched by the I/O thread from the start (called before the sandbox). */
int ctl_watch(struct mon *m)
{
	if (m->ctl.fd < 0)
		return 0;
	m->ctl.src = (struct iot_source){ m->ctl.fd, ctl_event, m };
	return iot_add(&m->iot, &m->ctl.src, EPOLLIN);
}

/* Without virtio devices vdev_start_io started nothing: the I/O thread is started here
 * when the control socket (console input) or the watchdog needs it. With devices it
 * runs already and watches the socket; the watchdog's timer is added to it. */
int ctl_start(struct mon *m)
{
	bool running = m->iot.running;
	int ret = 0;

	if (!running) {
		if (m->opt->control_fd < 0 && !m->opt->watchdog_ns)
			return 0;
		ret = iot_init(&m->iot);
		m->ctl.fd = m->opt->control_fd;
		if (!ret)
			ret = ctl_watch(m);
	}
	if (!ret)
		ret = wd_watch(m);
	if (!ret && !running)
		ret = iot_start(&m->iot);
	return ret;
}
