/*
 * The periodic tick: PIT channel 0 plus the interrupt path chosen by the caller (PIC
 * line 0, or an IOAPIC pin and the LAPIC). The handler counts and acknowledges.
 */
#include <inmate/ioapic.h>
#include <inmate/irq.h>
#include <inmate/lapic.h>
#include <inmate/pic.h>
#include <inmate/pit.h>
#include <inmate/timer.h>

#define MHZ_PER_HZ 1000u

enum timer_route { TIMER_ROUTE_NONE, TIMER_ROUTE_PIC, TIMER_ROUTE_IOAPIC };

static volatile uint64_t timer_count;
static uint32_t timer_divisor;
static enum timer_route timer_route;
static unsigned timer_pin;
static void (*timer_callback)(uint64_t ticks);

static void timer_irq(struct irq_frame *f)
{
	(void)f;
	timer_count++;
	if (timer_callback)
		timer_callback(timer_count);
	if (timer_route == TIMER_ROUTE_IOAPIC)
		lapic_eoi();
	else
		pic_eoi(PIT_IRQ);
}

int timer_start_pic(uint32_t hz)
{
	uint32_t divisor;

	pic_init();
	timer_stop();
	divisor = pit_start_periodic(hz);
	if (!divisor)
		return -1;
	timer_divisor = divisor;
	timer_route = TIMER_ROUTE_PIC;
	irq_register(PIC_VECTOR(PIT_IRQ), timer_irq);
	pic_unmask(PIT_IRQ);
	return 0;
}

int timer_start_ioapic(uint32_t hz, unsigned ioapic_pin)
{
	/* The PIC must stay masked, or both paths would deliver every tick. */
	uint32_t divisor;

	pic_init();
	timer_stop();
	lapic_enable();
	irq_register(TIMER_VECTOR_IOAPIC, timer_irq);
	if (ioapic_route(ioapic_pin, TIMER_VECTOR_IOAPIC, IOAPIC_TRIGGER_EDGE,
			 IOAPIC_POLARITY_HIGH, lapic_id()) < 0)
		return -1;
	timer_route = TIMER_ROUTE_IOAPIC;
	timer_pin = ioapic_pin;
	divisor = pit_start_periodic(hz);
	if (!divisor) {
		timer_stop();
		return -1;
	}
	timer_divisor = divisor;
	return 0;
}

void timer_stop(void)
{
	if (timer_route == TIMER_ROUTE_PIC)
		pic_mask(PIT_IRQ);
	else if (timer_route == TIMER_ROUTE_IOAPIC)
		ioapic_mask(timer_pin);
	if (timer_route != TIMER_ROUTE_NONE)
		pit_stop();
	timer_route = TIMER_ROUTE_NONE;
}

uint64_t timer_ticks(void)
{
	return timer_count;
}

uint64_t timer_rate_mhz(void)
{
	return timer_divisor ? (uint64_t)PIT_HZ * MHZ_PER_HZ / timer_divisor : 0;
}

void timer_set_callback(void (*fn)(uint64_t ticks))
{
	timer_callback = fn;
}
