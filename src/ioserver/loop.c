/*
 * The server's one event loop: round-robin batches over every running ring, the class's
 * asynchronous I/O, one notification per ring; then polling for poll_ns (a wake-up costs
 * far more than a spin here) before re-enabling notifications, re-checking and sleeping.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

#define IOS_EVENTS 32
#define IOS_NOFD_POLL_MS 1        /* sleep bound while a ring has no kick fd */

int ios_watch_add(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

int ios_watch_mod(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(s->epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

void ios_watch_del(struct ios *s, struct ios_watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

static uint64_t ios_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The first device goes last: the next round starts with another one. */
static void ios_rotate(struct ios *s)
{
	struct vu_dev *first = s->devs, **tail;

	if (!first || !first->next)
		return;
	s->devs = first->next;
	for (tail = &s->devs; *tail; tail = &(*tail)->next)
		;
	*tail = first;
	first->next = NULL;
}

/* Rounds over every ready ring, IOS_BATCH chains each, until none has more; the class
 * submits between rounds so the first requests start early. Returns the work done. */
static unsigned ios_process(struct ios *s)
{
	unsigned total = 0;
	bool more;

	do {
		more = false;
		for (struct vu_dev *d = s->devs; d; d = d->next)
			for (unsigned i = 0; i < s->ops->nqueues; i++) {
				struct vu_queue *vq = &d->q[i];
				unsigned n;

				if (!vu_queue_ready(vq))
					continue;
				n = s->ops->handle(d, vq, IOS_BATCH);
				total += n;
				more |= n >= IOS_BATCH;
			}
		ios_rotate(s);
		if (s->ops->io_poll) {
			int done = s->ops->io_poll(s);

			if (done > 0)
				total += (unsigned)done;
		}
	} while (more);
	for (struct vu_dev *d = s->devs; d; d = d->next)
		for (unsigned i = 0; i < s->ops->nqueues; i++)
			vu_queue_notify(&d->q[i]);
	return total;
}

/* Notifications on (before sleeping) or off (while polling) on every ready ring. */
static void ios_set_notify_all(struct ios *s, bool enable)
{
	s->any_poll_kick = false;
	for (struct vu_dev *d = s->devs; d; d = d->next)
		for (unsigned i = 0; i < s->ops->nqueues; i++) {
			vu_queue_set_notify(&d->q[i], enable);
			s->any_poll_kick |= d->q[i].poll_kick && vu_queue_ready(&d->q[i]);
		}
}

/* Frees the devices whose frontends went away during the turn. A supervised server has
 * nobody left to serve once every connection it was given is gone. */
static void ios_reap(struct ios *s)
{
	struct vu_dev *d = s->devs, *next;

	s->reap = false;
	for (; d; d = next) {
		next = d->next;
		if (d->dead)
			vu_dev_free(d);
	}
	if (s->listen_fd < 0 && !s->ndevs)
		s->stop = true;
}

static void ios_dispatch(struct ios *s, int timeout_ms)
{
	struct epoll_event ev[IOS_EVENTS];
	int n = epoll_wait(s->epfd, ev, IOS_EVENTS, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct ios_watch *w = ev[i].data.ptr;

		w->fn(s, w, ev[i].events);
	}
	ios_control_apply(s);
	if (s->reap)
		ios_reap(s);
}

int ios_run(struct ios *s)
{
	uint64_t last_work = ios_now_ns();

	while (!s->stop) {
		unsigned work = ios_process(s);
		uint64_t now = ios_now_ns();
		int report_ms = ios_counters_tick(s, now), sleep_ms;

		if (work)
			last_work = now;
		if (work || now - last_work < s->poll_ns) {
			ios_dispatch(s, 0);        /* still polling: only look at messages */
			continue;
		}
		/* Going to sleep: ask drivers to kick, then look once more, since one may
		 * have added work before it could see the request. */
		ios_set_notify_all(s, true);
		if (ios_process(s)) {
			ios_set_notify_all(s, false);
			last_work = ios_now_ns();
			continue;
		}
		/* asleep until a kick or message, or the devices' next counters report */
		sleep_ms = s->any_poll_kick ? IOS_NOFD_POLL_MS : -1;
		if (report_ms >= 0 && (sleep_ms < 0 || report_ms < sleep_ms))
			sleep_ms = report_ms;
		ios_dispatch(s, sleep_ms);
		ios_set_notify_all(s, false);
		last_work = ios_now_ns();
	}
	return 0;
}
