/*
 * The I/O APIC at BH_IOAPIC_ADDR (KVM's in-kernel IOAPIC, 24 pins). With KVM's default
 * routing, GSI n (legacy IRQ n, including the PIT on 0) drives pin n.
 */
#ifndef INMATE_IOAPIC_H
#define INMATE_IOAPIC_H

#include <stdint.h>

#define IOAPIC_TRIGGER_EDGE    0
#define IOAPIC_TRIGGER_LEVEL   1
#define IOAPIC_POLARITY_HIGH   0
#define IOAPIC_POLARITY_LOW    1

/* Number of redirection entries the IOAPIC reports. */
unsigned ioapic_nr_pins(void);

/* Deliver `pin` as `vector` (fixed mode, physical destination `apic_id`), unmasked.
 * Enable the LAPIC first; handlers end with lapic_eoi(). Returns 0 or -1 (bad pin or
 * vector). */
int ioapic_route(unsigned pin, uint8_t vector, int trigger, int polarity, uint32_t apic_id);
void ioapic_mask(unsigned pin);

#endif
