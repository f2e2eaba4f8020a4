/*
 * The guest-facing virtio registers of BAR 0: the common configuration (features,
 * status, queue set-up), the ISR, the device configuration (a cached copy of the
 * server's) and the notify addresses. Status changes drive the device: FEATURES_OK
 * checks the driver's features, DRIVER_OK starts the server's rings (or, while the
 * server is being restarted, has the reconnect start them), 0 resets.
 * Called with the device lock held.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/platform.h"
#include "monitor/virtio.h"

/* Fields of struct virtio_pci_common_cfg (virtio 1.2, 4.1.4.3). */
#define VCC_DFSELECT      offsetof(struct virtio_pci_common_cfg, device_feature_select)
#define VCC_DF            offsetof(struct virtio_pci_common_cfg, device_feature)
#define VCC_GFSELECT      offsetof(struct virtio_pci_common_cfg, driver_feature_select)
#define VCC_GF            offsetof(struct virtio_pci_common_cfg, driver_feature)
#define VCC_MSIX_CONFIG   offsetof(struct virtio_pci_common_cfg, config_msix_vector)
#define VCC_NUM_QUEUES    offsetof(struct virtio_pci_common_cfg, num_queues)
#define VCC_STATUS        offsetof(struct virtio_pci_common_cfg, device_status)
#define VCC_CFG_GEN       offsetof(struct virtio_pci_common_cfg, config_generation)
#define VCC_Q_SELECT      offsetof(struct virtio_pci_common_cfg, queue_select)
#define VCC_Q_SIZE        offsetof(struct virtio_pci_common_cfg, queue_size)
#define VCC_Q_MSIX        offsetof(struct virtio_pci_common_cfg, queue_msix_vector)
#define VCC_Q_ENABLE      offsetof(struct virtio_pci_common_cfg, queue_enable)
#define VCC_Q_NOTIFY_OFF  offsetof(struct virtio_pci_common_cfg, queue_notify_off)
#define VCC_Q_DESC        offsetof(struct virtio_pci_common_cfg, queue_desc)
#define VCC_Q_DRIVER      offsetof(struct virtio_pci_common_cfg, queue_driver)
#define VCC_Q_DEVICE      offsetof(struct virtio_pci_common_cfg, queue_device)

static void put(uint8_t *img, unsigned off, uint64_t val, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		img[off + i] = val >> (8 * i);
}

static struct vdev_queue *vdev_selected(struct vdev *d)
{
	return d->queue_select < vdev_nqueues(d) ? &d->q[d->queue_select] : NULL;
}

/* Reads see a snapshot of the whole structure, so any aligned access works. */
static void vdev_common_image(struct vdev *d, uint8_t *img)
{
	struct vdev_queue *q = vdev_selected(d);
	uint64_t df = d->dfselect < 2 ? (uint32_t)(d->host_features >> (32 * d->dfselect)) : 0;
	uint64_t gf = d->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * d->gfselect)) : 0;

	memset(img, 0, VPCI_COMMON_LEN);
	put(img, VCC_DFSELECT, d->dfselect, 4);
	put(img, VCC_DF, df, 4);
	put(img, VCC_GFSELECT, d->gfselect, 4);
	put(img, VCC_GF, gf, 4);
	put(img, VCC_MSIX_CONFIG, d->config_vector, 2);
	put(img, VCC_NUM_QUEUES, vdev_nqueues(d), 2);
	put(img, VCC_STATUS, d->status, 1);
	put(img, VCC_CFG_GEN, d->config_generation, 1);
	put(img, VCC_Q_SELECT, d->queue_select, 2);
	if (!q)
		return;                       /* a queue that does not exist: size 0 */
	put(img, VCC_Q_SIZE, q->size, 2);
	put(img, VCC_Q_MSIX, q->msix_vector, 2);
	put(img, VCC_Q_ENABLE, q->enabled, 2);
	put(img, VCC_Q_NOTIFY_OFF, q->index, 2);
	put(img, VCC_Q_DESC, q->desc, 8);
	put(img, VCC_Q_DRIVER, q->driver, 8);
	put(img, VCC_Q_DEVICE, q->device, 8);
}

static uint16_t vdev_vector(const struct vdev *d, uint64_t val)
{
	return val < d->msix.nvec ? val : VIRTIO_MSI_NO_VECTOR;
}

/* FEATURES_OK: the driver took only what was offered, and VERSION_1. */
static bool vdev_features_ok(const struct vdev *d)
{
	return !(d->guest_features & ~d->host_features) &&
	       (d->guest_features & (1ULL << VIRTIO_F_VERSION_1));
}

static int vdev_start(struct vdev *d, const char **why);

static void vdev_status_write(struct vdev *d, uint8_t val)
{
	uint8_t old = d->status;
	const char *why = NULL;

	if (!val) {
		vdev_reset(d);
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !vdev_features_ok(d))
		val &= ~VIRTIO_STATUS_FEATURES_OK;   /* the driver reads it back and gives up */
	d->status = val | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    (val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
	    vdev_start(d, &why))
		vdev_needs_reset(d, "start", "\"reason\":\"%s\"", why ? why : "server failed");
}

