/*
 * PCI configuration mechanism #1: config dword access, enumeration of bus 0 and of the
 * buses behind PCI-PCI bridges, matching by id or class, BAR sizing and capabilities.
 */
#include <bulkhead/platform.h>
#include <inmate/io.h>
#include <inmate/pci.h>

#define PCI_ADDR_ENABLE       0x80000000u
#define PCI_ADDR_BUS_SHIFT    16
#define PCI_ADDR_SLOT_SHIFT   11
#define PCI_ADDR_FUNC_SHIFT   8
#define PCI_ADDR_REG_MASK     0xFC

#define PCI_NR_SLOTS          32
#define PCI_NR_FUNCS          8
#define PCI_HEADER_MULTIFUNC  0x80
#define PCI_HEADER_TYPE_MASK  0x7F
#define PCI_HEADER_NORMAL     0x00
#define PCI_HEADER_BRIDGE     0x01
#define PCI_MAX_BRIDGE_DEPTH  8

#define PCI_BAR_IO            0x1
#define PCI_BAR_IO_MASK       (~0x3u)
#define PCI_BAR_MEM_TYPE_MASK 0x6
#define PCI_BAR_MEM_TYPE_64   0x4
#define PCI_BAR_MEM_PREFETCH  0x8
#define PCI_BAR_MEM_MASK      (~0xFu)
#define PCI_BAR_IO_SIZE_MASK  0xFFFFu   /* I/O BARs decode 16 address bits */

#define PCI_CAP_ID            0
#define PCI_CAP_NEXT          1
#define PCI_CAP_PTR_MASK      0xFC
#define PCI_MAX_CAPS          48        /* bounds a looping list */

static uint32_t pci_address(const struct pci_dev *d, uint8_t off)
{
	return PCI_ADDR_ENABLE | (uint32_t)d->bus << PCI_ADDR_BUS_SHIFT |
	       (uint32_t)d->slot << PCI_ADDR_SLOT_SHIFT |
	       (uint32_t)d->func << PCI_ADDR_FUNC_SHIFT | (off & PCI_ADDR_REG_MASK);
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
	outl(BH_PCI_CONFIG_ADDR, pci_address(d, off));
	return inl(BH_PCI_CONFIG_DATA);
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
	outl(BH_PCI_CONFIG_ADDR, pci_address(d, off));
	outl(BH_PCI_CONFIG_DATA, v);
}

static unsigned pci_shift(uint8_t off)
{
	return (off & 3) * 8;
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
	return pci_read32(d, off) >> pci_shift(off);
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
	return pci_read32(d, off) >> pci_shift(off);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
	uint32_t mask = 0xFFFFu << pci_shift(off);
	uint32_t old = pci_read32(d, off);

	pci_write32(d, off, (old & ~mask) | ((uint32_t)v << pci_shift(off)));
}

void pci_write8(const struct pci_dev *d, uint8_t off, uint8_t v)
{
	uint32_t mask = 0xFFu << pci_shift(off);
	uint32_t old = pci_read32(d, off);

	pci_write32(d, off, (old & ~mask) | ((uint32_t)v << pci_shift(off)));
}

void pci_set_command(const struct pci_dev *d, uint16_t cmd)
{
	/* Status (the upper half) is write-1-to-clear: writing zeros leaves it alone. */
	pci_write32(d, PCI_CFG_COMMAND, cmd);
}

