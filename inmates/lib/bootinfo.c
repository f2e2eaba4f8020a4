/*
 * Boot information: the monitor's page at BH_BOOTINFO_ADDR is validated and copied once
 * at start-up, so later code neither re-reads boot memory nor trusts its strings.
 */
#include <inmate/runtime.h>
#include <inmate/string.h>
#include "internal.h"

static struct bh_bootinfo bootinfo_copy;
static int bootinfo_ok;

void bootinfo_init(const struct bh_bootinfo *raw)
{
	size_t len;

	if (!raw || raw->magic != BH_BOOTINFO_MAGIC)
		return;
	/* Fields are only ever appended: take what the monitor filled in, leave the rest 0. */
	len = raw->size;
	if (len > sizeof(bootinfo_copy))
		len = sizeof(bootinfo_copy);
	memcpy(&bootinfo_copy, raw, len);
	bootinfo_copy.name[BH_NAME_MAX] = '\0';
	bootinfo_copy.cmdline[BH_CMDLINE_MAX - 1] = '\0';
	if (bootinfo_copy.nr_regions > BH_BOOTINFO_REGIONS)
		bootinfo_copy.nr_regions = BH_BOOTINFO_REGIONS;
	for (uint32_t i = 0; i < bootinfo_copy.nr_regions; i++)
		bootinfo_copy.regions[i].name[BH_NAME_MAX] = '\0';
	for (uint32_t i = 0; i < BH_BOOTINFO_REGIONS; i++)
		bootinfo_copy.ports[i].name[BH_NAME_MAX] = '\0';
	bootinfo_ok = 1;
}

const struct bh_bootinfo *bh_bootinfo(void)
{
	return &bootinfo_copy;
}

int bh_bootinfo_valid(void)
{
	return bootinfo_ok;
}
