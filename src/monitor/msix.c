/*
 * MSI-X for a virtio-pci function (table and PBA in BAR 0) and the route each queue's
 * interrupt takes: straight through a KVM irqfd when MSI-X is enabled and the vector
 * is unmasked and programmed; otherwise through the monitor, which sets the vector's
 * pending bit (masked), raises INTx with the ISR (MSI-X disabled), or drops it (no
 * vector). All functions here run with the device lock held.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "monitor/virtio.h"

#define MSIX_ENTRY_SIZE      16
#define MSIX_ENTRY_ADDR_LO   0
#define MSIX_ENTRY_ADDR_HI   4
#define MSIX_ENTRY_DATA      8
#define MSIX_ENTRY_CTRL      12
#define MSIX_CTRL_MASKED     0x1u

static bool msix_vector_open(const struct msix *x, unsigned vec)
{
	return x->enabled && !x->fmask && vec < x->nvec && !(x->e[vec].ctrl & MSIX_CTRL_MASKED) &&
	       irq_msi_valid(&x->e[vec]);
}

static int msix_irqfd(struct vdev *d, struct vdev_queue *q, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = q->irq_fd, .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(d->m->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

/* Puts one queue's interrupt on the route its vector allows. In shared mode the
 * server's call eventfd is irq_fd itself: when it cannot be an irqfd, the I/O thread
 * watches it and vdev_irq_queue() takes the indirect route. */
static void vdev_irq_route(struct vdev *d, struct vdev_queue *q)
{
	struct msix *x = &d->msix;
	bool direct = msix_vector_open(x, q->msix_vector);
	unsigned gsi = direct ? x->gsi_base + q->msix_vector : 0;

	if (q->irqfd_on && (!direct || q->irqfd_gsi != gsi)) {
		msix_irqfd(d, q, q->irqfd_gsi, false);
		q->irqfd_on = false;
	}
	if (d->isolation == VDEV_SHARED && !direct && !q->call_polled) {
		if (!iot_add(&d->m->iot, &q->call_src, EPOLLIN))
			q->call_polled = true;
	}
	if (direct && !q->irqfd_on) {
		if (d->isolation == VDEV_SHARED && q->call_polled) {
			iot_del(&d->m->iot, &q->call_src);
			q->call_polled = false;
		}
		/* KVM injects at once when the eventfd already holds a count. */
		if (!msix_irqfd(d, q, gsi, true)) {
			q->irqfd_on = true;
			q->irqfd_gsi = gsi;
		} else if (d->isolation == VDEV_SHARED &&
			   !iot_add(&d->m->iot, &q->call_src, EPOLLIN)) {
			q->call_polled = true;       /* fall back to the indirect route */
		}
	}
}

/* Delivers pending vectors that are open now (unmasked, or MSI-X just enabled). */
static void msix_flush_pending(struct vdev *d)
{
	struct msix *x = &d->msix;

	for (unsigned v = 0; v < x->nvec; v++)
		if ((x->pending & (1ULL << v)) && msix_vector_open(x, v)) {
			x->pending &= ~(1ULL << v);
			irq_signal_msi(d->m, &x->e[v]);
		}
}

void vdev_irq_update(struct vdev *d)
{
	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		vdev_irq_route(d, &d->q[i]);
	msix_flush_pending(d);
	vdev_intx_update(d);
}

void vdev_intx_update(struct vdev *d)
{
	uint16_t cmd = pci_cfg_get(&d->pci, PCI_CFG_COMMAND, 2);
	bool level = !d->msix.enabled && d->isr && !(cmd & PCI_COMMAND_INTX_OFF);

	if (level != d->intx_level && !irq_intx_set(d->m, d->intx_gsi, d->index, level))
		d->intx_level = level;
}

/* One notification on vector vec (or, with MSI-X off, an ISR bit and INTx). */
static void vdev_irq_vector(struct vdev *d, uint16_t vec, uint8_t isr_bit, int irq_fd)
{
	struct msix *x = &d->msix;

	if (!x->enabled) {
		d->isr |= isr_bit;
		vdev_intx_update(d);
		return;
	}
	if (vec >= x->nvec)
		return;                      /* VIRTIO_MSI_NO_VECTOR: the driver polls */
	if (x->fmask || (x->e[vec].ctrl & MSIX_CTRL_MASKED)) {
		x->pending |= 1ULL << vec;
		return;
	}
	if (irq_fd >= 0) {
		uint64_t one = 1;

		if (write(irq_fd, &one, sizeof(one)) == sizeof(one))
			return;
	}
	irq_signal_msi(d->m, &x->e[vec]);
}

void vdev_irq_queue(struct vdev *d, unsigned qi)
{
	struct vdev_queue *q = &d->q[qi];

	vdev_irq_vector(d, q->msix_vector, VIRTIO_ISR_QUEUE, q->irqfd_on ? q->irq_fd : -1);
}

void vdev_irq_config(struct vdev *d)
{
	vdev_irq_vector(d, d->config_vector, VIRTIO_ISR_CONFIG, -1);
}

static void msix_write32(struct vdev *d, unsigned off, uint32_t val, bool *routes, bool *mask)
{
	struct msix_entry *e = &d->msix.e[off / MSIX_ENTRY_SIZE];
	uint32_t *field;

	switch (off % MSIX_ENTRY_SIZE) {
	case MSIX_ENTRY_ADDR_LO: field = &e->addr_lo; break;
	case MSIX_ENTRY_ADDR_HI: field = &e->addr_hi; break;
	case MSIX_ENTRY_DATA:    field = &e->data; break;
	default:
		if ((e->ctrl ^ val) & MSIX_CTRL_MASKED)
			*mask = true;
		e->ctrl = val & MSIX_CTRL_MASKED;
		return;
	}
	if (*field != val)
		*routes = true;
	*field = val;
}

static uint32_t msix_read32(const struct vdev *d, unsigned off)
{
	const struct msix_entry *e = &d->msix.e[off / MSIX_ENTRY_SIZE];

	switch (off % MSIX_ENTRY_SIZE) {
	case MSIX_ENTRY_ADDR_LO: return e->addr_lo;
	case MSIX_ENTRY_ADDR_HI: return e->addr_hi;
	case MSIX_ENTRY_DATA:    return e->data;
	default:                 return e->ctrl;
	}
}

/* Dword or qword accesses, naturally aligned, inside the table. */
int msix_table_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	bool routes = false, mask = false;

	if ((size != 4 && size != 8) || off % size || off + size > d->msix.nvec * MSIX_ENTRY_SIZE)
		return -EINVAL;
	if (!write) {
		*val = msix_read32(d, off);
		if (size == 8)
			*val |= (uint64_t)msix_read32(d, off + 4) << 32;
		return 0;
	}
	msix_write32(d, off, (uint32_t)*val, &routes, &mask);
	if (size == 8)
		msix_write32(d, off + 4, (uint32_t)(*val >> 32), &routes, &mask);
	if (routes)
		irq_routes_commit(d->m);
	if (routes || mask)
		vdev_irq_update(d);
	return 0;
}

/* The pending-bit array: read-only, dword or qword reads. */
int msix_pba_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	if ((size != 4 && size != 8) || off % size || off + size > 8)
		return -EINVAL;
	if (!write)
		*val = size == 8 ? d->msix.pending : (uint32_t)(d->msix.pending >> (8 * off));
	return 0;
}
