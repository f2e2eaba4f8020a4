/*
 * The PC's legacy ISA ports as a Linux kernel probes them: a partition booted with
 * --kernel finds nothing there, as on a PC without those devices, instead of being
 * stopped for an isolation violation on its first probe. Reads return all-ones (the
 * floating bus every driver takes for "absent"), writes are dropped. Only these
 * ranges; any other unassigned port is still a violation, and bare-metal images get
 * none of this.
 */
#include "monitor/mon.h"

static const struct {
	uint16_t base, len;
	const char *name;
} legacy_absent[] = {
	{ 0x60, 1, "i8042 data" },
	{ 0x64, 1, "i8042 status" },
	{ 0x278, 3, "LPT2" },
	{ 0x2e8, 8, "COM4" },
	{ 0x2f8, 8, "COM2" },
	{ 0x378, 3, "LPT1" },
	{ 0x3e8, 8, "COM3" },
	{ 0x3f0, 6, "floppy" },
	{ 0x3f7, 1, "floppy" },
};

static int legacy_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	(void)opaque;
	(void)off;
	if (!write)
		*val = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	return 0;
}

int legacy_register_absent(struct mon *m)
{
	for (size_t i = 0; i < sizeof(legacy_absent) / sizeof(legacy_absent[0]); i++) {
		int ret = io_register(&m->io.port, legacy_absent[i].base, legacy_absent[i].len,
				      legacy_absent[i].name, legacy_io, m);

		if (ret)
			return ret;
	}
	return 0;
}
