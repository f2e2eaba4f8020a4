/*
 * PCI configuration mechanism #1 and the host bridge. CONFIG_ADDRESS (0xCF8) selects
 * bus/device/function/register with bit 31 enabling; CONFIG_DATA (0xCFC..0xCFF) reads or
 * writes that register at the byte offset of the port.
 */
#include <errno.h>
#include <string.h>

#include "bulkhead/platform.h"
#include "monitor/io.h"
#include "monitor/pci.h"

#define PCI_ADDR_ENABLE      0x80000000u
#define PCI_ADDR_BUS(a)      (((a) >> 16) & 0xff)
#define PCI_ADDR_DEV(a)      (((a) >> 11) & 0x1f)
#define PCI_ADDR_FN(a)       (((a) >> 8) & 0x7)
#define PCI_ADDR_REG(a)      ((a) & 0xfc)
#define PCI_ADDR_MASK        0x80fffffcu     /* reserved bits read back as zero */

/* The host bridge's identity: Red Hat's generic "PCIe host bridge" id, class 06/00/00. */
#define PCI_HOST_VENDOR      0x1b36
#define PCI_HOST_DEVICE      0x0008
#define PCI_CLASS_HOST_BRIDGE 0x060000

void pci_cfg_set(struct pci_dev *d, unsigned off, uint32_t val, unsigned size)
{
	for (unsigned i = 0; i < size && off + i < PCI_CFG_SIZE; i++)
		d->cfg[off + i] = val >> (8 * i);
}

uint32_t pci_cfg_get(const struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t val = 0;

	for (unsigned i = 0; i < size && off + i < PCI_CFG_SIZE; i++)
		val |= (uint32_t)d->cfg[off + i] << (8 * i);
	return val;
}

static struct pci_dev *pci_selected(struct pci_bus *b)
{
	uint32_t a = b->addr;

	if (!(a & PCI_ADDR_ENABLE) || PCI_ADDR_BUS(a) || PCI_ADDR_FN(a))
		return NULL;
	return b->slot[PCI_ADDR_DEV(a)];
}

static int pci_addr_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct pci_bus *b = opaque;
	unsigned shift = 8 * off;
	uint32_t mask = (size == 4 ? 0xffffffffu : ((1u << (8 * size)) - 1)) << shift;

	if (write)
		b->addr = ((b->addr & ~mask) | ((uint32_t)*val << shift)) & PCI_ADDR_MASK;
	else
		*val = (b->addr & mask) >> shift;
	return 0;
}

static int pci_data_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct pci_bus *b = opaque;
	struct pci_dev *d = pci_selected(b);
	unsigned reg = PCI_ADDR_REG(b->addr) + off;

	if (!d) {
		if (!write)
			*val = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
		return 0;
	}
	if (!write) {
		if (d->cfg_read)
			d->cfg_read(d, reg, size);
		*val = pci_cfg_get(d, reg, size);
		return 0;
	}
	for (unsigned i = 0; i < size; i++) {
		uint8_t wm = d->wmask[reg + i];
		uint8_t byte = *val >> (8 * i);

		d->cfg[reg + i] = (d->cfg[reg + i] & ~wm) | (byte & wm);
	}
	if (d->cfg_written)
		d->cfg_written(d, reg, size);
	return 0;
}

int pci_register(struct pci_bus *b, unsigned slot, struct pci_dev *d)
{
	if (slot >= PCI_SLOTS)
		return -EINVAL;
	if (b->slot[slot])
		return -EBUSY;
	b->slot[slot] = d;
	return 0;
}

int pci_init(struct pci_bus *b, struct io_space *io)
{
	struct pci_dev *h = &b->host;
	int ret;

	memset(b, 0, sizeof(*b));
	h->name = "host-bridge";
	pci_cfg_set(h, PCI_CFG_VENDOR_ID, PCI_HOST_VENDOR, 2);
	pci_cfg_set(h, PCI_CFG_DEVICE_ID, PCI_HOST_DEVICE, 2);
	pci_cfg_set(h, PCI_CFG_CLASS, PCI_CLASS_HOST_BRIDGE, 3);
	pci_cfg_set(h, PCI_CFG_SUBSYS_VID, PCI_HOST_VENDOR, 2);
	pci_cfg_set(h, PCI_CFG_SUBSYS_ID, PCI_HOST_DEVICE, 2);
	/* Header type 0, single function; everything read-only (wmask all zero). */
	ret = pci_register(b, 0, h);
	if (!ret)
		ret = io_register(&io->port, BH_PCI_CONFIG_ADDR, 4, "pci-addr", pci_addr_io, b);
	if (!ret)
		ret = io_register(&io->port, BH_PCI_CONFIG_DATA, 4, "pci-data", pci_data_io, b);
	return ret;
}
