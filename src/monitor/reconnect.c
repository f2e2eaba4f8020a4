/*
 * A restarted I/O server takes over a paused device (RECONNECT on the control
 * socket), or the supervisor gives up on it (FAILED). The new connection gets the same
 * handshake as the first one; a started device then resumes where the dead server
 * stopped: every request the guest made is completed once, none is lost. Window mode
 * posts the monitor's outstanding chains again; shared mode has the server resubmit
 * what the inflight region says it took. Runs on the I/O thread.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor/virtio.h"

/* Whether the peer of a stream socket has closed it (rather than answering badly). */
bool vdev_peer_gone(int sock)
{
	char c;
	ssize_t n;

	if (sock < 0)
		return true;
	n = recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}

static bool vdev_any_started(const struct vdev *d)
{
	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		if (d->q[i].started)
			return true;
	return false;
}

/* Configuration bytes the guest wrote go to the new server as they went to the old
 * one (results ignored, as then). */
static void vdev_replay_config(struct vdev *d)
{
	uint64_t left = d->config_written;

	while (left) {
		unsigned off = __builtin_ctzll(left), len = 0;

		while (off + len < 64 && (left >> (off + len)) & 1)
			len++;
		vhf_set_config(d, off, len);
		left &= ~(((len == 64) ? ~0ULL : ((1ULL << len) - 1)) << off);
	}
}

/* Shared mode: the server resubmits what the inflight region says the dead one had
 * taken; its avail index starts after those. (Rings a guest reset restarted have a
 * zeroed region: they resume at the used index with nothing to resubmit.) */
static int vdev_resume_shared(struct vdev *d, unsigned *replayed, const char **why)
{
	uint16_t base[VDEV_MAX_QUEUES] = { 0 };
	uint64_t one = 1;
	int ret = 0;

	*replayed = 0;
	if (!vhf_has_inflight(d)) {
		*why = "the server cannot resubmit requests in flight "
		       "(no VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)";
		return -ENOTSUP;
	}
	ret = vif_bases(d, base, replayed, why);
	if (!ret && (ret = vdev_renew_fds(d)))
		*why = "cannot create eventfds for the new server";
	if (!ret)
		ret = vdev_start_shared(d, base, why);
	if (ret)
		return ret;
	/* Kicks the guest made while no server listened, or suppressed while the dead one
	 * was polling: the new one looks at every ring once. */
	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		if (d->q[i].started && write(d->q[i].kick_fd, &one, sizeof(one)) < 0)
			return -errno;
	return 0;
}

static int vdev_resume(struct vdev *d, unsigned *replayed, const char **why)
{
	if (d->isolation == VDEV_SHARED)
		return vdev_resume_shared(d, replayed, why);
	return win_resume(d, replayed, why);
}

/* The old connection, if the hang-up has not been seen yet, is replaced. */
static void vdev_drop_sock(struct vdev *d)
{
	if (d->sock < 0)
		return;
	iot_del(&d->m->iot, &d->sock_src[d->sock_gen & 1]);
	close(d->sock);
	d->sock = -1;
}

/* The new server broke off during the hand-over: killed again (wait for the next
 * RECONNECT) or refusing (the device needs a reset). */
static void vdev_reconnect_failed(struct vdev *d, int ret, const char *why)
{
	bool gone = vdev_peer_gone(d->sock);

	vdev_drop_sock(d);
	d->backend_dead = true;
	d->srv_rings = false;
	if (gone && ctl_up(d->m)) {
		d->conn = VDEV_CONN_PAUSED;
		ev_emit(d->m, "device", "\"device\":\"%s\",\"state\":\"paused\",\"reason\":"
			"\"the new server hung up\"", d->name);
		return;
	}
	d->conn = VDEV_CONN_DEAD;
	vdev_needs_reset(d, "server", "\"reason\":\"reconnect failed: %s (%s)\"",
			 why ? why : "the server refused", strerror(-ret));
}

void vdev_reconnect(struct vdev *d, int sock)
{
	const char *why = NULL;
	unsigned replayed = 0;
	int ret;

	pthread_mutex_lock(&d->lock);
	if (d->conn == VDEV_CONN_UP)
		vdev_server_lost(d, "replaced by a new connection");
	vdev_drop_sock(d);
	/* Watched from the start: a hang-up during the hand-over is seen once it is done. */
	d->sock = sock;
	d->sock_gen++;
	ret = vdev_watch_sock(d);
	if (ret)
		why = "cannot watch the new connection";
	else
		ret = vhf_reconnect(d, sock, &why);
	if (ret) {
		vdev_reconnect_failed(d, ret, why);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->conn = VDEV_CONN_UP;
	vdev_replay_config(d);
	if (vdev_any_started(d) && !(d->status & VIRTIO_STATUS_NEEDS_RESET)) {
		ret = vdev_resume(d, &replayed, &why);
		if (ret == -ENOTSUP) {
			/* Connected, but what was in flight is lost: the guest must reset. */
			vdev_needs_reset(d, "server", "\"reason\":\"%s\"", why);
			pthread_mutex_unlock(&d->lock);
			return;
		}
		if (ret) {
			vdev_reconnect_failed(d, ret, why);
			pthread_mutex_unlock(&d->lock);
			return;
		}
	}
	ev_emit(d->m, "device", "\"device\":\"%s\",\"state\":\"reconnected\",\"replayed\":%u",
		d->name, replayed);
	pthread_mutex_unlock(&d->lock);
}

/* The server will not come back. Device lock held. */
void vdev_failed(struct vdev *d)
{
	vdev_drop_sock(d);
	d->conn = VDEV_CONN_DEAD;
	d->backend_dead = true;
	d->srv_rings = false;
	vdev_needs_reset(d, "server", "\"reason\":\"the server failed and will not come back\"");
}
