/*
 * CPUs, memory and the schedule: every CPU exists, memory fits the host, and either
 * each partition owns its CPUs (dedicated) or a sound cyclic plan shares them.
 */
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "config/compile.h"

static void format_cpuset(const struct bh_cpuset *set, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned c = 0; c < BH_MAX_CPUS && used + 8 < len; c++) {
		unsigned end = c;
		if (!bh_cpuset_has(set, c))
			continue;
		while (end + 1 < BH_MAX_CPUS && bh_cpuset_has(set, end + 1))
			end++;
		used += (size_t)snprintf(buf + used, len - used, used ? ",%u" : "%u", c);
		if (end > c)
			used += (size_t)snprintf(buf + used, len - used, "-%u", end);
		c = end;
	}
}

static void check_system_cpus(struct bh_system *sys, const struct bh_host *host, struct diag *d)
{
	char online[128];

	format_cpuset(&host->online, online, sizeof(online));
	for (unsigned c = 0; c < BH_MAX_CPUS; c++)
		if (bh_cpuset_has(&sys->cpus, c) && !bh_cpuset_has(&host->online, c))
			diag_error(d, sys->cpus_at, "CPU %u does not exist on this host (online CPUs: %s)",
				   c, online);
	if (cfg_valid_at(d, sys->cpus_at) && !sys->ncpus)
		diag_error(d, sys->cpus_at, "'cpus' lists no CPU: the system needs at least one");
}

static void check_partition_cpus(struct bh_system *sys, const struct bh_host *host,
				 struct diag *d, const struct bh_partition *p)
{
	char online[128];

	format_cpuset(&host->online, online, sizeof(online));
	for (unsigned c = 0; c < BH_MAX_CPUS; c++) {
		if (!bh_cpuset_has(&p->cpus, c))
			continue;
		if (!bh_cpuset_has(&host->online, c))
			diag_error(d, p->cpus_at, "partition '%s': CPU %u does not exist on this host "
				   "(online CPUs: %s)", cfg_name(p->name), c, online);
		else if (!bh_cpuset_has(&sys->cpus, c))
			diag_error(d, p->cpus_at, "partition '%s': CPU %u is not among the system's "
				   "'cpus'", cfg_name(p->name), c);
	}
}

static void check_memory(struct bh_system *sys, const struct bh_host *host, struct diag *d)
{
	uint64_t total = 0;
	char a[24], b[24];

	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];

		if (!cfg_valid_at(d, p->memory_at))
			continue;
		if (p->memory == 0 || p->memory % BH_MEM_ALIGN)
			diag_error(d, p->memory_at, "partition '%s': memory %s is not a positive "
				   "multiple of 2M", cfg_name(p->name), units_format_size(p->memory, a));
		else if (total + p->memory < total)
			total = UINT64_MAX;
		else
			total += p->memory;
	}
	for (unsigned i = 0; i < sys->nregions; i++)
		total += sys->regions[i].size > UINT64_MAX - total ? UINT64_MAX - total
								    : sys->regions[i].size;
	for (unsigned i = 0; i < sys->nchannels; i++)         /* sized by cfg_check_comm */
		total += sys->channels[i].size > UINT64_MAX - total ? UINT64_MAX - total
								     : sys->channels[i].size;
	if (host->mem_bytes && total > host->mem_bytes)
		diag_error(d, sys->at, "partitions, shared regions and channels need %s of memory; "
			   "this host has %s", units_format_size(total, a),
			   units_format_size(host->mem_bytes, b));
}

static void check_dedicated(struct bh_system *sys, struct diag *d)
{
	int owner[BH_MAX_CPUS];

	for (unsigned c = 0; c < BH_MAX_CPUS; c++)
		owner[c] = -1;
	if (sys->plan_at.line)
		diag_error(d, sys->plan_at, "'plan' is only used with 'scheduling: cyclic'");
	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];

		if (!p->ncpus) {
			if (cfg_refused_at(d, p->cpus_at))
				continue;       /* 'cpus' is not a list: reported already */
			diag_error(d, p->cpus_at.line ? p->cpus_at : p->at,
				   "partition '%s' has no CPU: dedicated scheduling needs 'cpus' with "
				   "at least one CPU of its own", cfg_name(p->name));
			continue;
		}
		for (unsigned c = 0; c < BH_MAX_CPUS; c++) {
			if (!bh_cpuset_has(&p->cpus, c))
				continue;
			if (owner[c] >= 0)
				diag_error(d, p->cpus_at, "CPU %u of partition '%s' is already given to "
					   "partition '%s' (dedicated scheduling gives each CPU to one "
					   "partition)", c, cfg_name(p->name),
					   cfg_name(sys->partitions[owner[c]].name));
			else
				owner[c] = (int)i;
		}
	}
}

