/*
 * Connections: one vhost-user socket, one device. Creating one from its spec, resetting
 * it, breaking it when its driver corrupts a ring (NEEDS_RESET: the device stops, the
 * others go on), and closing it when its frontend goes away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

/* How long a frontend may take to finish a message, or to make room for a reply. */
#define VU_RECV_TIMEOUT_S 2

static void vu_dev_readable(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct vu_dev *d = (struct vu_dev *)((char *)w - offsetof(struct vu_dev, sock_watch));
	int rc;

	if (d->dead)
		return;
	rc = vu_dev_message(d);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		vu_dev_close(d);
	} else if (rc) {
		ios_log(s, d, "vhost-user connection dropped: %s", strerror(-rc));
		vu_dev_close(d);
	}
}

int vu_dev_new(struct ios *s, const struct ios_conn_spec *spec, struct vu_dev **out)
{
	struct timeval tv = { .tv_sec = VU_RECV_TIMEOUT_S };
	struct vu_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->s = s;
	d->sock = spec->fd;
	d->conn = -1;
	snprintf(d->partition, sizeof(d->partition), "%s", spec->partition);
	d->device = spec->device;
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++)
		vu_queue_init(d, &d->q[i], i);
	/* A frontend that stops in the middle of a message, or stops reading replies,
	 * must not stall the server: it loses its connection instead. */
	setsockopt(d->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(d->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rc = s->ops->dev_init ? s->ops->dev_init(d, spec) : 0;
	if (rc) {
		free(d);
		return rc;
	}
	d->sock_watch.fd = d->sock;
	d->sock_watch.fn = vu_dev_readable;
	rc = ios_watch_add(s, &d->sock_watch, EPOLLIN);
	if (rc) {
		if (s->ops->dev_fini)
			s->ops->dev_fini(d);
		free(d);
		return rc;
	}
	d->next = s->devs;
	s->devs = d;
	s->ndevs++;
	*out = d;
	return 0;
}

/* reason: a vring_error_name(), or "bad_inflight" (an inflight region that cannot be
 * right for the ring it is given with). */
void vu_dev_fail_reason(struct vu_dev *d, struct vu_queue *vq, const char *reason)
{
	static const uint64_t one = 1;

	if (d->broken)
		return;
	d->broken = true;
	for (unsigned i = 0; i < d->s->ops->nqueues; i++)
		if (d->q[i].err_fd >= 0 && write(d->q[i].err_fd, &one, sizeof(one)) < 0) {
			/* the supervisor has the event line anyway */
		}
	ios_event_dev(d, "device_error", reason, vq ? (int)vq->index : -1);
	ios_log(d->s, d, "queue %d: corrupt ring (%s): device needs reset",
		vq ? (int)vq->index : -1, reason);
}

void vu_dev_fail(struct vu_dev *d, struct vu_queue *vq, enum vring_error e)
{
	vu_dev_fail_reason(d, vq, vring_error_name(e));
}

void vu_dev_close(struct vu_dev *d)
{
	struct ios *s = d->s;

	if (d->dead)
		return;
	if (s->ops->drain)
		s->ops->drain(d);
	d->dead = true;
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++)
		vu_queue_close_fds(&d->q[i]);
	ios_watch_del(s, &d->sock_watch);
	ios_event_dev(d, "disconnect", NULL, -1);
	s->reap = true;
}

void vu_dev_free(struct vu_dev *d)
{
	struct ios *s = d->s;

	for (struct vu_dev **p = &s->devs; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	s->ndevs--;
	if (d->conn >= 0 && s->conn_dev[d->conn] == d)
		s->conn_dev[d->conn] = NULL;
	ios_counters_report(d, true);
	if (s->ops->dev_fini)
		s->ops->dev_fini(d);
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++)
		vu_queue_close_fds(&d->q[i]);
	vu_mem_clear(&d->mem);
	vu_inflight_unmap(&d->infl);
	close(d->sock);
	free(d);
}
