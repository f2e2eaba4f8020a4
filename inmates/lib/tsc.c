/*
 * TSC frequency and delays. Calibration counts TSC cycles across a PIT channel 2
 * one-shot of known length; the monitor's tsc_khz, when given, is preferred.
 */
#include <inmate/pit.h>
#include <inmate/runtime.h>
#include <inmate/tsc.h>

#define TSC_CAL_US          20000u   /* 20 ms: long enough to swamp exit jitter */
#define TSC_CAL_COUNT       ((uint32_t)((uint64_t)PIT_HZ * TSC_CAL_US / 1000000u))
#define TSC_CAL_MAX_POLLS   100000000ull
#define US_PER_MS           1000u

_Static_assert(TSC_CAL_COUNT < PIT_MAX_COUNT, "calibration must fit one PIT count");

static uint64_t tsc_freq_khz;
static enum tsc_source tsc_src;
static int tsc_tried;

static void tsc_init(void)
{
	const struct bh_bootinfo *bi = bh_bootinfo();
	uint64_t start;

	/* Once only: a failed calibration is not retried by every later udelay. */
	if (tsc_tried)
		return;
	tsc_tried = 1;
	if (bi->tsc_khz) {
		tsc_freq_khz = bi->tsc_khz;
		tsc_src = TSC_SOURCE_BOOTINFO;
		return;
	}
	pit_oneshot_start(TSC_CAL_COUNT);
	start = tsc_now();
	if (pit_oneshot_wait(TSC_CAL_MAX_POLLS) < 0)
		return;
	/* cycles / (count / PIT_HZ seconds), in kHz */
	tsc_freq_khz = (tsc_now() - start) * PIT_HZ / TSC_CAL_COUNT / 1000u;
	tsc_src = TSC_SOURCE_PIT;
}

uint64_t tsc_khz(void)
{
	tsc_init();
	return tsc_freq_khz;
}

enum tsc_source tsc_source(void)
{
	tsc_init();
	return tsc_src;
}

const char *tsc_source_name(void)
{
	switch (tsc_source()) {
	case TSC_SOURCE_BOOTINFO: return "bootinfo";
	case TSC_SOURCE_PIT: return "PIT calibration";
	default: return "none";
	}
}

uint64_t tsc_to_us(uint64_t cycles)
{
	uint64_t khz = tsc_khz();

	return khz ? cycles * US_PER_MS / khz : 0;
}

uint64_t tsc_from_us(uint64_t us)
{
	return us * tsc_khz() / US_PER_MS;
}

void udelay(uint64_t us)
{
	uint64_t start = tsc_now(), cycles = tsc_from_us(us);

	while (tsc_now() - start < cycles)
		cpu_relax();
}

void mdelay(uint64_t ms)
{
	udelay(ms * US_PER_MS);
}
