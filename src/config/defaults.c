/*
 * Defaults that depend on other parts of the file or on the host: CPUs, directories,
 * isolation by engine, disk sizes from existing files, blk slices, net MACs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/compile.h"

static char *join(const char *dir, const char *name)
{
	char *out;
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		abort();
	return out;
}

static unsigned first_cpu(const struct bh_cpuset *set)
{
	for (unsigned c = 0; c < BH_MAX_CPUS; c++)
		if (bh_cpuset_has(set, c))
			return c;
	return 0;
}

/* Locally administered, unicast: 02:62:68 ("bh"), then system, partition, device. */
static void derive_mac(const struct bh_system *sys, unsigned part, unsigned dev, uint8_t mac[6])
{
	uint8_t h = 0;
	for (const char *s = sys->name ? sys->name : ""; *s; s++)
		h = (uint8_t)(h * 31 + (uint8_t)*s);
	mac[0] = 0x02;
	mac[1] = 0x62;
	mac[2] = 0x68;
	mac[3] = h;
	mac[4] = (uint8_t)part;
	mac[5] = (uint8_t)dev;
}

static void disk_defaults(struct bh_disk *disk)
{
	struct stat st;

	if (!disk->file || stat(disk->file, &st))
		return;
	disk->exists = true;
	if (!disk->size_at.line && S_ISREG(st.st_mode))
		disk->size = (uint64_t)st.st_size;
}

static void device_defaults(struct bh_system *sys, unsigned pi, unsigned di)
{
	struct bh_device *dev = &sys->partitions[pi].devices[di];

	if (dev->type == BH_DEV_NET && !dev->mac_at.line)
		derive_mac(sys, pi, di, dev->mac);
	if (dev->type == BH_DEV_NET && dev->rate.at.line && !dev->rate.burst_at.line)
		dev->rate.burst = BH_DEFAULT_BURST;
	if (dev->type == BH_DEV_BLK && !dev->size_at.line && dev->server.idx >= 0 &&
	    dev->disk.idx >= 0) {
		const struct bh_disk *disk = &sys->servers[dev->server.idx].disks[dev->disk.idx];
		if (dev->offset <= disk->size)
			dev->size = disk->size - dev->offset;
	}
}

void cfg_apply_defaults(struct bh_system *sys, const struct bh_host *host, struct diag *d)
{
	if (!sys->cpus_at.line || cfg_refused_at(d, sys->cpus_at)) {
		sys->cpus = host->online;
		sys->ncpus = host->ncpus;
	}
	if (!sys->log_dir && sys->name) {
		char base[64];
		snprintf(base, sizeof(base), "bulkhead-%s", sys->name);
		sys->log_dir = join(sys->dir, base);
	}
	if (!sys->control_socket && sys->log_dir)
		sys->control_socket = join(sys->log_dir, "control.sock");

	for (unsigned i = 0; i < sys->nservers; i++)
		for (unsigned j = 0; j < sys->servers[i].ndisks; j++)
			disk_defaults(&sys->servers[i].disks[j]);

	for (unsigned i = 0; i < sys->npartitions; i++) {
		struct bh_partition *p = &sys->partitions[i];

		if (!p->isolation_at.line)
			p->isolation = p->engine == BH_ENGINE_QEMU ? BH_ISOLATION_SHARED
								   : BH_ISOLATION_WINDOW;
		if (sys->scheduling == BH_SCHED_CYCLIC && !p->cpus_at.line && sys->ncpus) {
			bh_cpuset_set(&p->cpus, first_cpu(&sys->cpus));
			p->ncpus = 1;
		}
		for (unsigned j = 0; j < p->ndevices; j++)
			device_defaults(sys, i, j);
	}
}
