/*
 * The monitor's I/O thread: an epoll loop over the devices' event sources, then the
 * registered pollers for a bounded spin (wake-ups cost tens of microseconds here; a
 * short spin after work catches the next request or completion without one).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "monitor/iothread.h"

#define IOT_EVENTS 16

int iot_init(struct iot *t)
{
	memset(t, 0, sizeof(*t));
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	return t->epfd < 0 ? -errno : 0;
}

int iot_add(struct iot *t, struct iot_source *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int iot_del(struct iot *t, struct iot_source *s)
{
	if (epoll_ctl(t->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int iot_add_poller(struct iot *t, iot_poll_fn fn, void *opaque)
{
	if (t->npollers == IOT_POLLERS_MAX)
		return -ENOSPC;
	t->pollers[t->npollers].fn = fn;
	t->pollers[t->npollers].opaque = opaque;
	t->npollers++;
	return 0;
}

static uint64_t iot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static bool iot_poll_once(struct iot *t)
{
	bool work = false;

	for (unsigned i = 0; i < t->npollers; i++)
		work |= t->pollers[i].fn(t->pollers[i].opaque);
	return work;
}

/* Spin over the pollers until spin_ns pass without work. */
static void iot_spin(struct iot *t)
{
	uint64_t last = iot_now();

	if (!t->npollers || !t->spin_ns)
		return;
	for (;;) {
		uint64_t now;

		if (iot_poll_once(t))
			last = iot_now();
		now = iot_now();
		if (now - last >= t->spin_ns)
			return;
		__builtin_ia32_pause();
	}
}

static void *iot_main(void *arg)
{
	struct iot *t = arg;
	struct epoll_event ev[IOT_EVENTS];

	/* The C library set the thread up (rseq and such) before calling us: only now may
	 * the sandbox, which applies to this thread too, be entered. */
	pthread_mutex_lock(&t->lock);
	t->running = true;
	pthread_cond_signal(&t->started);
	pthread_mutex_unlock(&t->lock);

	for (;;) {
		int n = epoll_wait(t->epfd, ev, IOT_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;       /* cannot happen with a valid epoll fd */
		for (int i = 0; i < n; i++) {
			struct iot_source *s = ev[i].data.ptr;

			s->fn(s, ev[i].events);
		}
		iot_spin(t);
	}
	return NULL;
}

int iot_start(struct iot *t)
{
	sigset_t all, old;
	int ret;

	/* Signals stay with the vCPU thread: the new thread starts with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->started, NULL);
	ret = pthread_create(&t->thread, NULL, iot_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	pthread_mutex_lock(&t->lock);
	while (!t->running)
		pthread_cond_wait(&t->started, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return 0;
}
