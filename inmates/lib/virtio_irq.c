/*
 * Interrupts for virtio devices: MSI-X (one table entry for configuration changes and
 * one per queue, or one shared entry when the table is small), INTx through the IOAPIC
 * with the ISR status byte, or none (polling). Owns the IDT vectors it hands out and
 * the handlers that count interrupts per queue and acknowledge them at the LAPIC.
 */
#include <inmate/ioapic.h>
#include <inmate/irq.h>
#include <inmate/lapic.h>
#include <inmate/pic.h>
#include <inmate/printf.h>
#include "virtio_internal.h"

#define PCI_CAP_ID_MSIX        0x11
#define MSIX_CTRL              2          /* message control, 16-bit */
#define MSIX_TABLE             4          /* table offset | BIR */
#define MSIX_CTRL_SIZE_MASK    0x07FF     /* table size - 1 */
#define MSIX_CTRL_FMASK        0x4000
#define MSIX_CTRL_ENABLE       0x8000
#define MSIX_BIR_MASK          0x7
#define MSIX_ENTRY_SIZE        16
#define MSIX_ENTRY_ADDR_LO     0
#define MSIX_ENTRY_ADDR_HI     4
#define MSIX_ENTRY_DATA        8
#define MSIX_ENTRY_CTRL        12
#define MSIX_ENTRY_MASKED      1
#define MSI_ADDR_BASE          0xFEE00000u   /* to the LAPIC; destination in bits 19:12 */
#define MSI_ADDR_DEST_SHIFT    12

#define VIRTIO_ISR_QUEUE       0x1
#define VIRTIO_ISR_CONFIG      0x2

/* IDT vectors handed to virtio devices: above the PIC (0x20-0x2F) and the runtime's
 * timer (0x30), below the LAPIC timer and spurious vectors. */
#define VIRTIO_VEC_BASE        0x40
#define VIRTIO_VEC_END         0xE0
#define VIRTIO_INTX_DEVS       8

struct virtio_vec {
	struct virtio_dev *dev;
	uint8_t bus, slot, func;        /* the owner, so a re-opened device gets its own back */
	uint16_t entry;                 /* MSI-X entry, or 0x100 + GSI for INTx */
	uint8_t used, config;
	uint32_t queues;                /* bit q: queue q signals here */
};

static struct virtio_vec virtio_vecs[VIRTIO_VEC_END - VIRTIO_VEC_BASE];
static struct virtio_dev *virtio_intx_devs[VIRTIO_INTX_DEVS];

#define VIRTIO_INTX_KEY(gsi)   (0x100u + (gsi))

const char *virtio_irq_mode_name(enum virtio_irq_mode m)
{
	switch (m) {
	case VIRTIO_IRQ_MSIX: return "MSI-X";
	case VIRTIO_IRQ_INTX: return "INTx";
	case VIRTIO_IRQ_POLL: return "polling";
	default: return "auto";
	}
}

static void virtio_signal(struct virtio_dev *d, uint32_t queues, int config)
{
	d->irq_count++;
	if (config)
		d->config_irqs++;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if ((queues & (1u << q)) && d->vqs[q])
			d->vqs[q]->irqs++;
}

static void virtio_msix_irq(struct irq_frame *f)
{
	struct virtio_vec *v = &virtio_vecs[f->vector - VIRTIO_VEC_BASE];

	if (v->dev)
		virtio_signal(v->dev, v->queues, v->config);
	lapic_eoi();
}

/* Level-triggered: reading ISR deasserts the line before the EOI re-arms it. Every
 * device sharing the line is asked. */
static void virtio_intx_irq(struct irq_frame *f)
{
	for (unsigned i = 0; i < VIRTIO_INTX_DEVS; i++) {
		struct virtio_dev *d = virtio_intx_devs[i];
		uint8_t isr;

		if (!d || d->intx_vector != f->vector)
			continue;
		isr = virtio_pci_read_isr(d);
		if (isr)
			virtio_signal(d, isr & VIRTIO_ISR_QUEUE ? ~0u : 0, isr & VIRTIO_ISR_CONFIG);
	}
	lapic_eoi();
}

/* The vector this device (or GSI) already owns for `entry`, or a fresh one; 0 if none
 * are left. */
