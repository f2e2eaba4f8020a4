/*
 * The virtio-pci (modern) function of a device: its configuration header and capability
 * list, BAR 0 and where it is decoded, the queues' ioeventfds at the notify addresses,
 * and the VIRTIO_PCI_CAP_PCI_CFG access window. BAR 0 accesses are dispatched to the
 * common configuration, ISR, device configuration, notify, MSI-X table and PBA.
 */
#include <errno.h>
#include <stddef.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bulkhead/platform.h"
#include "monitor/virtio.h"

#define MSIX_CTRL          2          /* message control, in the MSI-X capability */
#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_FMASK    0x4000

/* Fields of struct virtio_pci_cap and virtio_pci_notify_cap (virtio 1.2, 4.1.4). */
#define VCAP_LEN           offsetof(struct virtio_pci_cap, cap_len)
#define VCAP_TYPE          offsetof(struct virtio_pci_cap, cfg_type)
#define VCAP_BAR           offsetof(struct virtio_pci_cap, bar)
#define VCAP_OFFSET        offsetof(struct virtio_pci_cap, offset)
#define VCAP_LENGTH        offsetof(struct virtio_pci_cap, length)
#define VCAP_NOTIFY_MULT   offsetof(struct virtio_pci_notify_cap, notify_off_multiplier)
#define VCAP_SIZE          sizeof(struct virtio_pci_cap)
#define VCAP_NOTIFY_SIZE   sizeof(struct virtio_pci_notify_cap)
#define VCAP_CFG_SIZE      sizeof(struct virtio_pci_cfg_cap)

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
	return off < start + len && start < off + size;
}

static void vpci_vendor_cap(struct pci_dev *p, unsigned at, unsigned next, unsigned len,
			    unsigned type, uint32_t offset, uint32_t length)
{
	pci_cfg_set(p, at, PCI_CAP_ID_VENDOR, 1);
	pci_cfg_set(p, at + 1, next, 1);
	pci_cfg_set(p, at + VCAP_LEN, len, 1);
	pci_cfg_set(p, at + VCAP_TYPE, type, 1);
	pci_cfg_set(p, at + VCAP_BAR, 0, 1);
	pci_cfg_set(p, at + VCAP_OFFSET, offset, 4);
	pci_cfg_set(p, at + VCAP_LENGTH, length, 4);
}

static int vpci_ioeventfds(struct vdev *d, uint64_t base, bool assign)
{
	int ret = 0;

	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct kvm_ioeventfd e = {
			.addr = base + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * i,
			.len = 2,
			.fd = d->q[i].kick_fd,
			.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};

		if (ioctl(d->m->vm_fd, KVM_IOEVENTFD, &e) < 0 && !ret)
			ret = -errno;
	}
	return ret;
}

static int vpci_mmio(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct vdev *d = opaque;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = vpci_bar_io(d, off, val, size, write);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* BAR 0 is decoded while memory decoding is on and it lies wholly inside the PCI MMIO
 * window without overlapping another BAR: a guest cannot move it over RAM, the
 * interrupt controllers or another device. Elsewhere an access is a violation. */
static void vpci_bar_update(struct vdev *d)
{
	uint64_t addr = ((uint64_t)pci_cfg_get(&d->pci, PCI_CFG_BAR0 + 4, 4) << 32 |
			 pci_cfg_get(&d->pci, PCI_CFG_BAR0, 4)) & ~0xfULL;
	bool mem = pci_cfg_get(&d->pci, PCI_CFG_COMMAND, 2) & PCI_COMMAND_MEMORY;
	bool want = mem && addr >= BH_PCI_MMIO_BASE && addr <= BH_PCI_MMIO_END - VPCI_BAR_SIZE;
	struct io_table *t = &d->m->io.mmio;

	if (d->bar_mapped && (!want || addr != d->bar_addr)) {
		vpci_ioeventfds(d, d->bar_addr, false);
		io_unregister(t, d->bar_addr, d);
		d->bar_mapped = false;
	}
	if (want && !d->bar_mapped &&
	    !io_register(t, addr, VPCI_BAR_SIZE, d->name, vpci_mmio, d)) {
		d->bar_addr = addr;
		d->bar_mapped = true;
		/* Without ioeventfds kicks still work, through an exit (vdev_notify_io). */
		vpci_ioeventfds(d, addr, true);
	}
}

int vpci_bar_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	if (off < VPCI_COMMON_OFF + VPCI_COMMON_LEN)
		return vdev_common_io(d, off - VPCI_COMMON_OFF, val, size, write);
	if (off >= VPCI_ISR_OFF && off < VPCI_ISR_OFF + VPCI_ISR_LEN)
		return vdev_isr_io(d, off - VPCI_ISR_OFF, val, size, write);
	if (off >= VPCI_DEVICE_OFF && off < VPCI_DEVICE_OFF + d->type->config_size)
		return vdev_config_io(d, off - VPCI_DEVICE_OFF, val, size, write);
	if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * vdev_nqueues(d))
		return vdev_notify_io(d, off - VPCI_NOTIFY_OFF, val, size, write);
	if (off >= VPCI_MSIX_TABLE_OFF && off < VPCI_MSIX_TABLE_OFF + 16 * d->msix.nvec)
		return msix_table_io(d, off - VPCI_MSIX_TABLE_OFF, val, size, write);
	if (off >= VPCI_MSIX_PBA_OFF && off < VPCI_MSIX_PBA_OFF + 8)
		return msix_pba_io(d, off - VPCI_MSIX_PBA_OFF, val, size, write);
	return -EINVAL;
}

