/*
 * The virtio 1.x PCI transport, driver side: find a modern virtio function, map the
 * common, notify, ISR and device structures from its vendor capabilities, reset it,
 * negotiate features, program queues and read the device configuration.
 */
#include <inmate/printf.h>
#include <inmate/string.h>
#include <inmate/tsc.h>
#include "virtio_internal.h"

/* The virtio structure capability (struct virtio_pci_cap) and its types. */
#define PCI_CAP_ID_VNDR          0x09
#define VIRTIO_CAP_CFG_TYPE      3
#define VIRTIO_CAP_BAR           4
#define VIRTIO_CAP_OFFSET        8
#define VIRTIO_CAP_LENGTH        12
#define VIRTIO_CAP_NOTIFY_MULT   16
#define VIRTIO_CAP_MIN_LEN       16
#define VIRTIO_CAP_NOTIFY_LEN    20
#define VIRTIO_CAP_COMMON        1
#define VIRTIO_CAP_NOTIFY        2
#define VIRTIO_CAP_ISR           3
#define VIRTIO_CAP_DEVICE        4
#define VIRTIO_CAP_MAX_MAP       4096u    /* map no more of a structure than this */
#define PCI_CAP_LIST_MAX         48
#define PCI_CAP_NEXT             1
#define PCI_CAP_LEN              2

/* struct virtio_pci_common_cfg */
#define VCOMMON_DFSELECT      0x00
#define VCOMMON_DF            0x04
#define VCOMMON_GFSELECT      0x08
#define VCOMMON_GF            0x0C
#define VCOMMON_MSIX_CONFIG   0x10
#define VCOMMON_NUM_QUEUES    0x12
#define VCOMMON_STATUS        0x14
#define VCOMMON_CFG_GEN       0x15
#define VCOMMON_Q_SELECT      0x16
#define VCOMMON_Q_SIZE        0x18
#define VCOMMON_Q_MSIX        0x1A
#define VCOMMON_Q_ENABLE      0x1C
#define VCOMMON_Q_NOFF        0x1E
#define VCOMMON_Q_DESCLO      0x20
#define VCOMMON_Q_DESCHI      0x24
#define VCOMMON_Q_AVAILLO     0x28
#define VCOMMON_Q_AVAILHI     0x2C
#define VCOMMON_Q_USEDLO      0x30
#define VCOMMON_Q_USEDHI      0x34
#define VCOMMON_MIN_LEN       0x38      /* up to queue_device inclusive */

#define VIRTIO_RESET_TIMEOUT_US 1000000u
#define VIRTIO_CFG_GEN_TRIES    16

const char *virtio_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "ok";
	case VIRTIO_EIO: return "I/O error (device failed or needs reset)";
	case VIRTIO_ENOMEM: return "out of memory";
	case VIRTIO_ENODEV: return "no such device";
	case VIRTIO_EINVAL: return "invalid argument";
	case VIRTIO_ENOSPC: return "queue full";
	case VIRTIO_ETIMEDOUT: return "timed out";
	default: return "error";
	}
}

int virtio_parse_opt(struct virtio_opts *o, const char *arg)
{
	if (!strncmp(arg, "dev=", 4))
		o->index = strtoul(arg + 4, 0, 0);
	else if (!strcmp(arg, "no-event-idx"))
		o->features_off |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	else if (!strcmp(arg, "no-indirect"))
		o->features_off |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	else if (!strncmp(arg, "qsize=", 6))
		o->queue_size = strtoul(arg + 6, 0, 0);
	else if (!strcmp(arg, "verbose"))
		o->verbose = 1;
	else if (!strcmp(arg, "irq=auto"))
		o->irq = VIRTIO_IRQ_AUTO;
	else if (!strcmp(arg, "irq=msix"))
		o->irq = VIRTIO_IRQ_MSIX;
	else if (!strcmp(arg, "irq=intx"))
		o->irq = VIRTIO_IRQ_INTX;
	else if (!strcmp(arg, "irq=poll"))
		o->irq = VIRTIO_IRQ_POLL;
	else
		return 0;
	return 1;
}

/* Resolves one capability to an address. Returns 0, or -1 when its BAR is reserved,
 * not implemented, not assigned, or too small for offset + length. */