static uint8_t virtio_vec_get(struct virtio_dev *d, uint16_t entry)
{
	struct virtio_vec *free = NULL;

	for (unsigned i = 0; i < VIRTIO_VEC_END - VIRTIO_VEC_BASE; i++) {
		struct virtio_vec *v = &virtio_vecs[i];
		int same_owner = v->bus == d->pci.bus && v->slot == d->pci.slot &&
				 v->func == d->pci.func;

		if (v->used && v->entry == entry && (entry >= VIRTIO_INTX_KEY(0) || same_owner)) {
			free = v;
			break;
		}
		if (!v->used && !free)
			free = v;
	}
	if (!free)
		return 0;
	*free = (struct virtio_vec){ .dev = d, .bus = d->pci.bus, .slot = d->pci.slot,
				     .func = d->pci.func, .entry = entry, .used = 1 };
	return VIRTIO_VEC_BASE + (free - virtio_vecs);
}

static void msix_write_entry(uintptr_t table, unsigned i, uint8_t vector)
{
	uintptr_t e = table + i * MSIX_ENTRY_SIZE;

	mmio_write32(e + MSIX_ENTRY_CTRL, MSIX_ENTRY_MASKED);
	mmio_write32(e + MSIX_ENTRY_ADDR_LO, MSI_ADDR_BASE | lapic_id() << MSI_ADDR_DEST_SHIFT);
	mmio_write32(e + MSIX_ENTRY_ADDR_HI, 0);
	mmio_write32(e + MSIX_ENTRY_DATA, vector);      /* fixed delivery, edge */
	mmio_write32(e + MSIX_ENTRY_CTRL, 0);
}

static void msix_disable(struct virtio_dev *d)
{
	uint8_t cap = pci_find_cap(&d->pci, PCI_CAP_ID_MSIX);

	if (cap)
		pci_write16(&d->pci, cap + MSIX_CTRL,
			    pci_read16(&d->pci, cap + MSIX_CTRL) & ~MSIX_CTRL_ENABLE);
}

