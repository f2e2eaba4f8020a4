/*
 * The partition's PCI bus: configuration mechanism #1 at 0xCF8/0xCFC, a host bridge at
 * 00:00.0 and a slot table on bus 0 that later devices (virtio-pci, ivshmem) register
 * into. Function 0 only; other buses, slots and functions read all-ones.
 */
#ifndef BH_MON_PCI_H
#define BH_MON_PCI_H

#include <stdint.h>

#define PCI_SLOTS          32
#define PCI_CFG_SIZE       256

/* Standard type-0 header offsets. */
#define PCI_CFG_VENDOR_ID  0x00
#define PCI_CFG_DEVICE_ID  0x02
#define PCI_CFG_COMMAND    0x04
#define PCI_CFG_STATUS     0x06
#define PCI_CFG_REVISION   0x08
#define PCI_CFG_CLASS      0x09     /* prog-if, subclass, class: 3 bytes */
#define PCI_CFG_HEADER     0x0e
#define PCI_CFG_BAR0       0x10
#define PCI_CFG_SUBSYS_VID 0x2c
#define PCI_CFG_SUBSYS_ID  0x2e
#define PCI_CFG_CAP_PTR    0x34
#define PCI_CFG_INT_LINE   0x3c
#define PCI_CFG_INT_PIN    0x3d

#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_OFF 0x0400
#define PCI_STATUS_INTX    0x0008
#define PCI_STATUS_CAPS    0x0010
#define PCI_BAR_MEM_64     0x4
#define PCI_CAP_ID_MSIX    0x11
#define PCI_CAP_ID_VENDOR  0x09

struct io_space;

/* A device's configuration space is data: cfg[] as read, wmask[] the bits a guest write
 * may change (so BAR sizing and command bits need no code). cfg_written, if set, is
 * called after each write that reached the space; cfg_read, if set, before each read
 * (to refresh bytes that reflect device state). */
struct pci_dev {
	const char *name;
	uint8_t     cfg[PCI_CFG_SIZE];
	uint8_t     wmask[PCI_CFG_SIZE];
	void      (*cfg_written)(struct pci_dev *d, unsigned off, unsigned size);
	void      (*cfg_read)(struct pci_dev *d, unsigned off, unsigned size);
	void       *opaque;
};

struct pci_bus {
	uint32_t        addr;     /* the CONFIG_ADDRESS latch */
	struct pci_dev *slot[PCI_SLOTS];
	struct pci_dev  host;
};

int pci_init(struct pci_bus *b, struct io_space *io);

/* Put d at 00:slot.0. Returns 0, -EINVAL (slot out of range) or -EBUSY. */
int pci_register(struct pci_bus *b, unsigned slot, struct pci_dev *d);

/* Little-endian helpers for building a configuration header. */
void pci_cfg_set(struct pci_dev *d, unsigned off, uint32_t val, unsigned size);
uint32_t pci_cfg_get(const struct pci_dev *d, unsigned off, unsigned size);

#endif
