/*
 * The 8254 programmable interval timer (KVM's in-kernel PIT): channel 0 as a periodic
 * interrupt source on IRQ 0, channel 2 (gated through port 0x61) as a one-shot
 * reference for measuring the TSC.
 */
#ifndef INMATE_PIT_H
#define INMATE_PIT_H

#include <stdint.h>

#define PIT_HZ           1193182u    /* input clock of every channel */
#define PIT_IRQ          0           /* channel 0 output, on the PIC and as GSI 0 */
#define PIT_MAX_COUNT    65536u      /* a count of 0 means 65536 */

/* Start channel 0 as a rate generator at about `hz`. Returns the divisor used (the real
 * rate is PIT_HZ / divisor), or 0 if hz is out of range (19..PIT_HZ). */
uint32_t pit_start_periodic(uint32_t hz);
void pit_stop(void);

/* Channel 2 one-shot: arm for `count` input clocks, then poll until it has expired.
 * pit_oneshot_wait returns 0, or -1 if the output never rose within `max_polls`. */
void pit_oneshot_start(uint16_t count);
int pit_oneshot_wait(uint64_t max_polls);

#endif
