/*
 * A periodic tick from PIT channel 0, delivered through the PIC (IRQ 0) or through the
 * IOAPIC and LAPIC. The runtime counts ticks; a program may add a per-tick callback.
 */
#ifndef INMATE_TIMER_H
#define INMATE_TIMER_H

#include <stdint.h>

#define TIMER_VECTOR_IOAPIC   0x30     /* vector used when routed through the IOAPIC */
#define TIMER_PIT_GSI_DEFAULT 0        /* KVM's default routing: GSI 0 -> IOAPIC pin 0 */

/* Start ticking at about hz. Interrupts stay as they were: the caller enables them.
 * Returns 0, or -1 when hz or the pin is unusable. */
int timer_start_pic(uint32_t hz);
int timer_start_ioapic(uint32_t hz, unsigned ioapic_pin);
void timer_stop(void);

uint64_t timer_ticks(void);
/* The programmed rate in millihertz (PIT_HZ / divisor is rarely a whole number). */
uint64_t timer_rate_mhz(void);
/* Called from the interrupt handler with the new tick count; NULL for none. */
void timer_set_callback(void (*fn)(uint64_t ticks));

#endif
