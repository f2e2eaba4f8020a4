/*
 * Derived facts of a sound system: each partition's guest-physical memory map (RAM,
 * then its shared regions and channels above 4 GiB) and the PCI slot of each device.
 */
#include "bulkhead/bootinfo.h"
#include "bulkhead/platform.h"
#include "common/units.h"
#include "config/compile.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void map_add(struct bh_partition *p, enum bh_map_kind kind, const char *name, int object,
		    uint64_t gpa, uint64_t size, bool writable)
{
	if (p->nmemmap < BH_MAX_MEMMAP)
		p->memmap[p->nmemmap++] = (struct bh_map_entry){ kind, name, object, gpa, size,
								   writable };
}

static bool is_peer(const struct bh_region *r, unsigned pi)
{
	for (unsigned i = 0; i < r->npeers; i++)
		if (r->peers[i].idx == (int)pi)
			return true;
	return false;
}

/* Returns 0 when pi is not an end of ch, 1 for a reader, 2 for a writer. Queuing
 * destinations write too: they advance the queue's head. */
static int channel_role(const struct bh_channel *ch, unsigned pi)
{
	if (ch->source.partition.idx == (int)pi)
		return 2;
	for (unsigned i = 0; i < ch->ndests; i++)
		if (ch->dests[i].partition.idx == (int)pi)
			return ch->type == BH_CHAN_QUEUING ? 2 : 1;
	return 0;
}

static void layout_memory(struct bh_system *sys, unsigned pi)
{
	struct bh_partition *p = &sys->partitions[pi];
	uint64_t low = p->memory < BH_RAM_LOW_MAX ? p->memory : BH_RAM_LOW_MAX;
	uint64_t next = BH_REGION_BASE;

	p->nmemmap = 0;
	map_add(p, BH_MAP_RAM, "ram", -1, 0, low, true);
	if (p->memory > low) {
		map_add(p, BH_MAP_RAM, "ram-high", -1, BH_HIGH_RAM_BASE, p->memory - low, true);
		next = align_up(BH_HIGH_RAM_BASE + p->memory - low, BH_REGION_ALIGN);
	}
	for (unsigned i = 0; i < sys->nregions; i++) {
		const struct bh_region *r = &sys->regions[i];
		if (!is_peer(r, pi))
			continue;
		map_add(p, BH_MAP_SHARED, r->name, (int)i, next, r->size, true);
		next = align_up(next + r->size, BH_REGION_ALIGN);
	}
	for (unsigned i = 0; i < sys->nchannels; i++) {
		const struct bh_channel *ch = &sys->channels[i];
		int role = channel_role(ch, pi);
		if (!role)
			continue;
		map_add(p, ch->type == BH_CHAN_QUEUING ? BH_MAP_QUEUING : BH_MAP_SAMPLING, ch->name,
			(int)i, next, ch->size, role == 2);
		next = align_up(next + ch->size, BH_REGION_ALIGN);
	}
}

/* What the monitor can give one partition: its page tables map 64 GiB, and the boot
 * information lists BH_BOOTINFO_REGIONS regions and channels. */
static void check_map(const struct bh_partition *p, struct diag *d)
{
	const struct bh_map_entry *last = &p->memmap[p->nmemmap - 1];
	char a[24];

	if (p->nmemmap - 1 - (p->memory > BH_RAM_LOW_MAX) > BH_BOOTINFO_REGIONS)
		diag_error(d, p->name_at, "partition '%s' is a peer or end of %u shared regions and "
			   "channels; at most %d are supported", p->name,
			   p->nmemmap - 1 - (p->memory > BH_RAM_LOW_MAX), BH_BOOTINFO_REGIONS);
	if (last->gpa + last->size > BH_GPA_LIMIT)
		diag_error(d, p->memory_at.line ? p->memory_at : p->at, "partition '%s': memory and "
			   "regions end at guest-physical %s, beyond the 64G the monitor maps",
			   p->name, units_format_size(last->gpa + last->size, a));
}

void cfg_layout(struct bh_system *sys, struct diag *d)
{
	for (unsigned pi = 0; pi < sys->npartitions; pi++) {
		struct bh_partition *p = &sys->partitions[pi];

		layout_memory(sys, pi);
		if (p->name)
			check_map(p, d);
		/* Slot 0 is the host bridge; devices follow in file order. */
		for (unsigned di = 0; di < p->ndevices; di++)
			p->devices[di].pci_slot = di + 1;
	}
	(void)d;
}
