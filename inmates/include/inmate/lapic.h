/*
 * The local APIC at BH_LAPIC_ADDR (KVM's in-kernel LAPIC), in xAPIC (MMIO) mode.
 * Needed for IOAPIC and MSI delivery; the PIC keeps working through LINT0 (ExtINT).
 */
#ifndef INMATE_LAPIC_H
#define INMATE_LAPIC_H

#include <stdint.h>

#define LAPIC_SPURIOUS_VECTOR  0xFF
#define LAPIC_TIMER_VECTOR     0xFE   /* the one-shot timer's own vector */

/* Software-enable the LAPIC with LAPIC_SPURIOUS_VECTOR, accept every priority, and
 * keep LINT0 as ExtINT so PIC interrupts still arrive. Idempotent. */
void lapic_enable(void);
uint32_t lapic_id(void);
void lapic_eoi(void);          /* call from the handler of an IOAPIC/MSI interrupt */

/* The LAPIC timer as a one-shot wake-up: after `us` microseconds an interrupt arrives
 * on LAPIC_TIMER_VECTOR (the runtime's handler counts it and EOIs), so a `sti; hlt`
 * waiting for a device can never sleep forever. The frequency is measured once
 * against the TSC (lapic_timer_khz, 0 if the timer does not count). Re-arming replaces
 * the previous shot. The caller enables interrupts. Returns 0, or -1 without a timer. */
uint64_t lapic_timer_khz(void);
int lapic_timer_oneshot_us(uint64_t us);
void lapic_timer_cancel(void);
uint64_t lapic_timer_count(void);     /* shots delivered so far */

/* The timer for a program that handles its interrupt itself (irq_register(vector, fn);
 * fn EOIs). TSC-deadline mode, when CPUID.1:ECX[24] offers it: setup puts the LVT in that
 * mode on `vector` (-1 if not offered), then each lapic_timer_deadline(tsc) arms one
 * shot at that absolute TSC value (0 disarms). One-shot mode: setup (-1 if the timer
 * does not count) puts the LVT in one-shot mode, divide by 1, then lapic_timer_start(n)
 * fires after n timer ticks (lapic_timer_khz() per ms; 0 stops). lapic_timer_oneshot_us
 * reprograms the LVT for the runtime's own vector. */
int lapic_tsc_deadline_supported(void);
int lapic_timer_deadline_setup(unsigned vector);
void lapic_timer_deadline(uint64_t tsc);
int lapic_timer_oneshot_setup(unsigned vector);
void lapic_timer_start(uint32_t count);

#endif
