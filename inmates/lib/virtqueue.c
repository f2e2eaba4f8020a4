/*
 * Split virtqueues, driver side (virtio 1.2, 2.7): chains of readable then writable
 * buffers (direct, or through an indirect table), notification suppression in both
 * directions (EVENT_IDX or the flags), and reaping of used elements. The device's
 * used ring is read once per element and checked against what the driver offered.
 */
#include <inmate/alloc.h>
#include <inmate/cpu.h>
#include <inmate/lapic.h>
#include <inmate/printf.h>
#include <inmate/tsc.h>
#include "virtio_internal.h"

#define VIRTQ_ALIGN_DESC    16
#define VIRTQ_ALIGN_AVAIL   2
#define VIRTQ_ALIGN_USED    4
#define VIRTQ_SLEEP_MAX_US  10000u     /* a halt lasts at most this long */

static size_t virtq_avail_bytes(uint16_t num)
{
	return sizeof(struct virtq_avail) + sizeof(uint16_t) * (num + 1u);
}

static size_t virtq_used_bytes(uint16_t num)
{
	return sizeof(struct virtq_used) + sizeof(struct virtq_used_elem) * num +
	       sizeof(uint16_t);
}

static uint16_t pow2_floor(uint16_t n)
{
	uint16_t p = 1;

	while ((uint32_t)p * 2 <= n)
		p *= 2;
	return p;
}

/* Each ring part gets its own pages: it keeps the parts apart for a shadowing monitor
 * and costs nothing that matters here. */
static void *virtq_alloc(size_t bytes)
{
	return mem_alloc(bytes, ALLOC_PAGE);
}

int virtio_queue_setup(struct virtio_dev *d, struct virtqueue *vq, uint16_t index,
		       uint16_t size, uint16_t indirect_max)
{
	struct virtio_queue_regs regs;
	uint16_t max = virtio_pci_queue_max(d, index), num;
	int err;

	if (index >= VIRTIO_MAX_QUEUES)
		return -VIRTIO_EINVAL;
	if (!max)
		return -VIRTIO_ENODEV;
	num = size ? size : d->opts.queue_size ? d->opts.queue_size : VIRTIO_QUEUE_DEFAULT;
	if (num > max)
		num = max;
	num = pow2_floor(num);

	*vq = (struct virtqueue){ .dev = d, .index = index, .num = num };
	vq->desc = virtq_alloc(sizeof(struct virtq_desc) * num);
	vq->avail = virtq_alloc(virtq_avail_bytes(num));
	vq->used = virtq_alloc(virtq_used_bytes(num));
	vq->next = mem_alloc(sizeof(uint16_t) * num, 0);
	vq->slots = mem_alloc(sizeof(struct virtq_slot) * num, 0);
	if (virtio_has(d, VIRTIO_F_INDIRECT_DESC) && indirect_max > 1) {
		vq->indirect_max = indirect_max;
		vq->indirect_tables = mem_alloc((size_t)num * indirect_max *
						sizeof(struct virtq_desc), VIRTQ_ALIGN_DESC);
		vq->indirect = 1;
	}
	if (!vq->desc || !vq->avail || !vq->used || !vq->next || !vq->slots ||
	    (vq->indirect && !vq->indirect_tables))
		return -VIRTIO_ENOMEM;
	vq->used_event = &vq->avail->ring[num];
	vq->avail_event = (volatile uint16_t *)&vq->used->ring[num];
	vq->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
	for (uint16_t i = 0; i < num; i++)
		vq->next[i] = i + 1;
	vq->num_free = num;
	vq->free_head = 0;

	regs = (struct virtio_queue_regs){
		.index = index, .size = num,
		.desc = (uintptr_t)vq->desc, .driver = (uintptr_t)vq->avail,
		.device = (uintptr_t)vq->used,
		.msix_entry = virtio_irq_queue_entry(d, index),
	};
	/* Interrupts are asked for only while a waiter sleeps (virtq_wait). */
	virtq_disable_cb(vq);
	err = virtio_pci_queue_program(d, &regs);
	if (err)
		return err;
	vq->notify_addr = regs.notify_addr;
	vq->notify_is_io = regs.notify_is_io;
	vq->msix_entry = regs.msix_entry_set;
	if (regs.msix_entry != VIRTIO_NO_VECTOR && regs.msix_entry_set != regs.msix_entry)
		printf("virtio %02x:%02x.%x: queue %u: device refused MSI-X entry %u; polling it\n",
		       d->pci.bus, d->pci.slot, d->pci.func, index, regs.msix_entry);
	d->vqs[index] = vq;
	if (d->opts.verbose)
		printf("virtio %02x:%02x.%x: queue %u: %u entries (max %u), desc 0x%lx avail 0x%lx "
		       "used 0x%lx, %s%s\n", d->pci.bus, d->pci.slot, d->pci.func, index, num,
		       max, (unsigned long)regs.desc, (unsigned long)regs.driver,
		       (unsigned long)regs.device, vq->event_idx ? "event-idx" : "flags",
		       vq->indirect ? ", indirect" : "");
	return 0;
}

