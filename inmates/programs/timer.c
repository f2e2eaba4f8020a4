/*
 * timer: runs the PIT at TIMER_HZ for about TIMER_RUN_MS while halting, and checks that
 * the interrupt-driven tick count matches the TSC-measured time. Arguments:
 * `[ioapic [PIN]]` routes the tick through the IOAPIC (default: the PIC).
 */
#include <inmate/inmate.h>

#define TIMER_HZ            1000u
#define TIMER_RUN_MS        200u
#define TIMER_PROBE_MS      20u    /* busy-wait first, so a dead timer cannot hang hlt */
#define TIMER_TOLERANCE_PCT 25u    /* nested virtualisation is noisy */
#define US_PER_MS           1000u
#define MHZ_PER_HZ          1000u

static uint64_t expected_ticks(uint64_t us)
{
	return us * timer_rate_mhz() / MHZ_PER_HZ / (US_PER_MS * US_PER_MS);
}

static int start(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ioapic")) {
		unsigned pin = argc > 2 ? strtoul(argv[2], 0, 0) : TIMER_PIT_GSI_DEFAULT;

		printf("timer: PIT via IOAPIC pin %u -> LAPIC %u, vector 0x%x\n", pin,
		       lapic_id(), TIMER_VECTOR_IOAPIC);
		return timer_start_ioapic(TIMER_HZ, pin);
	}
	printf("timer: PIT via PIC IRQ %u, vector 0x%x\n", PIT_IRQ, PIC_VECTOR(PIT_IRQ));
	return timer_start_pic(TIMER_HZ);
}

/* Busy-waits with interrupts on: tells whether ticks arrive at all. */
static uint64_t probe(void)
{
	uint64_t t0 = timer_ticks();

	irq_enable();
	mdelay(TIMER_PROBE_MS);
	irq_disable();
	return timer_ticks() - t0;
}

int main(int argc, char **argv)
{
	uint64_t t0, t_end, ticks0, ticks, wakeups = 0, us, expect, probe_ticks;

	printf("timer: TSC %lu kHz (from %s)\n", tsc_khz(), tsc_source_name());
	if (!EXPECT_GT(tsc_khz(), 0))
		return test_summary();
	if (!EXPECT_EQ(start(argc, argv), 0))
		return test_summary();
	printf("timer: PIT at %lu.%03lu Hz\n", timer_rate_mhz() / MHZ_PER_HZ,
	       timer_rate_mhz() % MHZ_PER_HZ);

	probe_ticks = probe();
	printf("timer: %lu ticks during a %u ms busy wait (expected ~%lu)\n", probe_ticks,
	       TIMER_PROBE_MS, expected_ticks(TIMER_PROBE_MS * US_PER_MS));
	if (!EXPECT_GT(probe_ticks, 0)) {
		timer_stop();
		return test_summary();
	}

	ticks0 = timer_ticks();
	t0 = tsc_now();
	t_end = t0 + tsc_from_us(TIMER_RUN_MS * US_PER_MS);
	while (tsc_now() < t_end) {
		cpu_sti_hlt();
		wakeups++;
	}
	irq_disable();
	ticks = timer_ticks() - ticks0;
	us = tsc_to_us(tsc_now() - t0);
	timer_stop();

	expect = expected_ticks(us);
	printf("timer: %lu ticks in %lu us while halting (expected %lu, %lu wake-ups)\n",
	       ticks, us, expect, wakeups);
	EXPECT_NEAR(ticks, expect, expect * TIMER_TOLERANCE_PCT / 100);
	/* Every wake-up should be a tick: more would mean something else interrupts us. */
	EXPECT_LE(wakeups, ticks + 1);
	EXPECT_EQ(irq_unexpected_count(), 0);
	return test_summary();
}
