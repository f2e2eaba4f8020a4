/*
 * latency: how late a timer interrupt reaches this partition, as Jailhouse's apic-demo
 * measures it, for bench/latency. N times: read the TSC, arm the LAPIC timer for a
 * deadline PERIOD microseconds later, halt; the handler's first act is to read the TSC
 * again, and the sample is (TSC at handler entry - deadline) in nanoseconds. Prints the
 * minimum, median, 99th percentile and maximum and a histogram, as lines bench/latency
 * and the tests parse (host_latency in bench/latency prints the same lines).
 *
 * Arguments: [n=N] [period=US] [mode=deadline|oneshot] [delay=MS]. delay= waits before
 * the first sample, so a neighbour partition started at the same time is past its own
 * start-up (which disturbs this one, see docs/benchmarks.md). mode=deadline (the default
 * when CPUID offers it) arms an absolute TSC deadline, so the figure is exactly the
 * delivery delay; mode=oneshot loads the LAPIC's count-down, which starts when KVM
 * handles the register write, so it also includes the exit that arms the timer.
 * Bad arguments print the usage and exit 2.
 */
#include <inmate/inmate.h>

#define LAT_VECTOR        0x50     /* any free vector above the exceptions */
#define LAT_DEFAULT_N     2000u
#define LAT_MAX_N         1000000u
#define LAT_DEFAULT_US    1000u
#define LAT_MIN_US        10u      /* below this every sample would be an overrun */
#define LAT_MAX_US        1000000u
#define LAT_MAX_DELAY_MS  60000u
#define LAT_TSC_PROBES    16u
#define LAT_STATUS_USAGE  2
#define NS_PER_MS         1000000ull

enum lat_mode { LAT_AUTO, LAT_DEADLINE, LAT_ONESHOT };

/* Bucket upper bounds in ns: a 1-2-5 series, then everything above the last. */
static const struct {
	uint64_t ns;
	const char *name;
} lat_buckets[] = {
	{ 1000, "1us" }, { 2000, "2us" }, { 5000, "5us" }, { 10000, "10us" },
	{ 20000, "20us" }, { 50000, "50us" }, { 100000, "100us" }, { 200000, "200us" },
	{ 500000, "500us" }, { 1000000, "1ms" }, { 2000000, "2ms" }, { 5000000, "5ms" },
	{ 10000000, "10ms" },
};
#define LAT_NR_BUCKETS (sizeof(lat_buckets) / sizeof(lat_buckets[0]))

static volatile uint64_t lat_fired_tsc;
static volatile int lat_fired;

/* First thing on entry is the TSC, so the sample holds as little of our own work as
 * the runtime's entry stub allows. */
static void lat_irq(struct irq_frame *f)
{
	uint64_t now = cpu_rdtsc();

	(void)f;
	lat_fired_tsc = now;
	lat_fired = 1;
	lapic_eoi();
}

static int usage(void)
{
	printf("usage: latency [n=N] [period=US] [mode=deadline|oneshot] [delay=MS]\n"
	       "  n=N        samples, 1..%u (default %u)\n"
	       "  period=US  time from arming to the deadline, %u..%u us (default %u)\n"
	       "  mode=      deadline: TSC-deadline timer (default when offered);\n"
	       "             oneshot: LAPIC one-shot count-down\n"
	       "  delay=MS   wait before the first sample, 0..%u ms (default 0)\n",
	       LAT_MAX_N, LAT_DEFAULT_N, LAT_MIN_US, LAT_MAX_US, LAT_DEFAULT_US,
	       LAT_MAX_DELAY_MS);
	return LAT_STATUS_USAGE;
}

/* A whole decimal or 0x number and nothing after it; -1 otherwise. */
static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;

	if (!*s)
		return -1;
	*out = strtoul(s, &end, 0);
	return *end || *out < lo || *out > hi ? -1 : 0;
}

static int parse(int argc, char **argv, uint64_t *n, uint64_t *us, enum lat_mode *mode,
		 uint64_t *delay)
{
	*delay = 0;
	*n = LAT_DEFAULT_N;
	*us = LAT_DEFAULT_US;
	*mode = LAT_AUTO;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "n=", 2)) {
			if (parse_num(a + 2, 1, LAT_MAX_N, n))
				return -1;
		} else if (!strncmp(a, "period=", 7)) {
			if (parse_num(a + 7, LAT_MIN_US, LAT_MAX_US, us))
				return -1;
		} else if (!strncmp(a, "delay=", 6)) {
			if (parse_num(a + 6, 0, LAT_MAX_DELAY_MS, delay))
				return -1;
		} else if (!strcmp(a, "mode=deadline")) {
			*mode = LAT_DEADLINE;
		} else if (!strcmp(a, "mode=oneshot")) {
			*mode = LAT_ONESHOT;
		} else {
			printf("latency: unknown argument '%s'\n", a);
			return -1;
		}
	}
	return 0;
}

/* Heapsort: O(n log n) and in place. Guest instructions are slow on this host (~1 us
 * each, docs/inmates.md), so an insertion sort of 2000 samples would take seconds. */
