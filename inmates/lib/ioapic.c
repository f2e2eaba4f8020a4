/*
 * I/O APIC driver: indirect register access through IOREGSEL/IOWIN and programming of
 * the 64-bit redirection entries.
 */
#include <bulkhead/platform.h>
#include <inmate/io.h>
#include <inmate/ioapic.h>

#define IOAPIC_IOREGSEL      0x00
#define IOAPIC_IOWIN         0x10

#define IOAPIC_REG_VER       0x01
#define IOAPIC_REG_REDTBL    0x10    /* entry n: low dword at 0x10 + 2n, high at +1 */

#define IOAPIC_VER_MAXREDIR_SHIFT 16
#define IOAPIC_VER_MAXREDIR_MASK  0xFF

#define IOAPIC_RTE_DELIVERY_FIXED 0x000
#define IOAPIC_RTE_DEST_PHYSICAL  0x000
#define IOAPIC_RTE_POLARITY_LOW   (1u << 13)
#define IOAPIC_RTE_TRIGGER_LEVEL  (1u << 15)
#define IOAPIC_RTE_MASKED         (1u << 16)
#define IOAPIC_RTE_DEST_SHIFT     24      /* in the high dword */

#define IOAPIC_MIN_VECTOR         0x10    /* vectors below are reserved/illegal */

static uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(BH_IOAPIC_ADDR + IOAPIC_IOREGSEL, reg);
	return mmio_read32(BH_IOAPIC_ADDR + IOAPIC_IOWIN);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(BH_IOAPIC_ADDR + IOAPIC_IOREGSEL, reg);
	mmio_write32(BH_IOAPIC_ADDR + IOAPIC_IOWIN, v);
}

unsigned ioapic_nr_pins(void)
{
	uint32_t ver = ioapic_read(IOAPIC_REG_VER);

	return ((ver >> IOAPIC_VER_MAXREDIR_SHIFT) & IOAPIC_VER_MAXREDIR_MASK) + 1;
}

int ioapic_route(unsigned pin, uint8_t vector, int trigger, int polarity, uint32_t apic_id)
{
	uint32_t lo = vector | IOAPIC_RTE_DELIVERY_FIXED | IOAPIC_RTE_DEST_PHYSICAL;

	if (pin >= ioapic_nr_pins() || vector < IOAPIC_MIN_VECTOR)
		return -1;
	if (trigger == IOAPIC_TRIGGER_LEVEL)
		lo |= IOAPIC_RTE_TRIGGER_LEVEL;
	if (polarity == IOAPIC_POLARITY_LOW)
		lo |= IOAPIC_RTE_POLARITY_LOW;
	/* Masked while half-written, so no interrupt fires with a stale destination. */
	ioapic_write(IOAPIC_REG_REDTBL + 2 * pin, IOAPIC_RTE_MASKED);
	ioapic_write(IOAPIC_REG_REDTBL + 2 * pin + 1, apic_id << IOAPIC_RTE_DEST_SHIFT);
	ioapic_write(IOAPIC_REG_REDTBL + 2 * pin, lo);
	return 0;
}

void ioapic_mask(unsigned pin)
{
	uint32_t lo;

	if (pin >= ioapic_nr_pins())
		return;
	lo = ioapic_read(IOAPIC_REG_REDTBL + 2 * pin);
	ioapic_write(IOAPIC_REG_REDTBL + 2 * pin, lo | IOAPIC_RTE_MASKED);
}