static int virtio_map_cap(const struct virtio_dev *d, uint8_t cap, struct virtio_region *r)
{
	uint8_t bar_no = pci_read8(&d->pci, cap + VIRTIO_CAP_BAR);
	uint32_t off = pci_read32(&d->pci, cap + VIRTIO_CAP_OFFSET);
	uint32_t len = pci_read32(&d->pci, cap + VIRTIO_CAP_LENGTH);
	struct pci_bar bar;

	if (bar_no >= PCI_NR_BARS || pci_bar_probe(&d->pci, bar_no, &bar) < 0)
		return -1;
	if (!bar.size || !bar.addr || off >= bar.size)
		return -1;
	if (len > bar.size - off)
		len = bar.size - off;
	if (len > VIRTIO_CAP_MAX_MAP)
		len = VIRTIO_CAP_MAX_MAP;
	*r = (struct virtio_region){ .base = bar.addr + off, .len = len, .is_io = bar.is_io,
				     .bar = bar_no, .offset = off };
	return 0;
}

/* Walks the capability list; the first usable structure of each type wins. */
static int virtio_find_caps(struct virtio_dev *d)
{
	uint8_t ptr;

	if (!(pci_read16(&d->pci, PCI_CFG_STATUS) & PCI_STATUS_CAP_LIST))
		return -VIRTIO_ENODEV;
	ptr = pci_read8(&d->pci, PCI_CFG_CAP_PTR) & 0xFC;
	for (int i = 0; ptr && i < PCI_CAP_LIST_MAX; i++) {
		uint8_t id = pci_read8(&d->pci, ptr);
		uint8_t len = pci_read8(&d->pci, ptr + PCI_CAP_LEN);
		uint8_t type = pci_read8(&d->pci, ptr + VIRTIO_CAP_CFG_TYPE);
		struct virtio_region *r = NULL;

		if (id == PCI_CAP_ID_VNDR && len >= VIRTIO_CAP_MIN_LEN) {
			if (type == VIRTIO_CAP_COMMON)
				r = &d->common;
			else if (type == VIRTIO_CAP_NOTIFY && len >= VIRTIO_CAP_NOTIFY_LEN)
				r = &d->notify;
			else if (type == VIRTIO_CAP_ISR)
				r = &d->isr;
			else if (type == VIRTIO_CAP_DEVICE)
				r = &d->device;
		}
		if (r && !r->base && virtio_map_cap(d, ptr, r) == 0 && r == &d->notify)
			d->notify_mult = pci_read32(&d->pci, ptr + VIRTIO_CAP_NOTIFY_MULT);
		ptr = pci_read8(&d->pci, ptr + PCI_CAP_NEXT) & 0xFC;
	}
	if (!d->common.base || d->common.len < VCOMMON_MIN_LEN || !d->notify.base ||
	    d->notify.len < 2 || !d->isr.base)
		return -VIRTIO_ENODEV;
	return 0;
}

static void virtio_print_region(const struct virtio_dev *d, const char *name,
				const struct virtio_region *r)
{
	if (!r->base)
		return;
	printf("virtio %02x:%02x.%x:   %-6s BAR%u+0x%x (%s 0x%lx, %u bytes)\n", d->pci.bus,
	       d->pci.slot, d->pci.func, name, r->bar, r->offset, r->is_io ? "port" : "mmio",
	       (unsigned long)r->base, r->len);
}

uint8_t virtio_status(const struct virtio_dev *d)
{
	return vreg_read8(&d->common, VCOMMON_STATUS);
}

static void virtio_add_status(struct virtio_dev *d, uint8_t bits)
{
	vreg_write8(&d->common, VCOMMON_STATUS, virtio_status(d) | bits);
}

void virtio_set_failed(struct virtio_dev *d)
{
	virtio_add_status(d, VIRTIO_STATUS_FAILED);
}