/* 64-bit queue addresses may be written whole or as two dwords. */
static void set_half(uint64_t *field, unsigned off, unsigned base, unsigned size, uint64_t val)
{
	if (size == 8)
		*field = val;
	else if (off == base)
		*field = (*field & ~0xffffffffULL) | (uint32_t)val;
	else
		*field = (*field & 0xffffffffULL) | (uint64_t)(uint32_t)val << 32;
}

static void vdev_queue_write(struct vdev *d, unsigned off, unsigned size, uint64_t val)
{
	struct vdev_queue *q = vdev_selected(d);

	if (!q || q->enabled)
		return;                       /* configured before it is enabled, never after */
	switch (off & ~7u) {
	case VCC_Q_DESC:   set_half(&q->desc, off, VCC_Q_DESC, size, val); return;
	case VCC_Q_DRIVER: set_half(&q->driver, off, VCC_Q_DRIVER, size, val); return;
	case VCC_Q_DEVICE: set_half(&q->device, off, VCC_Q_DEVICE, size, val); return;
	}
	switch (off) {
	case VCC_Q_SIZE:
		q->size = val;
		break;
	case VCC_Q_ENABLE:
		/* Enabling after DRIVER_OK is not supported (needs VIRTIO_F_RING_RESET). */
		if (val == 1 && !(d->status & VIRTIO_STATUS_DRIVER_OK))
			q->enabled = true;
		break;
	}
}

/* Which field a write of size bytes at off is: natural width, or a dword half of a
 * 64-bit field. Returns its width, 0 for none. */
static unsigned vdev_field(unsigned off, unsigned size)
{
	static const struct { uint8_t off, width; } fields[] = {
		{ VCC_DFSELECT, 4 }, { VCC_DF, 4 }, { VCC_GFSELECT, 4 }, { VCC_GF, 4 },
		{ VCC_MSIX_CONFIG, 2 }, { VCC_NUM_QUEUES, 2 }, { VCC_STATUS, 1 },
		{ VCC_CFG_GEN, 1 }, { VCC_Q_SELECT, 2 }, { VCC_Q_SIZE, 2 }, { VCC_Q_MSIX, 2 },
		{ VCC_Q_ENABLE, 2 }, { VCC_Q_NOTIFY_OFF, 2 }, { VCC_Q_DESC, 8 },
		{ VCC_Q_DRIVER, 8 }, { VCC_Q_DEVICE, 8 },
	};

	for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		unsigned fo = fields[i].off, w = fields[i].width;

		if ((off == fo && size == w) || (w == 8 && size == 4 && (off == fo || off == fo + 4)))
			return w;
	}
	return 0;
}

int vdev_common_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	uint8_t img[VPCI_COMMON_LEN];

	if (off % size || off + size > VPCI_COMMON_LEN)
		return -EINVAL;
	if (!write) {
		vdev_common_image(d, img);
		*val = 0;
		memcpy(val, img + off, size);
		return 0;
	}
	if (!vdev_field(off, size))
		return -EINVAL;
	switch (off) {
	case VCC_DFSELECT: d->dfselect = *val; break;
	case VCC_GFSELECT: d->gfselect = *val; break;
	case VCC_GF:
		if (d->gfselect < 2 && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned sh = 32 * d->gfselect;

			d->guest_features = (d->guest_features & ~(0xffffffffULL << sh)) |
					    (uint64_t)(uint32_t)*val << sh;
		}
		break;
	case VCC_MSIX_CONFIG: d->config_vector = vdev_vector(d, *val); break;
	case VCC_STATUS: vdev_status_write(d, *val); break;
	case VCC_Q_SELECT: d->queue_select = *val; break;
	case VCC_Q_MSIX:
		if (vdev_selected(d)) {
			vdev_selected(d)->msix_vector = vdev_vector(d, *val);
			vdev_irq_update(d);
		}
		break;
	case VCC_DF: case VCC_NUM_QUEUES: case VCC_CFG_GEN: case VCC_Q_NOTIFY_OFF:
		break;                        /* read-only: the write is ignored */
	default:
		vdev_queue_write(d, off, size, *val);
		break;
	}
	return 0;
}

/* Reading the ISR returns and clears it, and lowers INTx. */
int vdev_isr_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	if (write)
		return 0;
	*val = off ? 0 : d->isr;
	d->isr = 0;
	vdev_intx_update(d);
	return 0;
}

int vdev_config_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	if (off + size > d->type->config_size)
		return -EINVAL;
	if (!write) {
		*val = 0;
		memcpy(val, d->config + off, size);
		return 0;
	}
	if (d->type->config_writable && d->type->config_writable(off, size)) {
		memcpy(d->config + off, val, size);
		d->config_written |= ((1ULL << size) - 1) << off;   /* a new server gets it too */
		vhf_set_config(d, off, size);
	}
	return 0;                             /* other writes are ignored */
}

