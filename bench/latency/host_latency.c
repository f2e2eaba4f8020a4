/*
 * The host baseline for bench/latency: how late a Linux thread wakes from a timer, the
 * way cyclictest measures it. N times: read CLOCK_MONOTONIC, sleep with
 * clock_nanosleep(TIMER_ABSTIME) until PERIOD microseconds later, read the clock again
 * on waking; the sample is (wake-up time - deadline) in nanoseconds. Same arguments,
 * statistics and output lines as the `latency` inmate, so the two compare directly:
 *
 *   latency-host [n=N] [period=US] [cpu=N] [fifo=PRIO]
 *
 * cpu= pins the thread (as the partition's vCPU is pinned); fifo= runs it SCHED_FIFO
 * at PRIO with its memory locked (cyclictest's usual set-up) instead of SCHED_OTHER,
 * which is how bulkhead runs a vCPU thread. The timer slack is 1 ns either way.
 * Bad arguments: usage, status 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE    /* sched_setaffinity (meson's flags may define it already) */
#endif
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#define LAT_DEFAULT_N   2000u
#define LAT_MAX_N       1000000u
#define LAT_DEFAULT_US  1000u
#define LAT_MIN_US      10u
#define LAT_MAX_US      1000000u
#define LAT_STATUS_USAGE 2
#define NS_PER_S        1000000000ll

/* The inmate's buckets, so the two histograms line up. */
static const struct {
	int64_t ns;
	const char *name;
} buckets[] = {
	{ 1000, "1us" }, { 2000, "2us" }, { 5000, "5us" }, { 10000, "10us" },
	{ 20000, "20us" }, { 50000, "50us" }, { 100000, "100us" }, { 200000, "200us" },
	{ 500000, "500us" }, { 1000000, "1ms" }, { 2000000, "2ms" }, { 5000000, "5ms" },
	{ 10000000, "10ms" },
};
#define NR_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static int usage(void)
{
	fprintf(stderr, "usage: latency-host [n=N] [period=US] [cpu=N] [fifo=PRIO]\n"
		"  n=N        samples, 1..%u (default %u)\n"
		"  period=US  time from reading the clock to the deadline, %u..%u us "
		"(default %u)\n"
		"  cpu=N      pin the thread to CPU N\n"
		"  fifo=PRIO  SCHED_FIFO at PRIO (1..99), memory locked\n",
		LAT_MAX_N, LAT_DEFAULT_N, LAT_MIN_US, LAT_MAX_US, LAT_DEFAULT_US);
	return LAT_STATUS_USAGE;
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;

	if (!*s)
		return -1;
	errno = 0;
	*out = strtol(s, &end, 0);
	return errno || *end || *out < lo || *out > hi ? -1 : 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, as the inmate computes it. */
static int64_t percentile(const int64_t *sorted, long n, unsigned pct)
{
	long rank = (n * pct + 99) / 100;

	return sorted[rank ? rank - 1 : 0];
}

static int setup(long cpu, long fifo)
{
	/*
	 * A SCHED_OTHER thread's timers are rounded up by its timer slack, 50 us by
	 * default, which would be most of the figure. KVM's guest timers are hard
	 * hrtimers without slack, so the baseline drops it too (cyclictest's RT threads
	 * have none either).
	 */
	if (prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul)) {
		perror("latency-host: PR_SET_TIMERSLACK");
		return -1;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			perror("latency-host: sched_setaffinity");
			return -1;
		}
	}
	if (fifo > 0) {
		struct sched_param sp = { .sched_priority = (int)fifo };

		if (mlockall(MCL_CURRENT | MCL_FUTURE) ||
		    sched_setscheduler(0, SCHED_FIFO, &sp)) {
			perror("latency-host: SCHED_FIFO");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n = LAT_DEFAULT_N, us = LAT_DEFAULT_US, cpu = -1, fifo = 0, early = 0;
	long overruns = 0, i, j;
	int64_t *s, sum = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int bad;

		if (!strncmp(a, "n=", 2))
			bad = parse_num(a + 2, 1, LAT_MAX_N, &n);
		else if (!strncmp(a, "period=", 7))
			bad = parse_num(a + 7, LAT_MIN_US, LAT_MAX_US, &us);
		else if (!strncmp(a, "cpu=", 4))
			bad = parse_num(a + 4, 0, CPU_SETSIZE - 1, &cpu);
		else if (!strncmp(a, "fifo=", 5))
			bad = parse_num(a + 5, 1, 99, &fifo);
		else
			bad = 1;
		if (bad)
			return usage();
	}
	/* Allocated and touched before the loop: no page fault inside a sample. */
	s = calloc((size_t)n, sizeof(*s));
	if (!s || setup(cpu, fifo))
		return 1;
	memset(s, 0, (size_t)n * sizeof(*s));
	printf("host-latency: CLOCK_MONOTONIC, clock_nanosleep(TIMER_ABSTIME), %s, cpu %ld, "
	       "%ld samples, period %ld us\n", fifo ? "SCHED_FIFO" : "SCHED_OTHER", cpu, n, us);

	for (i = 0; i < n; i++) {
		struct timespec now, deadline;
		int64_t d;

		/* Deadline relative to now, as the inmate does: a late wake-up never makes
		 * the next deadline already past. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		d = ts_ns(&now) + us * 1000;
		deadline.tv_sec = d / NS_PER_S;
		deadline.tv_nsec = d % NS_PER_S;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
			;
		clock_gettime(CLOCK_MONOTONIC, &now);
		s[i] = ts_ns(&now) - d;
		early += s[i] < 0;
		overruns += s[i] >= us * 1000;
		sum += s[i];
	}

	qsort(s, (size_t)n, sizeof(*s), cmp);
	printf("host-latency: hist");
	for (i = 0, j = 0; i < (long)NR_BUCKETS; i++) {
		long c = 0;

		while (j < n && s[j] < buckets[i].ns)
			c++, j++;
		printf(" %s=%ld", buckets[i].name, c);
	}
	printf(" more=%ld\n", n - j);
	printf("host-latency: result mode=%s samples=%ld period_us=%ld min=%" PRId64
	       " median=%" PRId64 " p99=%" PRId64 " max=%" PRId64 " mean=%" PRId64
	       " early=%ld overruns=%ld unexpected=0\n", fifo ? "fifo" : "other", n, us,
	       s[0], percentile(s, n, 50), percentile(s, n, 99), s[n - 1], sum / n, early,
	       overruns);
	free(s);
	return 0;
}
