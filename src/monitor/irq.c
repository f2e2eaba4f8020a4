/*
 * Interrupt plumbing shared by all virtio devices of the partition: the KVM GSI routing
 * table (KVM's default PIC/IOAPIC routes, which KVM_SET_GSI_ROUTING replaces wholesale,
 * plus one MSI route per programmed MSI-X vector), MSI injection, and INTx pins that
 * several devices may share (the line is the OR of its sources).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "monitor/virtio.h"

#define IRQ_IOAPIC_PINS   24
#define IRQ_PIC_GSIS      16
#define IRQ_ROUTES_MAX    (IRQ_IOAPIC_PINS + IRQ_PIC_GSIS + VDEV_MAX * VDEV_MAX_VECTORS)
#define MSI_ADDR_BASE     0xfee00000u
#define MSI_ADDR_MASK     0xfff00000u

bool irq_msi_valid(const struct msix_entry *e)
{
	return !e->addr_hi && (e->addr_lo & MSI_ADDR_MASK) == MSI_ADDR_BASE;
}

/* At start-up: the routing table's memory and the INTx lock. */
int irq_init(struct mon *m)
{
	m->irq.routing = calloc(1, sizeof(struct kvm_irq_routing) +
				IRQ_ROUTES_MAX * sizeof(struct kvm_irq_routing_entry));
	if (!m->irq.routing)
		return -ENOMEM;
	return -pthread_mutex_init(&m->irq.lock, NULL);
}

/* Rebuilds the whole table: KVM's defaults (GSI 0-15 to the PIC and the IOAPIC,
 * 16-23 to the IOAPIC) and every valid MSI-X entry of every device. Runs on the vCPU
 * thread, which is the only writer of MSI-X tables. */
int irq_routes_commit(struct mon *m)
{
	struct kvm_irq_routing *r = m->irq.routing;
	unsigned n = 0;

	for (unsigned gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi } };
		if (gsi < IRQ_PIC_GSIS)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 } };
	}
	for (unsigned i = 0; i < m->nvdev; i++) {
		const struct msix *x = &m->vdev[i]->msix;

		for (unsigned v = 0; v < x->nvec; v++) {
			if (!irq_msi_valid(&x->e[v]))
				continue;
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = x->gsi_base + v, .type = KVM_IRQ_ROUTING_MSI,
				.u.msi = { .address_lo = x->e[v].addr_lo,
					   .address_hi = x->e[v].addr_hi, .data = x->e[v].data } };
		}
	}
	r->nr = n;
	r->flags = 0;
	return ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
}

/* Injects one MSI (a vector the monitor delivers itself). -EINVAL when the guest has
 * not programmed a message address the LAPIC decodes. */
int irq_signal_msi(struct mon *m, const struct msix_entry *e)
{
	struct kvm_msi msi = { .address_lo = e->addr_lo, .address_hi = e->addr_hi,
			       .data = e->data };

	if (!irq_msi_valid(e))
		return -EINVAL;
	return ioctl(m->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

int irq_intx_set(struct mon *m, unsigned gsi, unsigned source, bool level)
{
	uint32_t before, after;
	int ret = 0;

	if (gsi >= IRQ_IOAPIC_PINS || source >= 32)
		return -EINVAL;
	pthread_mutex_lock(&m->irq.lock);
	before = m->irq.intx_sources[gsi];
	after = level ? before | (1u << source) : before & ~(1u << source);
	m->irq.intx_sources[gsi] = after;
	if (!before != !after)
		ret = mon_irq_line(m, gsi, after != 0);
	pthread_mutex_unlock(&m->irq.lock);
	return ret;
}
