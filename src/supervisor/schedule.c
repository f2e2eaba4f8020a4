/*
 * The cyclic executive for `scheduling: cyclic`: the plan's major frame repeats for
 * ever, and at each slot boundary the supervisor lets the slot's partition run
 * (SIGCONT to its monitor) and holds every other one (SIGSTOP), ARINC-653 style. The
 * timer is re-armed from the frame's start each time, so lateness never accumulates;
 * lateness is measured and reported in the events.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The partition whose slot covers offset (ns into the frame), or -1 in a gap. */
static int owner_at(const struct bh_system *sys, uint64_t offset)
{
	for (unsigned i = 0; i < sys->nslots; i++) {
		const struct bh_slot *sl = &sys->slots[i];
		if (offset >= sl->start_ns && offset - sl->start_ns < sl->duration_ns)
			return sl->partition.idx;
	}
	return -1;
}

/* The first slot boundary (start or end) strictly after offset, or the frame's end. */
static uint64_t next_boundary(const struct bh_system *sys, uint64_t offset)
{
	uint64_t next = sys->major_frame_ns;

	for (unsigned i = 0; i < sys->nslots; i++) {
		uint64_t a = sys->slots[i].start_ns, b = a + sys->slots[i].duration_ns;
		if (a > offset && a < next)
			next = a;
		if (b > offset && b < next)
			next = b;
	}
	return next;
}

static void signal_partition(struct sup *s, int idx, int sig)
{
	if (idx >= 0 && s->parts[idx].pid > 0)
		kill(s->parts[idx].pid, sig);
}

static void arm(struct sup *s, uint64_t when)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(when / 1000000000ULL),
						.tv_nsec = (long)(when % 1000000000ULL) } };
	timerfd_settime(s->sched.tfd, TFD_TIMER_ABSTIME, &its, NULL);
	s->sched.due_ns = when;
}

/* Applies the plan at the current time and arms the timer for the next boundary. */
void sup_sched_tick(struct sup *s)
{
	const struct bh_system *sys = s->sys;
	uint64_t now = now_ns(), offset, frame_start, late;
	uint64_t expirations;
	int owner;

	if (read(s->sched.tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	if (s->sched.due_ns && now > s->sched.due_ns) {
		late = now - s->sched.due_ns;
		if (late > s->sched.late_max_ns)
			s->sched.late_max_ns = late;
		s->sched.late_sum_ns += late;
	}
	offset = (now - s->sched.epoch_ns) % sys->major_frame_ns;
	frame_start = now - offset;
	owner = owner_at(sys, offset);
	if (owner != s->sched.active) {
		signal_partition(s, s->sched.active, SIGSTOP);
		signal_partition(s, owner, SIGCONT);
		s->sched.active = owner;
		s->sched.switches++;
	}
	arm(s, frame_start + next_boundary(sys, offset));
}

int sup_sched_start(struct sup *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SUP_TAG(SUP_TAG_SCHED, 0) };

	s->sched.active = -1;
	s->sched.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->sched.tfd < 0)
		return -errno;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sched.tfd, &ev))
		return -errno;
	s->sched.epoch_ns = now_ns();
	arm(s, s->sched.epoch_ns);
	return 0;
}

/* A monitor about to be started: may it run now? */
bool sup_sched_may_run(const struct sup *s, const struct sup_partition *p)
{
	return s->sys->scheduling != BH_SCHED_CYCLIC || s->sched.active == (int)p->id;
}

void sup_sched_stop(struct sup *s)
{
	if (s->sys->scheduling != BH_SCHED_CYCLIC || s->sched.tfd < 0)
		return;
	sup_event(s, "schedule", NULL, "\"switches\":%llu,\"late_max_us\":%.1f,"
		  "\"late_mean_us\":%.1f", (unsigned long long)s->sched.switches,
		  (double)s->sched.late_max_ns / 1e3,
		  s->sched.switches ? (double)s->sched.late_sum_ns / 1e3 / (double)s->sched.switches
				    : 0.0);
	close(s->sched.tfd);
	s->sched.tfd = -1;
}