int virtio_reset(struct virtio_dev *d)
{
	uint64_t deadline = tsc_now() + tsc_from_us(VIRTIO_RESET_TIMEOUT_US);

	vreg_write8(&d->common, VCOMMON_STATUS, 0);
	while (virtio_status(d) != 0) {
		if (tsc_now() > deadline)
			return -VIRTIO_ETIMEDOUT;
		udelay(10);
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->vqs[q] = NULL;
	return 0;
}

int virtio_pci_open(struct virtio_dev *d, uint16_t type, const struct virtio_opts *opts)
{
	struct virtio_opts none = { 0 };
	uint16_t cmd;
	int err;

	memset(d, 0, sizeof(*d));
	d->opts = opts ? *opts : none;
	d->type = type;
	d->msix_config_entry = VIRTIO_NO_VECTOR;
	if (pci_find_device(VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_MODERN + type, d->opts.index,
			    &d->pci) < 0)
		return -VIRTIO_ENODEV;
	err = virtio_find_caps(d);
	if (err) {
		printf("virtio %02x:%02x.%x: no usable virtio capabilities (common/notify/isr)\n",
		       d->pci.bus, d->pci.slot, d->pci.func);
		return err;
	}
	cmd = pci_read16(&d->pci, PCI_CFG_COMMAND) | PCI_COMMAND_MASTER;
	if (d->common.is_io || d->notify.is_io || d->isr.is_io || d->device.is_io)
		cmd |= PCI_COMMAND_IO;
	if (!d->common.is_io || !d->notify.is_io || !d->isr.is_io ||
	    (d->device.base && !d->device.is_io))
		cmd |= PCI_COMMAND_MEMORY;
	pci_set_command(&d->pci, cmd);

	err = virtio_reset(d);
	if (err)
		return err;
	virtio_add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_add_status(d, VIRTIO_STATUS_DRIVER);
	d->num_queues = vreg_read16(&d->common, VCOMMON_NUM_QUEUES);
	if (d->opts.verbose) {
		printf("virtio %02x:%02x.%x: device %u (%04x:%04x), %u queue(s)\n", d->pci.bus,
		       d->pci.slot, d->pci.func, type, d->pci.vendor, d->pci.device,
		       d->num_queues);
		virtio_print_region(d, "common", &d->common);
		virtio_print_region(d, "notify", &d->notify);
		virtio_print_region(d, "isr", &d->isr);
		virtio_print_region(d, "device", &d->device);
		printf("virtio %02x:%02x.%x:   notify_off_multiplier %u\n", d->pci.bus,
		       d->pci.slot, d->pci.func, d->notify_mult);
	}
	return 0;
}

static uint64_t virtio_read_features(struct virtio_dev *d)
{
	uint64_t f;

	vreg_write32(&d->common, VCOMMON_DFSELECT, 0);
	f = vreg_read32(&d->common, VCOMMON_DF);
	vreg_write32(&d->common, VCOMMON_DFSELECT, 1);
	f |= (uint64_t)vreg_read32(&d->common, VCOMMON_DF) << 32;
	return f;
}

int virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
	uint64_t take = wanted | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);

	d->offered = virtio_read_features(d);
	if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		printf("virtio %02x:%02x.%x: device does not offer VIRTIO_F_VERSION_1\n",
		       d->pci.bus, d->pci.slot, d->pci.func);
		virtio_set_failed(d);
		return -VIRTIO_ENODEV;
	}
	d->features = (d->offered & take & ~d->opts.features_off) |
		      VIRTIO_BIT(VIRTIO_F_VERSION_1);
	vreg_write32(&d->common, VCOMMON_GFSELECT, 0);
	vreg_write32(&d->common, VCOMMON_GF, (uint32_t)d->features);
	vreg_write32(&d->common, VCOMMON_GFSELECT, 1);
	vreg_write32(&d->common, VCOMMON_GF, (uint32_t)(d->features >> 32));
	virtio_add_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (d->opts.verbose)
		printf("virtio %02x:%02x.%x: features offered 0x%lx, taken 0x%lx\n", d->pci.bus,
		       d->pci.slot, d->pci.func, d->offered, d->features);
	if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		printf("virtio %02x:%02x.%x: device refused FEATURES_OK for 0x%lx\n",
		       d->pci.bus, d->pci.slot, d->pci.func, d->features);
		virtio_set_failed(d);
		return -VIRTIO_EIO;
	}
	return 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	virtio_add_status(d, VIRTIO_STATUS_DRIVER_OK);
}

/* --- device configuration ------------------------------------------------------------ */