/* VIRTIO_PCI_CAP_PCI_CFG: an access to pci_cfg_data is an access of cap.length bytes
 * (1, 2 or 4, aligned) at cap.offset in BAR 0. Anything else does nothing. */
static void vpci_cfg_window(struct vdev *d, bool write)
{
	struct pci_dev *p = &d->pci;
	unsigned bar = pci_cfg_get(p, VPCI_CAP_PCI_CFG + VCAP_BAR, 1);
	uint32_t off = pci_cfg_get(p, VPCI_CAP_PCI_CFG + VCAP_OFFSET, 4);
	uint32_t len = pci_cfg_get(p, VPCI_CAP_PCI_CFG + VCAP_LENGTH, 4);
	uint64_t val;

	if (bar != 0 || (len != 1 && len != 2 && len != 4) || off % len || off >= VPCI_BAR_SIZE)
		return;
	if (write) {
		val = pci_cfg_get(p, VPCI_PCI_CFG_DATA, len);
		vpci_bar_io(d, off, &val, len, true);
	} else if (!vpci_bar_io(d, off, &val, len, false)) {
		pci_cfg_set(p, VPCI_PCI_CFG_DATA, (uint32_t)val, len);
	}
}

static void vpci_cfg_written(struct pci_dev *p, unsigned off, unsigned size)
{
	struct vdev *d = p->opaque;

	pthread_mutex_lock(&d->lock);
	if (overlaps(off, size, PCI_CFG_COMMAND, 2) || overlaps(off, size, PCI_CFG_BAR0, 8))
		vpci_bar_update(d);
	if (overlaps(off, size, PCI_CFG_COMMAND, 2))
		vdev_intx_update(d);
	if (overlaps(off, size, VPCI_CAP_MSIX + MSIX_CTRL, 2)) {
		uint16_t ctrl = pci_cfg_get(p, VPCI_CAP_MSIX + MSIX_CTRL, 2);

		d->msix.enabled = ctrl & MSIX_CTRL_ENABLE;
		d->msix.fmask = ctrl & MSIX_CTRL_FMASK;
		vdev_irq_update(d);
	}
	if (overlaps(off, size, VPCI_PCI_CFG_DATA, 4))
		vpci_cfg_window(d, true);
	pthread_mutex_unlock(&d->lock);
}

static void vpci_cfg_read(struct pci_dev *p, unsigned off, unsigned size)
{
	struct vdev *d = p->opaque;

	pthread_mutex_lock(&d->lock);
	if (overlaps(off, size, PCI_CFG_STATUS, 2)) {
		uint16_t st = pci_cfg_get(p, PCI_CFG_STATUS, 2) & ~PCI_STATUS_INTX;

		if (!d->msix.enabled && d->isr)
			st |= PCI_STATUS_INTX;
		pci_cfg_set(p, PCI_CFG_STATUS, st, 2);
	}
	if (overlaps(off, size, VPCI_PCI_CFG_DATA, 4))
		vpci_cfg_window(d, false);
	pthread_mutex_unlock(&d->lock);
}