static int virtio_msix_setup(struct virtio_dev *d, unsigned nr_queues)
{
	uint8_t cap = pci_find_cap(&d->pci, PCI_CAP_ID_MSIX);
	uint16_t ctrl, set;
	uint32_t tbl;
	unsigned entries;
	struct pci_bar bar;

	if (!cap)
		return -VIRTIO_ENODEV;
	ctrl = pci_read16(&d->pci, cap + MSIX_CTRL);
	tbl = pci_read32(&d->pci, cap + MSIX_TABLE);
	d->msix_size = (ctrl & MSIX_CTRL_SIZE_MASK) + 1;
	if (pci_bar_probe(&d->pci, tbl & MSIX_BIR_MASK, &bar) < 0 || bar.is_io || !bar.addr ||
	    (tbl & ~MSIX_BIR_MASK) + (uint64_t)d->msix_size * MSIX_ENTRY_SIZE > bar.size) {
		printf("virtio %02x:%02x.%x: MSI-X table (BAR%u+0x%x) is not usable\n",
		       d->pci.bus, d->pci.slot, d->pci.func, tbl & MSIX_BIR_MASK,
		       tbl & ~MSIX_BIR_MASK);
		return -VIRTIO_ENODEV;
	}
	d->msix_cap = cap;
	d->msix_table = bar.addr + (tbl & ~MSIX_BIR_MASK);
	/* One entry per queue plus the configuration entry, or everything on entry 0. */
	entries = d->msix_size >= nr_queues + 1 ? nr_queues + 1 : 1;

	lapic_enable();
	pci_write16(&d->pci, cap + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	for (unsigned i = 0; i < entries; i++) {
		uint8_t vec = virtio_vec_get(d, i);
		struct virtio_vec *v;

		if (!vec) {
			msix_disable(d);
			return -VIRTIO_ENOSPC;
		}
		v = &virtio_vecs[vec - VIRTIO_VEC_BASE];
		v->config = i == 0;
		v->queues = entries == 1 ? ~0u : i == 0 ? 0 : 1u << (i - 1);
		irq_register(vec, virtio_msix_irq);
		msix_write_entry(d->msix_table, i, vec);
	}
	pci_write16(&d->pci, cap + MSIX_CTRL, (ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_FMASK);
	pci_set_command(&d->pci, pci_read16(&d->pci, PCI_CFG_COMMAND) | PCI_COMMAND_INTX_OFF);

	virtio_pci_set_config_vector(d, 0, &set);
	if (set != 0) {
		printf("virtio %02x:%02x.%x: device refused MSI-X entry 0 for config changes\n",
		       d->pci.bus, d->pci.slot, d->pci.func);
		msix_disable(d);
		return -VIRTIO_EIO;
	}
	d->msix_config_entry = 0;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->msix_queue_entry[q] = q < nr_queues ? (entries == 1 ? 0 : q + 1)
						       : VIRTIO_NO_VECTOR;
	return 0;
}

static int virtio_intx_setup(struct virtio_dev *d)
{
	uint8_t pin = pci_read8(&d->pci, PCI_CFG_INT_PIN);
	uint8_t line = pci_read8(&d->pci, PCI_CFG_INT_LINE);
	unsigned slot = VIRTIO_INTX_DEVS;
	uint8_t vec;

	/* The monitor tells the GSI in the interrupt line register; 0 and 0xFF: unrouted. */
	if (!pin || line == 0 || line == 0xFF || line >= ioapic_nr_pins())
		return -VIRTIO_ENODEV;
	for (unsigned i = 0; i < VIRTIO_INTX_DEVS; i++) {
		struct virtio_dev *o = virtio_intx_devs[i];

		if (o == d || (o && o->pci.bus == d->pci.bus && o->pci.slot == d->pci.slot &&
			       o->pci.func == d->pci.func) || (!o && slot == VIRTIO_INTX_DEVS))
			slot = i;
	}
	vec = virtio_vec_get(d, VIRTIO_INTX_KEY(line));
	if (slot == VIRTIO_INTX_DEVS || !vec)
		return -VIRTIO_ENOSPC;
	msix_disable(d);
	d->intx_gsi = line;
	d->intx_vector = vec;
	virtio_intx_devs[slot] = d;
	lapic_enable();
	irq_register(vec, virtio_intx_irq);
	if (ioapic_route(line, vec, IOAPIC_TRIGGER_LEVEL, IOAPIC_POLARITY_HIGH, lapic_id()) < 0)
		return -VIRTIO_EINVAL;
	pci_set_command(&d->pci, pci_read16(&d->pci, PCI_CFG_COMMAND) & ~PCI_COMMAND_INTX_OFF);
	return 0;
}

int virtio_setup_irqs(struct virtio_dev *d, unsigned nr_queues)
{
	enum virtio_irq_mode want = d->opts.irq;
	int err = 0;

	d->irq = VIRTIO_IRQ_POLL;
	d->msix_config_entry = VIRTIO_NO_VECTOR;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->msix_queue_entry[q] = VIRTIO_NO_VECTOR;
	if (nr_queues > VIRTIO_MAX_QUEUES)
		return -VIRTIO_EINVAL;
	/* The 8259 remapped and masked: its lines (a GSI below 16 reaches it as well as
	 * the IOAPIC) must not arrive through LINT0 or on exception vectors. */
	pic_init();
	if (want == VIRTIO_IRQ_AUTO || want == VIRTIO_IRQ_MSIX) {
		err = virtio_msix_setup(d, nr_queues);
		if (!err) {
			d->irq = VIRTIO_IRQ_MSIX;
			goto done;
		}
		if (want == VIRTIO_IRQ_MSIX)
			return err;
	}
	if (want == VIRTIO_IRQ_AUTO || want == VIRTIO_IRQ_INTX) {
		err = virtio_intx_setup(d);
		if (!err) {
			d->irq = VIRTIO_IRQ_INTX;
			goto done;
		}
		if (want == VIRTIO_IRQ_INTX)
			return err;
	}
	msix_disable(d);
done:
	if (d->opts.verbose) {
		printf("virtio %02x:%02x.%x: interrupts: %s", d->pci.bus, d->pci.slot,
		       d->pci.func, virtio_irq_mode_name(d->irq));
		if (d->irq == VIRTIO_IRQ_MSIX)
			printf(" (table of %u, %s)", d->msix_size,
			       d->msix_queue_entry[0] == 0 ? "one shared entry" : "entry per queue");
		if (d->irq == VIRTIO_IRQ_INTX)
			printf(" (GSI %u, vector 0x%x)", d->intx_gsi, d->intx_vector);
		printf("\n");
	}
	return 0;
}

uint16_t virtio_irq_queue_entry(const struct virtio_dev *d, uint16_t index)
{
	if (d->irq != VIRTIO_IRQ_MSIX || index >= VIRTIO_MAX_QUEUES)
		return VIRTIO_NO_VECTOR;
	return d->msix_queue_entry[index];
}

int virtio_irq_can_sleep(const struct virtqueue *vq)
{
	if (vq->dev->irq == VIRTIO_IRQ_MSIX)
		return vq->msix_entry != VIRTIO_NO_VECTOR;
	return vq->dev->irq == VIRTIO_IRQ_INTX;
}
