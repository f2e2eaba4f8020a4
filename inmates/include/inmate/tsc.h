/*
 * Time from the TSC: its frequency comes from bootinfo->tsc_khz when the monitor knows
 * it, else from a calibration against PIT channel 2 (done once, on first use).
 */
#ifndef INMATE_TSC_H
#define INMATE_TSC_H

#include <stdint.h>
#include <inmate/cpu.h>

enum tsc_source { TSC_SOURCE_NONE, TSC_SOURCE_BOOTINFO, TSC_SOURCE_PIT };

static inline uint64_t tsc_now(void)
{
	return cpu_rdtsc();
}

/* TSC frequency in kHz; 0 only if calibration failed. */
uint64_t tsc_khz(void);
enum tsc_source tsc_source(void);
const char *tsc_source_name(void);

uint64_t tsc_to_us(uint64_t cycles);
uint64_t tsc_from_us(uint64_t us);

/* Busy-wait (no interrupts needed). */
void udelay(uint64_t us);
void mdelay(uint64_t ms);

#endif