static int by_start(const void *a, const void *b)
{
	const struct bh_slot *x = *(const struct bh_slot *const *)a;
	const struct bh_slot *y = *(const struct bh_slot *const *)b;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x < y ? -1 : x > y;      /* file order: the later slot is the one reported */
}

static void check_cyclic(struct bh_system *sys, struct diag *d)
{
	const struct bh_slot *sorted[BH_MAX_SLOTS];
	bool scheduled[BH_MAX_PARTITIONS] = { false };
	bool frame_ok = cfg_valid_at(d, sys->major_frame_at);
	unsigned nsorted = 0;
	char a[24], b[24], c[24];

	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];

		/* Left out, 'cpus' defaults to the system's first CPU; given, it must name one. */
		if (cfg_valid_at(d, p->cpus_at) && !p->ncpus)
			diag_error(d, p->cpus_at, "partition '%s' has no CPU: 'cpus' must list at least "
				   "one", cfg_name(p->name));
	}
	if (!sys->plan_at.line) {
		diag_error(d, sys->scheduling_at, "'scheduling: cyclic' needs a 'plan'");
		return;
	}
	if (frame_ok && sys->major_frame_ns == 0) {
		diag_error(d, sys->major_frame_at, "'major_frame' must be longer than 0");
		frame_ok = false;       /* every slot would end outside it */
	}
	for (unsigned i = 0; i < sys->nslots; i++) {
		const struct bh_slot *s = &sys->slots[i];

		if (s->partition.idx >= 0)
			scheduled[s->partition.idx] = true;
		/* A refused start or duration was reported already. */
		if (cfg_refused_at(d, s->start_at) || cfg_refused_at(d, s->duration_at))
			continue;
		if (s->duration_at.line && s->duration_ns < BH_MIN_SLOT_NS)
			diag_error(d, s->duration_at, "slot of partition '%s' lasts %s; slots must last "
				   "at least 100us", s->partition.name ? s->partition.name : "?",
				   units_format_time(s->duration_ns, a));
		if (!frame_ok)
			continue;
		if (s->start_ns > sys->major_frame_ns ||
		    s->duration_ns > sys->major_frame_ns - s->start_ns)
			diag_error(d, s->at, "slot of partition '%s' (%s + %s) ends outside the major "
				   "frame of %s", s->partition.name ? s->partition.name : "?",
				   units_format_time(s->start_ns, a), units_format_time(s->duration_ns, b),
				   units_format_time(sys->major_frame_ns, c));
		else
			sorted[nsorted++] = s;    /* inside the frame: start + duration cannot wrap */
	}
	qsort(sorted, nsorted, sizeof(sorted[0]), by_start);
	/* Compare each slot with the one reaching furthest so far, not only its neighbour. */
	for (unsigned i = 1, reach = 0; i < nsorted; i++) {
		const struct bh_slot *far = sorted[reach], *s = sorted[i];
		if (far->start_ns + far->duration_ns > s->start_ns)
			diag_error(d, s->at, "slot of partition '%s' at %s overlaps the slot at line %u",
				   s->partition.name ? s->partition.name : "?",
				   units_format_time(s->start_ns, a), far->at.line);
		if (s->start_ns + s->duration_ns > far->start_ns + far->duration_ns)
			reach = i;
	}
	for (unsigned i = 0; i < sys->npartitions; i++)
		if (!scheduled[i] && sys->partitions[i].name)
			diag_error(d, sys->partitions[i].name_at, "partition '%s' is never scheduled: no "
				   "slot of the plan names it", sys->partitions[i].name);
}

void cfg_check_resources(struct bh_system *sys, const struct bh_host *host, struct diag *d)
{
	check_system_cpus(sys, host, d);
	for (unsigned i = 0; i < sys->npartitions; i++)
		check_partition_cpus(sys, host, d, &sys->partitions[i]);
	check_memory(sys, host, d);
	if (sys->scheduling == BH_SCHED_DEDICATED)
		check_dedicated(sys, d);
	else
		check_cyclic(sys, d);
	if (!sys->npartitions && cfg_valid_at(d, sys->partitions_at))
		diag_error(d, sys->partitions_at, "the system has no partitions");
}
