/*
 * The floor for bench/net's round-trip times: two processes bouncing a token over a
 * pair of eventfds, the same wake-up mechanism a vhost-user kick and call use. A ping
 * between partitions costs at least two such hops each way (guest -> server -> guest),
 * so this is what no amount of tuning can beat. Prints the median and p99 round trip
 * in microseconds over N round trips (default 20000) after a warm-up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000, warm = 1000;
	int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 1, *rtt;
	pid_t pid;

	if (n <= 0 || ping < 0 || pong < 0 || !(rtt = calloc((size_t)n, sizeof(*rtt))))
		return 2;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		for (int i = 0; i < n + warm; i++)
			if (read(ping, &v, 8) != 8 || write(pong, &v, 8) != 8)
				_exit(1);
		_exit(0);
	}
	for (int i = 0; i < n + warm; i++) {
		uint64_t t0 = now_ns();

		if (write(ping, &v, 8) != 8 || read(pong, &v, 8) != 8)
			return 1;
		if (i >= warm)
			rtt[i - warm] = now_ns() - t0;
	}
	waitpid(pid, NULL, 0);
	qsort(rtt, (size_t)n, sizeof(*rtt), cmp);
	printf("eventfd_floor: rtt median %.2f us p99 %.2f us over %d round trips\n",
	       rtt[n / 2] / 1e3, rtt[n * 99 / 100] / 1e3, n);
	return 0;
}
