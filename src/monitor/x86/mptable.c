/*
 * MP table (see mptable.h): the floating pointer, then the configuration table with
 * processor, bus, IOAPIC and interrupt assignment entries, each structure's checksum
 * making its bytes sum to zero.
 */
#include <stdbool.h>
#include <string.h>

#include "monitor/x86/mptable.h"

#define MPF_SIZE          16
#define MPC_HEADER_SIZE   44
#define MPE_CPU_SIZE      20
#define MPE_SMALL_SIZE    8        /* bus, IOAPIC, interrupt assignments */
#define MP_SPEC_REV       4        /* 1.4 */

enum { MPE_CPU = 0, MPE_BUS = 1, MPE_IOAPIC = 2, MPE_IOINT = 3, MPE_LINT = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

#define CPU_ENABLED       0x01
#define CPU_BSP           0x02
#define LAPIC_VERSION     0x14
#define IOAPIC_VERSION    0x11
#define BUS_PCI           0
#define BUS_ISA           1
#define ISA_IRQS          16
#define PCI_SLOTS         32
#define LAPIC_ALL         0xff
/* Polarity and trigger (bits 0-1, 2-3): PCI lines are active low, level triggered. */
#define PCI_IRQ_FLAGS     (0x3 | 0x3 << 2)

struct mpt_writer {
	uint8_t *p;
	size_t len, off;
	unsigned entries;
	bool ok;
};

static void put(struct mpt_writer *w, const void *src, size_t n)
{
	if (!w->ok || w->off + n > w->len) {
		w->ok = false;
		return;
	}
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

static void put8(struct mpt_writer *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put16(struct mpt_writer *w, uint16_t v)
{
	put8(w, (uint8_t)v);
	put8(w, (uint8_t)(v >> 8));
}

static void put32(struct mpt_writer *w, uint32_t v)
{
	put16(w, (uint16_t)v);
	put16(w, (uint16_t)(v >> 16));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static void small_entry(struct mpt_writer *w, uint8_t type, uint8_t a, uint16_t flags,
			uint8_t bus, uint8_t irq, uint8_t dest, uint8_t pin)
{
	put8(w, type);
	put8(w, a);
	put16(w, flags);
	put8(w, bus);
	put8(w, irq);
	put8(w, dest);
	put8(w, pin);
	w->entries++;
}

size_t mpt_build(uint8_t *buf, size_t len, uint32_t gpa, const struct mpt_config *c)
{
	struct mpt_writer w = { .p = buf, .len = len, .ok = true };
	uint8_t ioapic_id = (uint8_t)c->ncpus;   /* the next APIC ID after the CPUs */
	size_t table;

	if (!c->ncpus || c->ncpus > MPT_MAX_CPUS || c->ioapic_pins < ISA_IRQS ||
	    c->pci_pin_base + 8 > c->ioapic_pins)
		return 0;
	/* Floating pointer: the configuration table follows it. */
	put(&w, "_MP_", 4);
	put32(&w, gpa + MPF_SIZE);
	put8(&w, 1);                             /* length in 16-byte units */
	put8(&w, MP_SPEC_REV);
	put8(&w, 0);                             /* checksum, below */
	put(&w, "\0\0\0\0\0", 5);                /* feature bytes: a table is present */
	if (!w.ok)
		return 0;
	buf[10] = checksum(buf, MPF_SIZE);

	table = w.off;
	put(&w, "PCMP", 4);
	put16(&w, 0);                            /* base table length, below */
	put8(&w, MP_SPEC_REV);
	put8(&w, 0);                             /* checksum, below */
	put(&w, "BULKHEAD", 8);                  /* OEM ID */
	put(&w, "PARTITION   ", 12);             /* product ID */
	put32(&w, 0);                            /* no OEM table */
	put16(&w, 0);
	put16(&w, 0);                            /* entry count, below */
	put32(&w, c->lapic_addr);
	put16(&w, 0);                            /* no extended table */
	put8(&w, 0);
	put8(&w, 0);

	for (unsigned i = 0; i < c->ncpus; i++) {
		put8(&w, MPE_CPU);
		put8(&w, (uint8_t)i);
		put8(&w, LAPIC_VERSION);
		put8(&w, CPU_ENABLED | (i == 0 ? CPU_BSP : 0));
		put32(&w, 0);                    /* signature and features: CPUID says */
		put32(&w, 0);
		put32(&w, 0);
		put32(&w, 0);
		w.entries++;
	}
	put8(&w, MPE_BUS);
	put8(&w, BUS_PCI);
	put(&w, "PCI   ", 6);
	put8(&w, MPE_BUS);
	put8(&w, BUS_ISA);
	put(&w, "ISA   ", 6);
	w.entries += 2;
	put8(&w, MPE_IOAPIC);
	put8(&w, ioapic_id);
	put8(&w, IOAPIC_VERSION);
	put8(&w, 1);                             /* enabled */
	put32(&w, c->ioapic_addr);
	w.entries++;
	/* ISA IRQ n is IOAPIC pin n, KVM's default routing: the PIT's IRQ 0 arrives on
	 * pin 0 (not pin 2 as on PC chipsets; seen in the rig), and the PIC's output goes
	 * to the LAPICs' LINT0, not to an IOAPIC pin. Pin 2 (the cascade) carries nothing. */
	for (uint8_t irq = 0; irq < ISA_IRQS; irq++)
		if (irq != 2)
			small_entry(&w, MPE_IOINT, MP_INT, 0, BUS_ISA, irq, ioapic_id, irq);
	/* PCI: source IRQ is device << 2 | pin (INTA# = 0). */
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (c->pci_slots & (1u << s))
			small_entry(&w, MPE_IOINT, MP_INT, PCI_IRQ_FLAGS, BUS_PCI, (uint8_t)(s << 2),
				    ioapic_id, (uint8_t)(c->pci_pin_base + s % 8));
	small_entry(&w, MPE_LINT, MP_EXTINT, 0, BUS_ISA, 0, LAPIC_ALL, 0);
	small_entry(&w, MPE_LINT, MP_NMI, 0, BUS_ISA, 0, LAPIC_ALL, 1);
	if (!w.ok)
		return 0;
	buf[table + 4] = (uint8_t)(w.off - table);
	buf[table + 5] = (uint8_t)((w.off - table) >> 8);
	buf[table + 34] = (uint8_t)w.entries;
	buf[table + 35] = (uint8_t)(w.entries >> 8);
	buf[table + 7] = checksum(buf + table, w.off - table);
	return w.off;
}
