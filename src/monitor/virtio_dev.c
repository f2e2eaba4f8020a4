/*
 * Virtio devices from --device: each one's state, eventfds, server connection and
 * PCI function, created before the sandbox (nothing is allocated once the guest runs
 * but the eventfds that replace a dead server's), the I/O thread's event sources, the
 * one way a device reports trouble (the NEEDS_RESET status bit, a configuration
 * interrupt and a "device" event) and what a lost server connection does.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor/virtio.h"

#define VDEV_REPORTS_MAX    16        /* device events per device, so a guest cannot flood */

/* The device types --device knows; adding one is one line here and one file. */
static const struct vdev_type *const vdev_types[] = {
	&vdev_blk_type, &vdev_console_type, &vdev_rng_type, &vdev_net_type,
};

const struct vdev_type *vdev_type_find(const char *name)
{
	for (size_t i = 0; i < sizeof(vdev_types) / sizeof(vdev_types[0]); i++)
		if (!strcmp(vdev_types[i]->name, name))
			return vdev_types[i];
	return NULL;
}

void vdev_needs_reset(struct vdev *d, const char *cause, const char *detail_fmt, ...)
{
	char detail[512];
	va_list ap;

	if (d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	d->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	va_start(ap, detail_fmt);
	vsnprintf(detail, sizeof(detail), detail_fmt, ap);
	va_end(ap);
	if (d->reports++ < VDEV_REPORTS_MAX)
		ev_emit(d->m, "device", "\"device\":\"%s\",\"state\":\"needs_reset\","
			"\"cause\":\"%s\",%s", d->name, cause, detail);
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		vdev_irq_config(d);
}

/* Shared mode, when the queue's interrupt cannot be an irqfd: the server's call. */
static void vdev_call_event(struct iot_source *s, uint32_t events)
{
	struct vdev_queue *q = s->opaque;
	uint64_t n;

	if (read(q->irq_fd, &n, sizeof(n)) != sizeof(n))
		return;                       /* consumed by an irqfd in between */
	pthread_mutex_lock(&q->d->lock);
	vdev_irq_queue(q->d, q->index);
	pthread_mutex_unlock(&q->d->lock);
}

/* The server found one of this device's rings corrupt (it signals SET_VRING_ERR's
 * eventfd) and stopped serving it: the guest sees NEEDS_RESET, in both isolation modes,
 * so a driver that broke its own ring learns it must reset the device. */
static void vdev_err_event(struct iot_source *s, uint32_t events)
{
	struct vdev_queue *q = s->opaque;
	uint64_t n;

	if (read(q->err_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&q->d->lock);
	vdev_needs_reset(q->d, "server", "\"reason\":\"the server found the ring corrupt\","
			 "\"queue\":%u", q->index);
	pthread_mutex_unlock(&q->d->lock);
}

/* The server hung up. A stale event, for a connection a reconnect already replaced,
 * names the other source of the pair and is ignored. */
static void vdev_sock_event(struct iot_source *s, uint32_t events)
{
	struct vdev *d = s->opaque;

	pthread_mutex_lock(&d->lock);
	if (s == &d->sock_src[d->sock_gen & 1])
		vdev_server_lost(d, "server disconnected");
	pthread_mutex_unlock(&d->lock);
}

int vdev_watch_sock(struct vdev *d)
{
	struct iot_source *s = &d->sock_src[d->sock_gen & 1];

	*s = (struct iot_source){ d->sock, vdev_sock_event, d };
	return iot_add(&d->m->iot, s, EPOLLRDHUP);
}

void vdev_server_lost(struct vdev *d, const char *reason)
{
	if (d->conn != VDEV_CONN_UP)
		return;
	iot_del(&d->m->iot, &d->sock_src[d->sock_gen & 1]);
	d->backend_dead = true;
	d->srv_rings = false;
	if (!ctl_up(d->m)) {
		d->conn = VDEV_CONN_DEAD;
		vdev_needs_reset(d, "server", "\"reason\":\"%s\"", reason);
		return;
	}
	/* Paused: the guest's requests wait (in its ring, or in the monitor's shadow ring
	 * in window mode) until RECONNECT or FAILED. */
	close(d->sock);
	d->sock = -1;
	d->conn = VDEV_CONN_PAUSED;
	ev_emit(d->m, "device", "\"device\":\"%s\",\"state\":\"paused\",\"reason\":\"%s\"",
		d->name, reason);
}

static int vdev_renew(int *fd, struct iot_source *src, struct iot *t, bool watched)
{
	int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (nfd < 0)
		return -errno;
	if (watched)
		iot_del(t, src);
	close(*fd);
	*fd = nfd;
	if (src)
		src->fd = nfd;
	return watched ? iot_add(t, src, EPOLLIN) : 0;
}

/* A new server gets eventfds no earlier server had: whatever a dead one's descriptors
 * still do reaches nothing the monitor watches. (The guest-facing kick and interrupt
 * eventfds are KVM's and stay; in shared mode the server gets those.) */
int vdev_renew_fds(struct vdev *d)
{
	struct iot *t = &d->m->iot;
	int ret = 0;

	for (unsigned i = 0; i < vdev_nqueues(d) && !ret; i++) {
		struct vdev_queue *q = &d->q[i];

		ret = vdev_renew(&q->err_fd, &q->err_src, t, true);
		if (!ret && d->isolation == VDEV_WINDOW)
			ret = vdev_renew(&q->srv_kick_fd, NULL, t, false);
		if (!ret && d->isolation == VDEV_WINDOW)
			ret = vdev_renew(&q->srv_call_fd, &q->call_src, t, true);
	}
	return ret;
}

static int vdev_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(a.sun_path, path, strnlen(path, sizeof(a.sun_path) - 1));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int vdev_socket(struct vdev *d, const struct mon_device *opt, const char **why)
{
	int ret;

	d->sock = opt->fd >= 0 ? opt->fd : vdev_connect(opt->socket);
	if (d->sock < 0) {
		*why = "cannot connect to the server socket";
		return d->sock;
	}
	ret = vhf_set_timeouts(d->sock);
	if (ret)
		*why = "the server fd is not a socket";
	return ret;
}

static int vdev_queues_init(struct vdev *d)
{
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];

		q->d = d;
		q->index = i;
		q->size = VDEV_QUEUE_SIZE;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
		q->kick_fd = q->irq_fd = q->srv_kick_fd = q->srv_call_fd = q->err_fd = -1;
	}
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];

		q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->err_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick_fd < 0 || q->irq_fd < 0 || q->err_fd < 0)
			return -errno;
		q->err_src = (struct iot_source){ q->err_fd, vdev_err_event, q };
		if (iot_add(&d->m->iot, &q->err_src, EPOLLIN))
			return -errno;
		if (d->isolation == VDEV_WINDOW) {
			q->srv_kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			q->srv_call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (q->srv_kick_fd < 0 || q->srv_call_fd < 0)
				return -errno;
		} else {
			q->call_src = (struct iot_source){ q->irq_fd, vdev_call_event, q };
		}
	}
	return 0;
}

