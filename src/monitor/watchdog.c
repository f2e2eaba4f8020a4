/*
 * The partition's watchdog (--watchdog NS): armed by the guest's first kick on the
 * system-control port, it then wants a kick at least every NS nanoseconds of wall-clock
 * time. A timerfd on the I/O thread fires at the last kick plus the period; a miss is
 * a `watchdog` event and stops the partition as a fault (exit status 1), or, with
 * --on-watchdog ignore, is reported and the watchdog waits for the next kick to re-arm.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "monitor/mon.h"

#define NS_PER_SEC UINT64_C(1000000000)
#define NS_PER_MS  UINT64_C(1000000)

static uint64_t wd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Fire at an absolute CLOCK_MONOTONIC time (at once when it has passed). */
static void wd_arm(struct mon *m, uint64_t deadline_ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(deadline_ns / NS_PER_SEC),
						.tv_nsec = (long)(deadline_ns % NS_PER_SEC) } };

	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;        /* all zeroes would disarm it */
	timerfd_settime(m->watchdog.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* vCPU thread: a write to BH_SYSCTL_WATCHDOG. Cheap after the first: a clock read and
 * two stores; only the kick that (re-)arms the watchdog makes a system call. */
void wd_kick(struct mon *m)
{
	uint64_t now = wd_now();

	__atomic_add_fetch(&m->watchdog.kicks, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&m->watchdog.last_kick_ns, now, __ATOMIC_RELEASE);
	if (m->opt->watchdog_ns &&
	    !__atomic_exchange_n(&m->watchdog.armed, true, __ATOMIC_ACQ_REL))
		wd_arm(m, now + m->opt->watchdog_ns);
}

/* No kick for more than the period since last_ns. */
static void wd_miss(struct mon *m, uint64_t last_ns, uint64_t now)
{
	uint64_t period = m->opt->watchdog_ns, silent_ms = (now - last_ns) / NS_PER_MS;
	uint64_t kicks = __atomic_load_n(&m->watchdog.kicks, __ATOMIC_RELAXED), again;

	m->watchdog.misses++;
	if (m->opt->watchdog_ignore) {
		if (m->watchdog.misses <= WD_IGNORED_REPORTS)
			ev_emit(m, "watchdog", "\"period_ns\":%" PRIu64 ",\"kicks\":%" PRIu64
				",\"silent_ms\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"action\":\"ignored\"",
				period, kicks, silent_ms, m->watchdog.misses);
		/* Disarmed until the next kick. One that came since last_ns may have found the
		 * watchdog still armed and left the timer alone: arm it for that one here. */
		__atomic_store_n(&m->watchdog.armed, false, __ATOMIC_RELEASE);
		again = __atomic_load_n(&m->watchdog.last_kick_ns, __ATOMIC_ACQUIRE);
		if (again != last_ns &&
		    !__atomic_exchange_n(&m->watchdog.armed, true, __ATOMIC_ACQ_REL))
			wd_arm(m, again + period);
		return;
	}
	ev_emit(m, "watchdog", "\"period_ns\":%" PRIu64 ",\"kicks\":%" PRIu64 ",\"silent_ms\":%"
		PRIu64 ",\"misses\":%" PRIu64 ",\"action\":\"stop\"", period, kicks, silent_ms,
		m->watchdog.misses);
	fprintf(stderr, "bulkhead monitor: %s: watchdog: no kick for %" PRIu64 " ms (period %"
		PRIu64 " ms)\n", m->opt->name, silent_ms, period / NS_PER_MS);
	/* The vCPU may be in KVM_RUN in a loop that never exits to us: ending the process
	 * from here stops it at once, with the status of a fault. Nothing needs cleaning
	 * up, as at the end of mon_cmd_monitor (UART bytes and events are written raw). */
	_exit(MON_EXIT_FAULT);
}

/* I/O thread: the timer fired at the last kick it knew of plus the period. */
static void wd_expired(struct iot_source *s, uint32_t events)
{
	struct mon *m = s->opaque;
	uint64_t ticks, last, now;

	(void)events;
	if (read(m->watchdog.tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;                          /* re-armed before we read it */
	last = __atomic_load_n(&m->watchdog.last_kick_ns, __ATOMIC_ACQUIRE);
	now = wd_now();
	if (now - last <= m->opt->watchdog_ns) {
		wd_arm(m, last + m->opt->watchdog_ns);   /* kicked since: the deadline moved */
		return;
	}
	wd_miss(m, last, now);
}

/* Before the sandbox: the timer, unarmed, on the I/O thread. */
int wd_watch(struct mon *m)
{
	if (!m->opt->watchdog_ns)
		return 0;
	m->watchdog.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->watchdog.tfd < 0)
		return -errno;
	m->watchdog.src = (struct iot_source){ m->watchdog.tfd, wd_expired, m };
	return iot_add(&m->iot, &m->watchdog.src, EPOLLIN);
}
