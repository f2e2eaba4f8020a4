/*
 * PCI configuration access (mechanism #1 at BH_PCI_CONFIG_ADDR/DATA), device discovery
 * by vendor/device or class, and BAR sizing including 64-bit BARs. Only 32-bit
 * accesses to the data port are used; narrower ones are read-modify-write.
 */
#ifndef INMATE_PCI_H
#define INMATE_PCI_H

#include <stdint.h>

#define PCI_VENDOR_NONE      0xFFFF   /* what an empty slot reads */
#define PCI_ANY_ID           0xFFFF   /* wildcard for pci_find_device's device id */
#define PCI_ANY_CLASS        0xFF     /* wildcard for pci_find_class's subclass */
#define PCI_NR_BARS          6

/* Standard configuration-header offsets. */
#define PCI_CFG_VENDOR_ID    0x00
#define PCI_CFG_DEVICE_ID    0x02
#define PCI_CFG_COMMAND      0x04
#define PCI_CFG_STATUS       0x06
#define PCI_CFG_REVISION     0x08
#define PCI_CFG_PROG_IF      0x09
#define PCI_CFG_SUBCLASS     0x0A
#define PCI_CFG_CLASS        0x0B
#define PCI_CFG_HEADER_TYPE  0x0E
#define PCI_CFG_BAR0         0x10
#define PCI_CFG_SECONDARY_BUS 0x19    /* type-1 (bridge) headers */
#define PCI_CFG_CAP_PTR      0x34
#define PCI_CFG_INT_LINE     0x3C
#define PCI_CFG_INT_PIN      0x3D

#define PCI_COMMAND_IO       0x0001
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_INTX_OFF 0x0400

#define PCI_STATUS_CAP_LIST  0x0010

struct pci_dev {
	uint8_t  bus, slot, func;
	uint16_t vendor, device;
	uint8_t  class_code, subclass, prog_if, header_type;   /* header_type without bit 7 */
};

struct pci_bar {
	uint64_t addr;        /* base address as programmed (flag bits removed) */
	uint64_t size;        /* 0: BAR not implemented */
	uint8_t  is_io;
	uint8_t  is_64bit;    /* this BAR and the next form one 64-bit BAR */
	uint8_t  prefetchable;
};

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
/* Read-modify-write of the containing dword; for the command register use
 * pci_set_command, which does not write back write-1-to-clear status bits. */
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);
void pci_write8(const struct pci_dev *d, uint8_t off, uint8_t v);
void pci_set_command(const struct pci_dev *d, uint16_t cmd);

/* Fill *d for bus/slot/func; returns 0, or -1 if nothing answers there. */
int pci_probe(uint8_t bus, uint8_t slot, uint8_t func, struct pci_dev *d);

/* Call fn for every function present, bus 0 and the buses behind bridges. Stops early
 * and returns fn's value when it is non-zero; else returns 0. */
int pci_foreach(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx);

/* The index-th (from 0) matching function. Returns 0 and fills *out, or -1. */
int pci_find_device(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *out);
int pci_find_class(uint8_t class_code, uint8_t subclass, unsigned index, struct pci_dev *out);

/* Size BAR n of a type-0 header (decoding is off while sizing). Returns the index of
 * the next BAR (n + 2 after a 64-bit BAR), or -1 for a bad n. */
int pci_bar_probe(const struct pci_dev *d, unsigned n, struct pci_bar *bar);

/* Offset of capability `id` in the capability list, or 0. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id);

#endif
