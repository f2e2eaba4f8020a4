/*
 * MP table (see mptable.h): the floating pointer, then the configuration table with
 * processor, bus, IOAPIC and interrupt assignment entries, each structure's checksum
 * making its bytes sum to zero.
 */
#include <stdbool.h>
#include <string.h>

#include "monitor/x86/mptable.h"
#include "monitor/x86/table_writer.h"

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

/* The table writer and the count of entries written, for the header. */
struct mpt_writer {
	struct tbl_writer t;
	unsigned entries;
};

static void small_entry(struct mpt_writer *w, uint8_t type, uint8_t a, uint16_t flags,
			uint8_t bus, uint8_t irq, uint8_t dest, uint8_t pin)
{
	tbl_put8(&w->t, type);
	tbl_put8(&w->t, a);
	tbl_put16(&w->t, flags);
	tbl_put8(&w->t, bus);
	tbl_put8(&w->t, irq);
	tbl_put8(&w->t, dest);
	tbl_put8(&w->t, pin);
	w->entries++;
}

size_t mpt_build(uint8_t *buf, size_t len, uint32_t gpa, const struct mpt_config *c)
{
	struct mpt_writer w = { .t = { .p = buf, .len = len, .ok = true } };
	uint8_t ioapic_id = (uint8_t)c->ncpus;   /* the next APIC ID after the CPUs */
	size_t table;

	if (!c->ncpus || c->ncpus > MPT_MAX_CPUS || c->ioapic_pins < ISA_IRQS ||
	    c->pci_pin_base + 8 > c->ioapic_pins)
		return 0;
	/* Floating pointer: the configuration table follows it. */
	tbl_put(&w.t, "_MP_", 4);
	tbl_put32(&w.t, gpa + MPF_SIZE);
	tbl_put8(&w.t, 1);                             /* length in 16-byte units */
	tbl_put8(&w.t, MP_SPEC_REV);
	tbl_put8(&w.t, 0);                             /* checksum, below */
	tbl_put(&w.t, "\0\0\0\0\0", 5);                /* feature bytes: a table is present */
	if (!w.t.ok)
		return 0;
	buf[10] = tbl_checksum(buf, MPF_SIZE);

	table = w.t.off;
	tbl_put(&w.t, "PCMP", 4);
	tbl_put16(&w.t, 0);                            /* base table length, below */
	tbl_put8(&w.t, MP_SPEC_REV);
	tbl_put8(&w.t, 0);                             /* checksum, below */
	tbl_put(&w.t, "BULKHEAD", 8);                  /* OEM ID */
	tbl_put(&w.t, "PARTITION   ", 12);             /* product ID */
	tbl_put32(&w.t, 0);                            /* no OEM table */
	tbl_put16(&w.t, 0);
	tbl_put16(&w.t, 0);                            /* entry count, below */
	tbl_put32(&w.t, c->lapic_addr);
	tbl_put16(&w.t, 0);                            /* no extended table */
	tbl_put8(&w.t, 0);
	tbl_put8(&w.t, 0);

	for (unsigned i = 0; i < c->ncpus; i++) {
		tbl_put8(&w.t, MPE_CPU);
		tbl_put8(&w.t, (uint8_t)i);
		tbl_put8(&w.t, LAPIC_VERSION);
		tbl_put8(&w.t, CPU_ENABLED | (i == 0 ? CPU_BSP : 0));
		tbl_put32(&w.t, 0);                    /* signature and features: CPUID says */
		tbl_put32(&w.t, 0);
		tbl_put32(&w.t, 0);
		tbl_put32(&w.t, 0);
		w.entries++;
	}
	tbl_put8(&w.t, MPE_BUS);
	tbl_put8(&w.t, BUS_PCI);
	tbl_put(&w.t, "PCI   ", 6);
	tbl_put8(&w.t, MPE_BUS);
	tbl_put8(&w.t, BUS_ISA);
	tbl_put(&w.t, "ISA   ", 6);
	w.entries += 2;
	tbl_put8(&w.t, MPE_IOAPIC);
	tbl_put8(&w.t, ioapic_id);
	tbl_put8(&w.t, IOAPIC_VERSION);
	tbl_put8(&w.t, 1);                             /* enabled */
	tbl_put32(&w.t, c->ioapic_addr);
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
	if (!w.t.ok)
		return 0;
	tbl_set16(buf + table + 4, (uint16_t)(w.t.off - table));
	tbl_set16(buf + table + 34, (uint16_t)w.entries);
	buf[table + 7] = tbl_checksum(buf + table, w.t.off - table);
	return w.t.off;
}