static void vpci_header(struct vdev *d)
{
	struct pci_dev *p = &d->pci;
	uint64_t bar = BH_PCI_MMIO_BASE + (uint64_t)d->slot * VPCI_BAR_STRIDE;

	pci_cfg_set(p, PCI_CFG_VENDOR_ID, VIRTIO_PCI_VENDOR, 2);
	pci_cfg_set(p, PCI_CFG_DEVICE_ID, VIRTIO_PCI_DEVICE_MODERN + d->type->virtio_id, 2);
	/* Decoding and bus mastering on, as firmware would leave them. */
	pci_cfg_set(p, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	pci_cfg_set(p, PCI_CFG_STATUS, PCI_STATUS_CAPS, 2);
	pci_cfg_set(p, PCI_CFG_REVISION, VIRTIO_PCI_REVISION, 1);
	pci_cfg_set(p, PCI_CFG_CLASS, d->type->class_code, 3);
	pci_cfg_set(p, PCI_CFG_BAR0, (uint32_t)bar | PCI_BAR_MEM_64, 4);
	pci_cfg_set(p, PCI_CFG_BAR0 + 4, bar >> 32, 4);
	pci_cfg_set(p, PCI_CFG_SUBSYS_VID, VIRTIO_PCI_VENDOR, 2);
	pci_cfg_set(p, PCI_CFG_SUBSYS_ID, VIRTIO_PCI_SUBSYS_BASE + d->type->virtio_id, 2);
	pci_cfg_set(p, PCI_CFG_CAP_PTR, VPCI_CAP_MSIX, 1);
	pci_cfg_set(p, PCI_CFG_INT_LINE, d->intx_gsi, 1);
	pci_cfg_set(p, PCI_CFG_INT_PIN, 1, 1);             /* INTA# */

	p->wmask[PCI_CFG_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	p->wmask[PCI_CFG_COMMAND + 1] = PCI_COMMAND_INTX_OFF >> 8;
	/* BAR sizing: the low size bits and the type bits do not stick. */
	for (unsigned i = 0; i < 4; i++)
		p->wmask[PCI_CFG_BAR0 + i] = (uint8_t)(~(VPCI_BAR_SIZE - 1) >> (8 * i));
	for (unsigned i = 4; i < 8; i++)
		p->wmask[PCI_CFG_BAR0 + i] = 0xff;
	p->wmask[PCI_CFG_INT_LINE] = 0xff;                   /* scratch for the driver */
}

static void vpci_caps(struct vdev *d)
{
	struct pci_dev *p = &d->pci;
	uint16_t nq = vdev_nqueues(d);
	bool devcfg = d->type->config_size > 0;

	pci_cfg_set(p, VPCI_CAP_MSIX, PCI_CAP_ID_MSIX, 1);
	pci_cfg_set(p, VPCI_CAP_MSIX + 1, VPCI_CAP_COMMON, 1);
	pci_cfg_set(p, VPCI_CAP_MSIX + MSIX_CTRL, d->msix.nvec - 1, 2);
	pci_cfg_set(p, VPCI_CAP_MSIX + 4, VPCI_MSIX_TABLE_OFF | 0, 4);   /* BIR 0 */
	pci_cfg_set(p, VPCI_CAP_MSIX + 8, VPCI_MSIX_PBA_OFF | 0, 4);
	p->wmask[VPCI_CAP_MSIX + MSIX_CTRL + 1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;

	vpci_vendor_cap(p, VPCI_CAP_COMMON, VPCI_CAP_NOTIFY, VCAP_SIZE,
			VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, VPCI_COMMON_LEN);
	vpci_vendor_cap(p, VPCI_CAP_NOTIFY, VPCI_CAP_ISR, VCAP_NOTIFY_SIZE,
			VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF, VPCI_NOTIFY_MULT * nq);
	pci_cfg_set(p, VPCI_CAP_NOTIFY + VCAP_NOTIFY_MULT, VPCI_NOTIFY_MULT, 4);
	vpci_vendor_cap(p, VPCI_CAP_ISR, devcfg ? VPCI_CAP_DEVICE : VPCI_CAP_PCI_CFG, VCAP_SIZE,
			VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, 1);
	if (devcfg)
		vpci_vendor_cap(p, VPCI_CAP_DEVICE, VPCI_CAP_PCI_CFG, VCAP_SIZE,
				VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, d->type->config_size);
	vpci_vendor_cap(p, VPCI_CAP_PCI_CFG, 0, VCAP_CFG_SIZE, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	/* The access window's bar, offset, length and data are the driver's to write. */
	p->wmask[VPCI_CAP_PCI_CFG + VCAP_BAR] = 0xff;
	memset(&p->wmask[VPCI_CAP_PCI_CFG + VCAP_OFFSET], 0xff, 12);
}

int vpci_init(struct vdev *d)
{
	struct pci_dev *p = &d->pci;
	int ret;

	memset(p, 0, sizeof(*p));
	p->name = d->name;
	p->opaque = d;
	p->cfg_written = vpci_cfg_written;
	p->cfg_read = vpci_cfg_read;
	d->intx_gsi = VPCI_INTX_GSI_BASE + d->slot % 8;
	vpci_header(d);
	vpci_caps(d);
	ret = pci_register(&d->m->pci, d->slot, p);
	if (ret)
		return ret;
	vpci_bar_update(d);
	return d->bar_mapped ? 0 : -EEXIST;
}