/* Reads `size` bytes at `off` until config_generation is the same before and after. */
static uint64_t virtio_cfg_read(const struct virtio_dev *d, uint32_t off, unsigned size)
{
	uint64_t v = 0;
	uint8_t gen;
	int tries = 0;

	if (!d->device.base || off + size > d->device.len || off + size < off)
		return 0;
	do {
		gen = vreg_read8(&d->common, VCOMMON_CFG_GEN);
		switch (size) {
		case 1: v = vreg_read8(&d->device, off); break;
		case 2: v = vreg_read16(&d->device, off); break;
		case 4: v = vreg_read32(&d->device, off); break;
		default:
			v = vreg_read32(&d->device, off) |
			    (uint64_t)vreg_read32(&d->device, off + 4) << 32;
		}
	} while (gen != vreg_read8(&d->common, VCOMMON_CFG_GEN) &&
		 ++tries < VIRTIO_CFG_GEN_TRIES);
	return v;
}

uint8_t virtio_cfg_read8(const struct virtio_dev *d, uint32_t off)
{
	return virtio_cfg_read(d, off, 1);
}

uint16_t virtio_cfg_read16(const struct virtio_dev *d, uint32_t off)
{
	return virtio_cfg_read(d, off, 2);
}

uint32_t virtio_cfg_read32(const struct virtio_dev *d, uint32_t off)
{
	return virtio_cfg_read(d, off, 4);
}

uint64_t virtio_cfg_read64(const struct virtio_dev *d, uint32_t off)
{
	return virtio_cfg_read(d, off, 8);
}

void virtio_cfg_write8(const struct virtio_dev *d, uint32_t off, uint8_t v)
{
	if (d->device.base && off < d->device.len)
		vreg_write8(&d->device, off, v);
}

/* --- queues -------------------------------------------------------------------------- */

uint16_t virtio_pci_queue_max(struct virtio_dev *d, uint16_t index)
{
	if (index >= d->num_queues)
		return 0;
	vreg_write16(&d->common, VCOMMON_Q_SELECT, index);
	return vreg_read16(&d->common, VCOMMON_Q_SIZE);
}

static void vreg_write64(const struct virtio_region *r, uint32_t lo, uint32_t hi, uint64_t v)
{
	vreg_write32(r, lo, (uint32_t)v);
	vreg_write32(r, hi, (uint32_t)(v >> 32));
}

int virtio_pci_queue_program(struct virtio_dev *d, struct virtio_queue_regs *q)
{
	const struct virtio_region *c = &d->common;
	uint64_t off;

	vreg_write16(c, VCOMMON_Q_SELECT, q->index);
	vreg_write16(c, VCOMMON_Q_SIZE, q->size);
	vreg_write64(c, VCOMMON_Q_DESCLO, VCOMMON_Q_DESCHI, q->desc);
	vreg_write64(c, VCOMMON_Q_AVAILLO, VCOMMON_Q_AVAILHI, q->driver);
	vreg_write64(c, VCOMMON_Q_USEDLO, VCOMMON_Q_USEDHI, q->device);
	q->msix_entry_set = VIRTIO_NO_VECTOR;
	if (q->msix_entry != VIRTIO_NO_VECTOR) {
		vreg_write16(c, VCOMMON_Q_MSIX, q->msix_entry);
		q->msix_entry_set = vreg_read16(c, VCOMMON_Q_MSIX);
	}
	off = (uint64_t)vreg_read16(c, VCOMMON_Q_NOFF) * d->notify_mult;
	if (off + 2 > d->notify.len) {
		printf("virtio %02x:%02x.%x: queue %u doorbell at +0x%lx is outside the notify "
		       "structure (%u bytes)\n", d->pci.bus, d->pci.slot, d->pci.func, q->index,
		       off, d->notify.len);
		return -VIRTIO_EINVAL;
	}
	q->notify_addr = d->notify.base + off;
	q->notify_is_io = d->notify.is_io;
	vreg_write16(c, VCOMMON_Q_ENABLE, 1);
	return 0;
}

/* Used by virtio_irq.c, which owns the MSI-X side. */
void virtio_pci_set_config_vector(struct virtio_dev *d, uint16_t entry, uint16_t *set)
{
	vreg_write16(&d->common, VCOMMON_MSIX_CONFIG, entry);
	*set = vreg_read16(&d->common, VCOMMON_MSIX_CONFIG);
}

uint8_t virtio_pci_read_isr(const struct virtio_dev *d)
{
	return vreg_read8(&d->isr, 0);
}
