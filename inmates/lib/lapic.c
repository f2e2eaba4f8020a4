/*
 * Local APIC driver (xAPIC MMIO registers): enable, identify, end-of-interrupt.
 */
#include <bulkhead/platform.h>
#include <inmate/io.h>
#include <inmate/lapic.h>

#define LAPIC_REG_ID       0x020
#define LAPIC_REG_TPR      0x080
#define LAPIC_REG_EOI      0x0B0
#define LAPIC_REG_SVR      0x0F0
#define LAPIC_REG_LVT_LINT0 0x350
#define LAPIC_REG_LVT_LINT1 0x360

#define LAPIC_ID_SHIFT     24
#define LAPIC_SVR_ENABLE   0x100
#define LAPIC_LVT_EXTINT   (7u << 8)
#define LAPIC_LVT_NMI      (4u << 8)
#define LAPIC_TPR_ALL      0        /* accept interrupts of every priority */

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
