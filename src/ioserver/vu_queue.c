/*
 * One virtqueue of a vhost-user device: mapping it through the memory table, starting
 * and stopping it, taking chains (a corrupt ring breaks the device), publishing
 * completions and notifying the driver through the call eventfd.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

/* A kick: clear the eventfd; the loop looks at every running ring after each wake-up. */
static void vu_queue_kicked(struct ios *s, struct ios_watch *w, uint32_t events)
{
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already cleared; nothing else can go wrong with an eventfd */
	}
}

void vu_queue_init(struct vu_dev *d, struct vu_queue *vq, unsigned index)
{
	memset(vq, 0, sizeof(*vq));
	vq->dev = d;
	vq->index = index;
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	vq->kick_watch.fd = -1;
	vq->kick_watch.fn = vu_queue_kicked;
}

/* The ring at the addresses the frontend gave, as host pointers in vr. -ENXIO when the
 * frontend has not said enough yet; -EFAULT when the addresses are not in its memory. */
static int vu_queue_map(struct vu_queue *vq, struct vring *vr)
{
	struct vu_mem *m = &vq->dev->mem;
	uint64_t desc, avail, used;

	if (!vq->num || !vq->addr_set || !m->n)
		return -ENXIO;
	if (vu_mem_ua_to_ga(m, vq->desc_ua, vring_desc_size(vq->num), &desc) ||
	    vu_mem_ua_to_ga(m, vq->avail_ua, vring_avail_size(vq->num), &avail) ||
	    vu_mem_ua_to_ga(m, vq->used_ua, vring_used_size(vq->num), &used))
		return -EFAULT;
	if (vring_init(vr, vq->num, desc, avail, used, vu_mem_translate, m))
		return -EFAULT;
	return 0;
}

int vu_queue_start(struct vu_queue *vq)
{
	struct vu_dev *d = vq->dev;
	struct vring vr;
	int rc = vu_queue_map(vq, &vr);

	if (rc)
		return rc;
	vr.event_idx = d->features & (1ull << VIRTIO_F_EVENT_IDX);
	vr.indirect = d->features & (1ull << VIRTIO_F_INDIRECT_DESC);
	vr.last_avail = vq->base;
	/* Resume where the used ring is: after a stop, or a restarted server. */
	vr.used_idx = *(volatile uint16_t *)&vr.used->idx;
	vr.signalled_used = vr.used_idx;
	vq->vr = vr;
	if (d->s->ops->queue_start) {
		rc = d->s->ops->queue_start(d, vq);
		if (rc)
			return rc;
	}
	vq->started = true;
	return 0;
}

void vu_queue_stop(struct vu_queue *vq)
{
	if (vq->started)
		vq->base = vq->vr.last_avail;
	vq->started = false;
	if (vq->kick_fd >= 0) {
		ios_watch_del(vq->dev->s, &vq->kick_watch);
		close(vq->kick_fd);
	}
	vq->kick_fd = vq->kick_watch.fd = -1;
	vq->poll_kick = false;
}

int vu_queue_remap(struct vu_queue *vq)
{
	struct vring vr;
	int rc;

	if (!vq->started)
		return 0;
	rc = vu_queue_map(vq, &vr);
	if (rc)
		return rc;
	vq->vr.desc = vr.desc;
	vq->vr.avail = vr.avail;
	vq->vr.used = vr.used;
	return 0;
}

void vu_queue_close_fds(struct vu_queue *vq)
{
	vu_queue_stop(vq);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	vq->call_fd = vq->err_fd = -1;
}

bool vu_queue_ready(const struct vu_queue *vq)
{
	const struct vu_dev *d = vq->dev;
	bool enabled = vq->enabled || !(d->features & (1ull << VU_F_PROTOCOL_FEATURES));

	return vq->started && enabled && !d->broken && !d->dead;
}

bool vu_queue_pop(struct vu_queue *vq, struct vring_chain *chain)
{
	enum vring_error e;

	if (!vu_queue_ready(vq))
		return false;
	e = vring_pop(&vq->vr, chain);
	if (e == VRING_OK)
		return true;
	if (e != VRING_EMPTY)
		vu_dev_fail(vq->dev, vq, e);
	return false;
}

void vu_queue_push(struct vu_queue *vq, uint16_t head, uint32_t len)
{
	/* A broken device's rings may be anything: leave them alone. */
	if (!vq->started || vq->dev->broken || vq->dev->dead)
		return;
	vring_push(&vq->vr, head, len);
	vq->pushed = true;
}

void vu_queue_notify(struct vu_queue *vq)
{
	static const uint64_t one = 1;

	if (!vq->pushed || !vq->started)
		return;
	vq->pushed = false;
	if (vring_need_notify(&vq->vr) && vq->call_fd >= 0 &&
	    write(vq->call_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the frontend will see it anyway */
	}
}

void vu_queue_set_notify(struct vu_queue *vq, bool enable)
{
	if (vu_queue_ready(vq))
		vring_set_notify(&vq->vr, enable);
}