static void sift_down(int64_t *a, uint64_t root, uint64_t n)
{
	for (;;) {
		uint64_t child = 2 * root + 1;
		int64_t t;

		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[root] >= a[child])
			return;
		t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void sort(int64_t *a, uint64_t n)
{
	for (uint64_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (uint64_t end = n; end-- > 1;) {
		int64_t t = a[0];

		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

/* Nearest rank: the smallest sample with at least pct% of them at or below it. The
 * host helper uses the same definition, so the two are comparable. */
static int64_t percentile(const int64_t *sorted, uint64_t n, unsigned pct)
{
	uint64_t rank = (n * pct + 99) / 100;

	return sorted[rank ? rank - 1 : 0];
}

static int64_t cycles_to_ns(int64_t cycles, uint64_t khz)
{
	return cycles * (int64_t)NS_PER_MS / (int64_t)khz;
}

/* The cost of the measuring instrument: rdtsc may itself exit on this host. */
static uint64_t tsc_read_cost(void)
{
	uint64_t best = ~0ull;

	for (unsigned i = 0; i < LAT_TSC_PROBES; i++) {
		uint64_t a = cpu_rdtsc(), b = cpu_rdtsc();

		if (b - a < best)
			best = b - a;
	}
	return best;
}

static void print_hist(const int64_t *s, uint64_t n)
{
	uint64_t count[LAT_NR_BUCKETS + 1] = { 0 }, i = 0;

	/* The samples are sorted: one pass fills the buckets in order. */
	for (unsigned b = 0; b < LAT_NR_BUCKETS; b++)
		while (i < n && s[i] < (int64_t)lat_buckets[b].ns)
			count[b]++, i++;
	count[LAT_NR_BUCKETS] = n - i;
	printf("latency: hist");
	for (unsigned b = 0; b < LAT_NR_BUCKETS; b++)
		printf(" %s=%lu", lat_buckets[b].name, count[b]);
	printf(" more=%lu\n", count[LAT_NR_BUCKETS]);
}

int main(int argc, char **argv)
{
	uint64_t n, us, khz, period, delay, count = 0, early = 0, overruns = 0;
	enum lat_mode mode;
	int64_t *s, sum = 0;

	if (parse(argc, argv, &n, &us, &mode, &delay))
		return usage();
	khz = tsc_khz();
	if (!khz) {
		printf("latency: no TSC frequency\n");
		return LAT_STATUS_USAGE;
	}
	if (mode == LAT_AUTO)
		mode = lapic_tsc_deadline_supported() ? LAT_DEADLINE : LAT_ONESHOT;
	s = mem_alloc(n * sizeof(*s), sizeof(*s));
	if (!s) {
		printf("latency: no memory for %lu samples\n", n);
		return LAT_STATUS_USAGE;
	}
	/* Touch every page now: a first write costs ~1.5 ms here, not in the samples. */
	memset(s, 0, n * sizeof(*s));

	irq_register(LAT_VECTOR, lat_irq);
	if (mode == LAT_DEADLINE) {
		if (lapic_timer_deadline_setup(LAT_VECTOR)) {
			printf("latency: the CPU offers no TSC-deadline timer\n");
			return LAT_STATUS_USAGE;
		}
	} else {
		if (lapic_timer_oneshot_setup(LAT_VECTOR))
			return printf("latency: the LAPIC timer does not count\n"), 1;
		count = us * lapic_timer_khz() / 1000u;
		if (count > 0xFFFFFFFFu)
			count = 0xFFFFFFFFu;
	}
	period = tsc_from_us(us);
	printf("latency: TSC %lu kHz (from %s), %s timer on vector 0x%x, %lu samples, "
	       "period %lu us\n", khz, tsc_source_name(),
	       mode == LAT_DEADLINE ? "TSC-deadline" : "one-shot", LAT_VECTOR, n, us);
	if (mode == LAT_ONESHOT)
		printf("latency: LAPIC timer %lu kHz, %lu ticks per shot\n", lapic_timer_khz(),
		       count);
	printf("latency: reading the TSC costs %ld ns (least of %u back-to-back pairs)\n",
	       cycles_to_ns((int64_t)tsc_read_cost(), khz), LAT_TSC_PROBES);
	mdelay(delay);

	for (uint64_t i = 0; i < n; i++) {
		uint64_t deadline;

		irq_disable();
		lat_fired = 0;
		/* Relative to now, not to the last deadline: a late sample or a slow printf
		 * never makes the next deadline already past (cyclictest's overrun). */
		deadline = cpu_rdtsc() + period;
		if (mode == LAT_DEADLINE)
			lapic_timer_deadline(deadline);
		else
			lapic_timer_start((uint32_t)count);
		/* Interrupts off between the check and the halt, or a shot landing in
		 * between would be taken early and the halt would then sleep forever. */
		for (;;) {
			irq_disable();
			if (lat_fired)
				break;
			cpu_sti_hlt();
		}
		s[i] = cycles_to_ns((int64_t)(lat_fired_tsc - deadline), khz);
		early += s[i] < 0;
		overruns += s[i] >= (int64_t)(us * 1000u);
		sum += s[i];
	}
	irq_disable();

	sort(s, n);
	print_hist(s, n);
	printf("latency: result mode=%s samples=%lu period_us=%lu min=%ld median=%ld p99=%ld "
	       "max=%ld mean=%ld early=%lu overruns=%lu unexpected=%lu\n",
	       mode == LAT_DEADLINE ? "deadline" : "oneshot", n, us, s[0],
	       percentile(s, n, 50), percentile(s, n, 99), s[n - 1], sum / (int64_t)n, early,
	       overruns, irq_unexpected_count());
	return 0;
}