int pci_probe(uint8_t bus, uint8_t slot, uint8_t func, struct pci_dev *d)
{
	uint32_t id, class_rev;

	*d = (struct pci_dev){ .bus = bus, .slot = slot, .func = func };
	id = pci_read32(d, PCI_CFG_VENDOR_ID);
	if ((id & 0xFFFF) == PCI_VENDOR_NONE)
		return -1;
	class_rev = pci_read32(d, PCI_CFG_REVISION);
	d->vendor = id & 0xFFFF;
	d->device = id >> 16;
	d->prog_if = class_rev >> 8;
	d->subclass = class_rev >> 16;
	d->class_code = class_rev >> 24;
	d->header_type = pci_read8(d, PCI_CFG_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
	return 0;
}

static int pci_scan_bus(uint8_t bus, int depth,
			int (*fn)(const struct pci_dev *d, void *ctx), void *ctx)
{
	struct pci_dev d;
	int ret;

	for (uint8_t slot = 0; slot < PCI_NR_SLOTS; slot++) {
		for (uint8_t func = 0; func < PCI_NR_FUNCS; func++) {
			if (pci_probe(bus, slot, func, &d) < 0) {
				if (func == 0)
					break;   /* no function 0: the slot is empty */
				continue;
			}
			ret = fn(&d, ctx);
			if (ret)
				return ret;
			if (d.header_type == PCI_HEADER_BRIDGE && depth < PCI_MAX_BRIDGE_DEPTH) {
				uint8_t sec = pci_read8(&d, PCI_CFG_SECONDARY_BUS);

				/* An unconfigured bridge (secondary 0) or a loop is skipped. */
				if (sec > bus) {
					ret = pci_scan_bus(sec, depth + 1, fn, ctx);
					if (ret)
						return ret;
				}
			}
			if (func == 0 && !(pci_read8(&d, PCI_CFG_HEADER_TYPE) & PCI_HEADER_MULTIFUNC))
				break;
		}
	}
	return 0;
}

int pci_foreach(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx)
{
	return pci_scan_bus(0, 0, fn, ctx);
}

struct pci_match {
	uint16_t vendor, device;
	uint8_t class_code, subclass;
	int by_class;
	unsigned index;
	struct pci_dev *out;
};

static int pci_match_one(const struct pci_dev *d, void *ctx)
{
	struct pci_match *m = ctx;
	int hit;

	if (m->by_class)
		hit = d->class_code == m->class_code &&
		      (m->subclass == PCI_ANY_CLASS || d->subclass == m->subclass);
	else
		hit = d->vendor == m->vendor &&
		      (m->device == PCI_ANY_ID || d->device == m->device);
	if (!hit)
		return 0;
	if (m->index--)
		return 0;
	*m->out = *d;
	return 1;
}

int pci_find_device(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *out)
{
	struct pci_match m = { .vendor = vendor, .device = device, .index = index, .out = out };

	return pci_foreach(pci_match_one, &m) ? 0 : -1;
}

int pci_find_class(uint8_t class_code, uint8_t subclass, unsigned index, struct pci_dev *out)
{
	struct pci_match m = { .class_code = class_code, .subclass = subclass, .by_class = 1,
			       .index = index, .out = out };

	return pci_foreach(pci_match_one, &m) ? 0 : -1;
}

/* Writes all-ones, reads back which bits stick, restores. */
static uint32_t pci_bar_mask(const struct pci_dev *d, uint8_t off, uint32_t orig)
{
	uint32_t mask;

	pci_write32(d, off, ~0u);
	mask = pci_read32(d, off);
	pci_write32(d, off, orig);
	return mask;
}

int pci_bar_probe(const struct pci_dev *d, unsigned n, struct pci_bar *bar)
{
	uint8_t off = PCI_CFG_BAR0 + 4 * n;
	uint32_t lo, mask_lo, hi = 0, mask_hi = ~0u;
	uint16_t cmd;
	uint64_t mask;

	if (n >= PCI_NR_BARS)
		return -1;
	*bar = (struct pci_bar){ 0 };
	lo = pci_read32(d, off);
	bar->is_io = lo & PCI_BAR_IO;
	bar->is_64bit = !bar->is_io && (lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64 &&
			n + 1 < PCI_NR_BARS;
	bar->prefetchable = !bar->is_io && (lo & PCI_BAR_MEM_PREFETCH);

	/* Decoding off while the BAR briefly holds all-ones, so it claims nothing. */
	cmd = pci_read16(d, PCI_CFG_COMMAND);
	pci_set_command(d, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	mask_lo = pci_bar_mask(d, off, lo);
	if (bar->is_64bit) {
		hi = pci_read32(d, off + 4);
		mask_hi = pci_bar_mask(d, off + 4, hi);
	}
	pci_set_command(d, cmd);

	if (bar->is_io) {
		mask = (mask_lo & PCI_BAR_IO_MASK) | ~(uint64_t)PCI_BAR_IO_SIZE_MASK;
		bar->addr = lo & PCI_BAR_IO_MASK;
	} else {
		mask = ((uint64_t)mask_hi << 32) | (mask_lo & PCI_BAR_MEM_MASK);
		bar->addr = ((uint64_t)hi << 32) | (lo & PCI_BAR_MEM_MASK);
	}
	/* The writable address bits are ~(size - 1); none writable: not implemented. */
	if ((mask_lo & (bar->is_io ? PCI_BAR_IO_MASK : PCI_BAR_MEM_MASK)) || mask_hi != ~0u)
		bar->size = ~mask + 1;
	if (bar->size == 0)
		bar->addr = 0;
	return n + (bar->is_64bit ? 2 : 1);
}

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id)
{
	uint8_t ptr;

	if (!(pci_read16(d, PCI_CFG_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	ptr = pci_read8(d, PCI_CFG_CAP_PTR) & PCI_CAP_PTR_MASK;
	for (int i = 0; ptr && i < PCI_MAX_CAPS; i++) {
		if (pci_read8(d, ptr + PCI_CAP_ID) == id)
			return ptr;
		ptr = pci_read8(d, ptr + PCI_CAP_NEXT) & PCI_CAP_PTR_MASK;
	}
	return 0;
}
