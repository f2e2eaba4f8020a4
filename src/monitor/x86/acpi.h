/*
 * Minimal ACPI tables (ACPI 6.x) for a Linux guest: how a kernel built without MP-table
 * support (Debian's cloud kernel) finds its local APICs, the IOAPIC, the ISA interrupt
 * overrides, the PCI root bridge with its INTx routing, and a way to power off. One
 * buffer, written for the guest-physical address it will be placed at (the BIOS area,
 * where Linux searches for the RSDP).
 */
#ifndef BH_MON_ACPI_H
#define BH_MON_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS     64
#define ACPI_RSDP_SIZE    36
#define ACPI_HEADER_SIZE  36
#define ACPI_FADT_SIZE    276      /* revision 6 */
#define ACPI_FACS_SIZE    64

/* PM1 control register bits (ACPI 6.x, 4.8.3.2.1) and the sleep type the DSDT's _S5
 * object names: a write of SLP_EN with this type is the guest powering off. */
#define ACPI_PM1_CNT_SCI_EN    0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  (0x7u << ACPI_PM1_CNT_SLP_TYP_SHIFT)
#define ACPI_PM1_CNT_SLP_EN    0x2000
#define ACPI_S5_SLP_TYP        5
#define ACPI_PM1_EVT_LEN       4   /* PM1 status (2 bytes), then PM1 enable (2) */
#define ACPI_PM1_CNT_LEN       2
#define ACPI_RESET_LEN         1   /* the reset register: one byte */

struct acpi_config {
	unsigned ncpus;                 /* local APIC IDs and processor UIDs 0 .. ncpus - 1 */
	uint32_t lapic_addr, ioapic_addr;
	uint8_t  ioapic_id;             /* after the CPUs' APIC IDs */
	unsigned ioapic_pins;           /* 24: GSIs 0 .. 23 */
	unsigned pci_pin_base;          /* INTA# of slot s: GSI base + s % 8 */
	uint8_t  sci_irq;               /* ISA IRQ of the SCI (9) */
	uint8_t  rtc_century;           /* CMOS index of the century byte, 0: none */
	uint16_t pm1a_evt, pm1a_cnt;    /* I/O ports of the PM1 event and control blocks */
	uint16_t reset_port;            /* the FADT's reset register (0: none) */
	uint8_t  reset_value;           /* and what resets */
	uint32_t pci_mmio_base, pci_mmio_end;   /* the root bridge's memory window, inclusive */
	uint16_t pvpanic_port;          /* the panic notification device (QEMU0001), 0: none */
};

/* Writes RSDP, XSDT, RSDT, FADT, FACS, MADT and DSDT into buf, laid out for the
 * guest-physical address gpa (16-byte aligned; the RSDP comes first). Returns the
 * bytes used, or 0 when len is too small or the configuration is out of range. */
size_t acpi_build(uint8_t *buf, size_t len, uint32_t gpa, const struct acpi_config *c);

/* The 8-bit sum that makes n bytes sum to zero. */
uint8_t acpi_checksum(const uint8_t *p, size_t n);

#endif