/* What the guest is offered: the transport features (all of them in window mode, where
 * the monitor serves the guest's rings; the server's in shared mode) and the device
 * features both the type and the server know. */
static void vdev_offer(struct vdev *d)
{
	uint64_t dev = d->backend_features & d->type->features;

	if (d->isolation == VDEV_WINDOW)
		d->host_features = VIRTIO_TRANSPORT_FEATURES | dev;
	else
		d->host_features = (d->backend_features & VIRTIO_TRANSPORT_FEATURES) | dev;
}

int vdev_create(struct mon *m, const struct mon_device *opt, unsigned index, const char **why)
{
	struct vdev *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->m = m;
	d->type = opt->type;
	d->index = index;
	d->slot = opt->slot;
	d->isolation = opt->shared ? VDEV_SHARED : VDEV_WINDOW;
	d->sock = -1;
	d->inflight.fd = -1;
	snprintf(d->name, sizeof(d->name), "%s@%u", d->type->name, d->slot);
	pthread_mutex_init(&d->lock, NULL);
	d->msix.nvec = vdev_nqueues(d) + 1;
	d->msix.gsi_base = VPCI_MSI_GSI_BASE + index * VDEV_MAX_VECTORS;
	for (unsigned v = 0; v < d->msix.nvec; v++)
		d->msix.e[v].ctrl = 1;        /* vectors start masked */
	d->config_vector = VIRTIO_MSI_NO_VECTOR;
	m->vdev[m->nvdev++] = d;             /* owned by the monitor from here on */
	ret = vdev_queues_init(d);
	if (ret) {
		*why = "cannot create eventfds";
		return ret;
	}
	ret = vdev_socket(d, opt, why);
	if (!ret)
		ret = vhf_setup(d, why);
	if (ret)
		return ret;
	vdev_offer(d);
	if (d->isolation == VDEV_WINDOW) {
		ret = win_create(d);
		if (ret) {
			*why = "cannot create the window";
			return ret;
		}
	}
	ret = vpci_init(d);
	if (ret) {
		*why = ret == -EBUSY ? "the PCI slot is taken" : "cannot map the BAR";
		return ret;
	}
	vdev_irq_update(d);
	return 0;
}

