/*
 * The local APIC at BH_LAPIC_ADDR (KVM's in-kernel LAPIC), in xAPIC (MMIO) mode.
 * Needed for IOAPIC and MSI delivery; the PIC keeps working through LINT0 (ExtINT).
 */
#ifndef INMATE_LAPIC_H
#define INMATE_LAPIC_H

#include <stdint.h>

#define LAPIC_SPURIOUS_VECTOR  0xFF

/* Software-enable the LAPIC with LAPIC_SPURIOUS_VECTOR, accept every priority, and
 * keep LINT0 as ExtINT so PIC interrupts still arrive. Idempotent. */
void lapic_enable(void);
uint32_t lapic_id(void);
void lapic_eoi(void);          /* call from the handler of an IOAPIC/MSI interrupt */

#endif