int virtq_add(struct virtqueue *vq, const struct virtq_buf *bufs, unsigned nout,
	      unsigned nin, void *token)
{
	unsigned total = nout + nin, need;
	uint16_t head = vq->free_head, idx;
	uint64_t writable = 0;
	int use_indirect;

	if (vq->broken)
		return -VIRTIO_EIO;
	if (!total || !token || total > VIRTQ_MAX_SIZE)
		return -VIRTIO_EINVAL;
	for (unsigned i = nout; i < total; i++)
		writable += bufs[i].len;
	if (writable > UINT32_MAX)
		return -VIRTIO_EINVAL;
	use_indirect = vq->indirect && total > 1 && total <= vq->indirect_max;
	need = use_indirect ? 1 : total;
	if (need > vq->num)
		return -VIRTIO_EINVAL;
	if (need > vq->num_free)
		return -VIRTIO_ENOSPC;

	if (use_indirect) {
		struct virtq_desc *t = &vq->indirect_tables[(size_t)head * vq->indirect_max];

		for (unsigned i = 0; i < total; i++)
			t[i] = (struct virtq_desc){
				.addr = (uintptr_t)bufs[i].addr, .len = bufs[i].len,
				.flags = (i >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (i + 1 < total ? VIRTQ_DESC_F_NEXT : 0),
				.next = i + 1 < total ? i + 1 : 0,
			};
		vq->desc[head] = (struct virtq_desc){
			.addr = (uintptr_t)t, .len = total * sizeof(struct virtq_desc),
			.flags = VIRTQ_DESC_F_INDIRECT,
		};
		vq->free_head = vq->next[head];
	} else {
		idx = head;
		for (unsigned i = 0; i < total; i++) {
			vq->desc[idx] = (struct virtq_desc){
				.addr = (uintptr_t)bufs[i].addr, .len = bufs[i].len,
				.flags = (i >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (i + 1 < total ? VIRTQ_DESC_F_NEXT : 0),
				.next = i + 1 < total ? vq->next[idx] : 0,
			};
			idx = vq->next[idx];
		}
		vq->free_head = idx;
	}
	vq->num_free -= need;
	vq->slots[head] = (struct virtq_slot){ .token = token, .ndesc = need,
					       .writable = (uint32_t)writable };

	vq->avail->ring[vq->avail_idx & (vq->num - 1)] = head;
	virtio_wmb();                   /* the entry before the index that publishes it */
	vq->avail_idx++;
	*(volatile uint16_t *)&vq->avail->idx = vq->avail_idx;
	vq->added++;
	return 0;
}

void virtq_notify(struct virtqueue *vq)
{
	vq->kicks++;
	if (vq->notify_is_io)
		outw(vq->notify_addr, vq->index);
	else
		mmio_write16(vq->notify_addr, vq->index);
}

int virtq_kick(struct virtqueue *vq)
{
	uint16_t old = vq->kicked_idx, new = vq->avail_idx;
	int need;

	if (old == new)
		return 0;
	virtio_mb();                    /* avail->idx visible before reading the device's wish */
	vq->kicked_idx = new;
	if (vq->event_idx) {
		uint16_t event = *vq->avail_event;

		need = (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	} else {
		need = !(*(volatile uint16_t *)&vq->used->flags & VIRTQ_USED_F_NO_NOTIFY);
	}
	if (!need) {
		vq->kicks_suppressed++;
		return 0;
	}
	virtq_notify(vq);
	return 1;
}

static void virtq_break(struct virtqueue *vq, const char *why, uint32_t a, uint32_t b)
{
	if (!vq->broken) {
		const struct virtio_dev *d = vq->dev;

		printf("virtio %02x:%02x.%x: queue %u: device broke the ring: %s (%u, %u)\n",
		       d->pci.bus, d->pci.slot, d->pci.func, vq->index, why, a, b);
	}
	vq->broken = 1;
	vq->broken_why = why;
}

int virtq_has_used(const struct virtqueue *vq)
{
	return *(volatile uint16_t *)&vq->used->idx != vq->last_used;
}

void *virtq_get(struct virtqueue *vq, uint32_t *len)
{
	uint16_t used_idx = *(volatile uint16_t *)&vq->used->idx;
	volatile struct virtq_used_elem *e;
	uint32_t id, n;
	struct virtq_slot *s;
	void *token;
	uint16_t tail;

	if (vq->broken || used_idx == vq->last_used)
		return NULL;
	if ((uint16_t)(used_idx - vq->last_used) > vq->num) {
		virtq_break(vq, "used->idx ran ahead of the ring", used_idx, vq->last_used);
		return NULL;
	}
	virtio_rmb();                   /* the element after the index that published it */
	e = &vq->used->ring[vq->last_used & (vq->num - 1)];
	id = e->id;
	n = e->len;
	if (id >= vq->num || !vq->slots[id].token) {
		virtq_break(vq, "used id is not a chain in flight", id, vq->num);
		return NULL;
	}
	s = &vq->slots[id];
	if (n > s->writable) {
		virtq_break(vq, "used length exceeds the writable bytes", n, s->writable);
		return NULL;
	}
	token = s->token;
	/* Return the chain's descriptors to the free list, through the private links. */
	tail = id;
	for (unsigned i = 1; i < s->ndesc; i++)
		tail = vq->next[tail];
	vq->next[tail] = vq->free_head;
	vq->free_head = id;
	vq->num_free += s->ndesc;
	*s = (struct virtq_slot){ 0 };
	vq->last_used++;
	vq->completed++;
	if (vq->event_idx && vq->cb_enabled)
		*vq->used_event = vq->last_used;
	if (len)
		*len = n;
	return token;
}

int virtq_enable_cb(struct virtqueue *vq)
{
	vq->cb_enabled = 1;
	if (vq->event_idx)
		*vq->used_event = vq->last_used;
	else
		*(volatile uint16_t *)&vq->avail->flags = 0;
	virtio_mb();                    /* the request visible before re-checking used->idx */
	return virtq_has_used(vq);
}

void virtq_disable_cb(struct virtqueue *vq)
{
	vq->cb_enabled = 0;
	/* With EVENT_IDX the flags must stay 0: park used_event just behind. */
	if (vq->event_idx)
		*vq->used_event = vq->last_used - 1;
	else
		*(volatile uint16_t *)&vq->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
}

/* Halts until an interrupt, bounded by a LAPIC one-shot; keeps the caller's IF. */
static void virtq_sleep(struct virtqueue *vq, uint64_t seen, uint64_t us)
{
	uint64_t rflags = cpu_read_rflags();

	cpu_cli();
	if (!virtq_has_used(vq) && vq->irqs + vq->dev->config_irqs == seen) {
		lapic_timer_oneshot_us(us < VIRTQ_SLEEP_MAX_US ? us : VIRTQ_SLEEP_MAX_US);
		cpu_sti_hlt();
		cpu_cli();
	}
	if (rflags & CPU_RFLAGS_IF)
		cpu_sti();
}

int virtq_wait(struct virtqueue *vq, uint64_t timeout_us)
{
	uint64_t start = tsc_now(), now;
	uint64_t deadline = start + tsc_from_us(timeout_us);
	uint64_t spin_end = start + tsc_from_us(VIRTQ_POLL_US);
	uint64_t config_seen = vq->dev->config_irqs;
	int ret;

	for (;;) {
		if (vq->broken)
			return -VIRTIO_EIO;
		if (virtq_has_used(vq))
			return 0;
		now = tsc_now();
		if (now >= deadline || vq->dev->config_irqs != config_seen) {
			config_seen = vq->dev->config_irqs;
			if (virtio_needs_reset(vq->dev))
				return -VIRTIO_EIO;
			if (now >= deadline)
				return -VIRTIO_ETIMEDOUT;
		}
		if (now < spin_end || !virtio_irq_can_sleep(vq)) {
			cpu_relax();
			continue;
		}
		{
			uint64_t seen = vq->irqs + vq->dev->config_irqs;

			ret = virtq_enable_cb(vq);
			if (!ret)
				virtq_sleep(vq, seen, tsc_to_us(deadline - now) + 1);
			virtq_disable_cb(vq);
		}
	}
}
