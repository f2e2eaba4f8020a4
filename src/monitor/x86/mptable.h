/*
 * An Intel MultiProcessor Specification 1.4 table: how a guest that does not run the
 * project's own runtime (Linux) finds the vCPUs' local APICs, the IOAPIC and where the
 * ISA and PCI interrupt lines land. A floating pointer and a configuration table,
 * written to one buffer that the monitor places in the BIOS area (0xF0000-0xFFFFF),
 * where Linux searches for it.
 */
#ifndef BH_MON_MPTABLE_H
#define BH_MON_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#define MPT_MAX_CPUS  64

struct mpt_config {
	unsigned ncpus;                  /* local APIC IDs 0 .. ncpus - 1; 0 is the BSP */
	uint32_t lapic_addr, ioapic_addr;
	unsigned ioapic_pins;            /* 24 */
	uint32_t pci_slots;              /* bit s: a function at 00:s.0 with INTA# */
	unsigned pci_pin_base;           /* INTA# of slot s goes to pin base + s % 8 */
};

/* Writes the table for the buffer's guest-physical address gpa; returns its length,
 * or 0 when len is too small or the configuration out of range. */
size_t mpt_build(uint8_t *buf, size_t len, uint32_t gpa, const struct mpt_config *c);

#endif
