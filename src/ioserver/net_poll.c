/*
 * The net class's work after every round of the loop: uplinks read (a TAP is not a ring
 * the loop polls), counters reported, and one timerfd set to the earliest thing a port
 * waits for (rate credit, a hold's end, the next report), so the loop can sleep.
 */
#include <stdint.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ioserver/net_port.h"

#define NET_REPORT_NS      SW_NS_PER_S

void net_timer_fired(struct ios *s, struct ios_watch *w, uint32_t events)
{
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already read; the loop looks at every ring after a wake-up anyway */
	}
}

/* When a waiting port wants looking at again: its credit, or its hold's end. Ports whose
 * ring cannot run are left alone (a drain or a reset settles them). */
static uint64_t net_port_due(const struct net_port *p)
{
	if (!p->busy || (p->d && !vu_queue_ready(&p->d->q[NET_TXQ])))
		return UINT64_MAX;
	if (p->d && !p->admitted)
		return p->wait_until;
	return p->deadline ? p->deadline : UINT64_MAX;
}

static void net_timer_arm(struct net_server *ns, uint64_t at)
{
	struct itimerspec its = { 0 };

	if (at == ns->armed_ns)
		return;
	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / SW_NS_PER_S);
		its.it_value.tv_nsec = (long)(at % SW_NS_PER_S);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (!timerfd_settime(ns->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		ns->armed_ns = at;
}

/* After every round: the uplinks read, counters reported (at most once a second per
 * port, while they change), and the timer set to the next thing to wait for. */
int net_io_poll(struct ios *s)
{
	struct net_server *ns = s->priv;
	uint64_t now = net_now_ns(), next = UINT64_MAX;
	bool changed = false;
	unsigned done = 0;

	for (struct net_port *p = ns->ports; p; p = p->next) {
		uint64_t due;

		if (!p->d)
			done += net_uplink_poll(p, now);
		due = net_port_due(p);
		if (due < next)
			next = due;
		changed |= p->sw.gen != p->reported;
	}
	if (changed && now >= ns->next_report_ns) {
		for (struct net_port *p = ns->ports; p; p = p->next)
			if (p->sw.gen != p->reported)
				net_report(p, false);
		ns->next_report_ns = now + NET_REPORT_NS;
		changed = false;
	}
	if (changed && ns->next_report_ns < next)
		next = ns->next_report_ns;
	if (ns->armed_ns <= now)
		ns->armed_ns = UINT64_MAX; /* a one-shot timer that has fired */
	net_timer_arm(ns, next);
	return (int)done;
}