/* A kick that did not go through the ioeventfd (another width, or the PCI_CFG window)
 * is passed on the same way. */
int vdev_notify_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool is_write)
{
	uint64_t one = 1;

	if (!is_write) {
		*val = 0;
		return 0;
	}
	if (off % VPCI_NOTIFY_MULT || (size != 2 && size != 4))
		return -EINVAL;
	if (write(d->q[off / VPCI_NOTIFY_MULT].kick_fd, &one, sizeof(one)) < 0)
		return 0;                     /* a full counter: the kick is pending anyway */
	return 0;
}

static void vdev_queue_reset(struct vdev_queue *q)
{
	q->size = VDEV_QUEUE_SIZE;
	q->msix_vector = VIRTIO_MSI_NO_VECTOR;
	q->enabled = false;
	q->desc = q->driver = q->device = 0;
}

/* Device reset: the server's rings stop first (GET_VRING_BASE), then every register
 * goes back to its initial value. MSI-X table entries are PCI state and stay. */
void vdev_reset(struct vdev *d)
{
	bool started = false;

	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		started |= d->q[i].started;
	if (started) {
		if (d->isolation == VDEV_WINDOW) {
			win_stop(d);
		} else {
			vhf_stop(d);
			vif_clear(d);         /* the next server must not resubmit old requests */
		}
	}
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		d->q[i].started = false;
		vdev_queue_reset(&d->q[i]);
	}
	d->dfselect = d->gfselect = 0;
	d->guest_features = 0;
	d->status = 0;
	d->config_vector = VIRTIO_MSI_NO_VECTOR;
	d->queue_select = 0;
	d->isr = 0;
	vdev_irq_update(d);
}

/* Shared mode: the server gets guest RAM and the guest's own rings; its kicks come
 * from the ioeventfds and its calls go to the irqfds. base: where each ring resumes
 * (NULL: at 0, a new ring). */
int vdev_start_shared(struct vdev *d, const uint16_t *base, const char **why)
{
	struct mon *m = d->m;
	struct vhf_ring rings[VDEV_MAX_QUEUES] = { 0 };
	struct vhf_mem mem = { 0 };

	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];
		void *desc, *avail, *used;

		if (!q->enabled)
			continue;
		desc = mon_gpa(m, q->desc, 16ULL * q->size);
		avail = mon_gpa(m, q->driver, 6 + 2ULL * q->size);
		used = mon_gpa(m, q->device, 6 + 8ULL * q->size);
		if (!desc || !avail || !used || q->desc % VIRTQ_DESC_ALIGN ||
		    q->driver % VIRTQ_AVAIL_ALIGN || q->device % VIRTQ_USED_ALIGN) {
			*why = "a ring is not in RAM or misaligned";
			return -EINVAL;
		}
		rings[i] = (struct vhf_ring){ .num = q->size, .desc = (uintptr_t)desc,
					      .avail = (uintptr_t)avail, .used = (uintptr_t)used,
					      .base = base ? base[i] : 0,
					      .kick_fd = q->kick_fd, .call_fd = q->irq_fd,
					      .err_fd = q->err_fd };
	}
	mem.r[0] = (struct vu_region){ 0, m->low_size, (uintptr_t)m->ram, 0 };
	mem.fd[0] = m->mem_fd;
	mem.nregions = 1;
	if (m->high_size) {
		mem.r[1] = (struct vu_region){ BH_HIGH_RAM_BASE, m->high_size,
					       (uintptr_t)m->ram + m->low_size, m->low_size };
		mem.fd[1] = m->mem_fd;
		mem.nregions = 2;
	}
	return vhf_start(d, d->guest_features, &mem, rings, why);
}

/* The rings on the server, once the monitor's side of them is ready. */
int vdev_start_server(struct vdev *d, const char **why)
{
	return d->isolation == VDEV_WINDOW ? win_start_server(d, why)
					   : vdev_start_shared(d, NULL, why);
}

/* DRIVER_OK. While the server is being restarted (paused) only the monitor's side is
 * set up: the reconnect starts the server's rings. A server that dies right now
 * (its socket hung up under the request) pauses the device the same way. */
static int vdev_start(struct vdev *d, const char **why)
{
	int ret = 0;

	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		uint16_t n = d->q[i].size;

		if (d->q[i].enabled && (!n || n & (n - 1) || n > VDEV_QUEUE_SIZE)) {
			*why = "queue size is not a power of 2 up to 256";
			return -EINVAL;
		}
	}
	if (d->conn == VDEV_CONN_DEAD) {
		*why = "the server is gone";
		return -EPIPE;
	}
	if (d->isolation == VDEV_WINDOW)
		ret = win_start(d, why);
	if (ret)
		return ret;
	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		d->q[i].started = d->q[i].enabled;
	if (d->conn != VDEV_CONN_UP)
		return 0;
	ret = vdev_start_server(d, why);
	if (ret && d->backend_dead && ctl_up(d->m) && vdev_peer_gone(d->sock)) {
		vdev_server_lost(d, "server disconnected");
		ret = 0;
	}
	return ret;
}
