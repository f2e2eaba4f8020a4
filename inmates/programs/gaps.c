/*
 * gaps: watches its own execution for MS milliseconds (default 100) of TSC time and
 * reports the gaps in it, the times it was not running. Under a cyclic plan they show
 * the partition held outside its slots; on a dedicated CPU there should be none.
 */
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include <inmate/string.h>
#include <inmate/tsc.h>

#define GAP_US 1000     /* a pause longer than this is not a cache miss or an exit */

int main(int argc, char **argv)
{
	uint64_t ms = argc > 1 ? strtoul(argv[1], 0, 0) : 100;
	uint64_t gap_cycles = tsc_from_us(GAP_US), start = tsc_now(), end, prev = start;
	uint64_t gaps = 0, longest = 0, stopped = 0;

	end = start + tsc_from_us(ms * 1000);
	for (uint64_t now = start; now < end; now = tsc_now()) {
		uint64_t delta = now - prev;
		if (delta > gap_cycles) {
			gaps++;
			stopped += delta;
			if (delta > longest)
				longest = delta;
		}
		prev = now;
	}
	printf("gaps: %lu gaps over %u us in %lu ms, longest %lu us, ran %lu%% of the time\n",
	       gaps, GAP_US, ms, tsc_to_us(longest),
	       100 - tsc_to_us(stopped) * 100 / (ms * 1000));
	return 0;
}
