/*
 * The facts about the running machine that a system file is checked against: which
 * CPUs are online and how much memory there is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "config/system.h"

/* Parses a kernel CPU list such as "0-3,6,8-9". */
static int parse_cpulist(const char *s, struct bh_cpuset *set, unsigned *count)
{
	while (*s && *s != '\n') {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;

		if (end == s)
			return -EINVAL;
		if (*end == '-') {
			s = end + 1;
			hi = strtoul(s, &end, 10);
			if (end == s)
				return -EINVAL;
		}
		for (unsigned long c = lo; c <= hi && c < BH_MAX_CPUS; c++) {
			bh_cpuset_set(set, (unsigned)c);
			(*count)++;
		}
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

int cfg_host_probe(struct bh_host *host)
{
	char buf[4096] = "";
	struct sysinfo si;
	FILE *f;

	memset(host, 0, sizeof(*host));
	f = fopen("/sys/devices/system/cpu/online", "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	if (!buf[0] || parse_cpulist(buf, &host->online, &host->ncpus)) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (long c = 0; c < n && c < BH_MAX_CPUS; c++) {
			bh_cpuset_set(&host->online, (unsigned)c);
			host->ncpus++;
		}
	}
	if (sysinfo(&si) == 0)
		host->mem_bytes = (uint64_t)si.totalram * si.mem_unit;
	return 0;
}