static void vdev_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* After a failed set-up: everything the devices hold (the process is about to exit,
 * but the sanitizers' leak check looks). */
void mon_devices_destroy(struct mon *m)
{
	for (unsigned i = 0; i < m->nvdev; i++) {
		struct vdev *d = m->vdev[i];

		for (unsigned q = 0; q < vdev_nqueues(d); q++) {
			vdev_close(d->q[q].kick_fd);
			vdev_close(d->q[q].irq_fd);
			vdev_close(d->q[q].srv_kick_fd);
			vdev_close(d->q[q].srv_call_fd);
			vdev_close(d->q[q].err_fd);
		}
		vdev_close(d->sock);
		vif_destroy(d);
		win_destroy(d);
		pthread_mutex_destroy(&d->lock);
		free(d);
		m->vdev[i] = NULL;
	}
	m->nvdev = 0;
	free(m->irq.routing);
	m->irq.routing = NULL;
	if (m->iot.epfd > 0)
		close(m->iot.epfd);
	m->iot.epfd = -1;
}

static bool vdev_kvm_ok(struct mon *m)
{
	static const int caps[] = { KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD, KVM_CAP_IRQ_ROUTING,
				    KVM_CAP_SIGNAL_MSI };

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (ioctl(m->vm_fd, KVM_CHECK_EXTENSION, caps[i]) <= 0)
			return false;
	return true;
}

/* All --device devices, in order. *who names the failing one. */
int mon_devices_setup(struct mon *m, const char **who, const char **why)
{
	int ret;

	*who = NULL;
	if (!m->opt->ndevices)
		return 0;
	m->ctl.fd = m->opt->control_fd;  /* devices negotiate what reconnecting needs */
	if (!vdev_kvm_ok(m)) {
		*why = "KVM lacks irqfd, ioeventfd, GSI routing or MSI injection";
		return -ENOTSUP;
	}
	ret = irq_init(m);
	if (!ret)
		ret = iot_init(&m->iot);
	if (!ret)
		ret = irq_routes_commit(m);
	if (ret) {
		*why = "cannot set up interrupt routing or the I/O thread";
		return ret;
	}
	for (unsigned i = 0; i < m->opt->ndevices; i++) {
		*who = m->opt->devices[i].arg;
		ret = vdev_create(m, &m->opt->devices[i], i, why);
		if (ret)
			return ret;
	}
	*who = NULL;
	return 0;
}

/* Watches the servers' sockets and (window mode) the data path, then starts the I/O
 * thread. Called last before the sandbox. */
int vdev_start_io(struct mon *m)
{
	int ret = 0;

	if (!m->nvdev)
		return 0;
	for (unsigned i = 0; i < m->nvdev && !ret; i++) {
		struct vdev *d = m->vdev[i];

		ret = vdev_watch_sock(d);
		if (!ret && d->isolation == VDEV_WINDOW)
			ret = win_watch(d);
	}
	if (!ret)
		ret = ctl_watch(m);
	if (!ret)
		ret = iot_start(&m->iot);
	return ret;
}
