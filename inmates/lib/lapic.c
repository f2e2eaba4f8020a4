/*
 * Local APIC driver (xAPIC MMIO registers): enable, identify, end-of-interrupt, and the
 * one-shot timer that bounds every halt waiting for a device interrupt.
 */
#include <bulkhead/platform.h>
#include <inmate/io.h>
#include <inmate/irq.h>
#include <inmate/lapic.h>
#include <inmate/tsc.h>

#define LAPIC_REG_ID       0x020
#define LAPIC_REG_TPR      0x080
#define LAPIC_REG_EOI      0x0B0
#define LAPIC_REG_SVR      0x0F0
#define LAPIC_REG_LVT_TIMER 0x320
#define LAPIC_REG_LVT_LINT0 0x350
#define LAPIC_REG_LVT_LINT1 0x360
#define LAPIC_REG_TIMER_INIT 0x380
#define LAPIC_REG_TIMER_CUR  0x390
#define LAPIC_REG_TIMER_DIV  0x3E0

#define LAPIC_ID_SHIFT     24
#define LAPIC_SVR_ENABLE   0x100
#define LAPIC_LVT_EXTINT   (7u << 8)
#define LAPIC_LVT_NMI      (4u << 8)
#define LAPIC_TPR_ALL      0        /* accept interrupts of every priority */
#define LAPIC_LVT_MASKED   (1u << 16)
#define LAPIC_LVT_TSC_DEADLINE (2u << 17)  /* timer mode bits 17-18: 10b */
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define MSR_TSC_DEADLINE   0x6E0
#define LAPIC_TIMER_DIV_1  0xB      /* divide configuration: by 1 */
#define LAPIC_CAL_US       2000u    /* calibration window against the TSC */
#define LAPIC_CAL_START    0xFFFFFFFFu

static uint64_t lapic_timer_freq_khz;
static volatile uint64_t lapic_timer_fired;

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(BH_LAPIC_ADDR + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(BH_LAPIC_ADDR + reg, v);
}

void lapic_enable(void)
{
	lapic_write(LAPIC_REG_TPR, LAPIC_TPR_ALL);
	/* Virtual-wire mode: the PIC's output still reaches the CPU through LINT0. */
	lapic_write(LAPIC_REG_LVT_LINT0, LAPIC_LVT_EXTINT);
	lapic_write(LAPIC_REG_LVT_LINT1, LAPIC_LVT_NMI);
	lapic_write(LAPIC_REG_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_REG_ID) >> LAPIC_ID_SHIFT;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_REG_EOI, 0);
}

static void lapic_timer_irq(struct irq_frame *f)
{
	(void)f;
	lapic_timer_fired++;
	lapic_eoi();
}

/* Counts timer ticks (divide by 1) across a TSC-timed busy wait; once. */
uint64_t lapic_timer_khz(void)
{
	uint32_t left;

	if (lapic_timer_freq_khz)
		return lapic_timer_freq_khz;
	lapic_enable();
	lapic_write(LAPIC_REG_LVT_TIMER, LAPIC_LVT_MASKED | LAPIC_TIMER_VECTOR);
	lapic_write(LAPIC_REG_TIMER_DIV, LAPIC_TIMER_DIV_1);
	lapic_write(LAPIC_REG_TIMER_INIT, LAPIC_CAL_START);
	udelay(LAPIC_CAL_US);
	left = lapic_read(LAPIC_REG_TIMER_CUR);
	lapic_write(LAPIC_REG_TIMER_INIT, 0);
	lapic_timer_freq_khz = (uint64_t)(LAPIC_CAL_START - left) * 1000u / LAPIC_CAL_US;
	return lapic_timer_freq_khz;
}

int lapic_timer_oneshot_us(uint64_t us)
{
	uint64_t khz = lapic_timer_khz(), count;

	if (!khz)
		return -1;
	count = us * khz / 1000u;
	if (count == 0)
		count = 1;
	if (count > 0xFFFFFFFFu)
		count = 0xFFFFFFFFu;
	irq_register(LAPIC_TIMER_VECTOR, lapic_timer_irq);
	lapic_write(LAPIC_REG_LVT_TIMER, LAPIC_TIMER_VECTOR);   /* one-shot, unmasked */
	lapic_write(LAPIC_REG_TIMER_DIV, LAPIC_TIMER_DIV_1);
	lapic_write(LAPIC_REG_TIMER_INIT, (uint32_t)count);
	return 0;
}

void lapic_timer_cancel(void)
{
	lapic_write(LAPIC_REG_TIMER_INIT, 0);
}

uint64_t lapic_timer_count(void)
{
	return lapic_timer_fired;
}

/*
 * Raw timer programming for a program that takes the timer interrupt itself (the
 * latency inmate): it registers its own handler on `vector` and EOIs there. The LVT is
 * written once here, so each later shot costs one register write (one exit), not two.
 */
int lapic_tsc_deadline_supported(void)
{
	uint32_t r[4];

	cpu_cpuid(1, 0, r);
	return !!(r[2] & CPUID_1_ECX_TSC_DEADLINE);
}

int lapic_timer_deadline_setup(unsigned vector)
{
	if (!lapic_tsc_deadline_supported())
		return -1;
	lapic_enable();
	lapic_write(LAPIC_REG_LVT_TIMER, LAPIC_LVT_TSC_DEADLINE | vector);
	/*
	 * The SDM asks for a fence between the LVT's (MMIO) mode switch and the first
	 * deadline write, which is an MSR write and not serializing. No mfence here (see
	 * docs/inmates.md): a locked no-op orders the same way.
	 */
	__asm__ volatile("lock; addl $0, (%%rsp)" : : : "memory", "cc");
	return 0;
}

void lapic_timer_deadline(uint64_t tsc)
{
	cpu_wrmsr(MSR_TSC_DEADLINE, tsc);
}

int lapic_timer_oneshot_setup(unsigned vector)
{
	if (!lapic_timer_khz())
		return -1;
	lapic_write(LAPIC_REG_LVT_TIMER, vector);   /* one-shot, unmasked */
	lapic_write(LAPIC_REG_TIMER_DIV, LAPIC_TIMER_DIV_1);
	return 0;
}

void lapic_timer_start(uint32_t count)
{
	lapic_write(LAPIC_REG_TIMER_INIT, count);
}
