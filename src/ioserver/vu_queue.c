/*
 * One virtqueue of a vhost-user device: mapping it through the memory table, starting
 * and stopping it, taking chains (a corrupt ring breaks the device), publishing
 * completions and notifying the driver through the call eventfd; with an inflight
 * region, recording both and resubmitting what a dead server left in flight.
 */
#include <errno.h>
#include <stdlib.h>
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

static void vu_queue_replay_free(struct vu_queue *vq)
{
	free(vq->replay);
	vq->replay = NULL;
	vq->nreplay = vq->replay_next = 0;
}

/* A ring starting on an inflight region: the region is settled against the used ring,
 * the heads a previous server left in flight are listed (resubmitted first, in pop
 * order), and the avail ring resumes after everything ever taken: every chain taken is
 * either used or in flight, so that is the used index plus those in flight. */
static int vu_queue_inflight_start(struct vu_queue *vq, struct vring *vr)
{
	struct vu_dev *d = vq->dev;
	struct vu_inflight_queue *q = vu_inflight_queue(&d->infl, vq->index);
	uint16_t resume;
	uint64_t next;
	unsigned n;
	int rc;

	vq->infl = NULL;
	if (!q)
		return 0;
	if (vq->num > d->infl.queue_size) {
		ios_log(d->s, d, "queue %u: %u entries, the inflight region has room for %u",
			vq->index, vq->num, d->infl.queue_size);
		return -EINVAL;
	}
	vq->replay = calloc(vq->num, sizeof(*vq->replay));
	if (!vq->replay)
		return -ENOMEM;
	rc = vu_inflight_recover(q, d->infl.queue_size, vq->num, vr->used_idx, vq->replay, &n,
				 &next, &vq->infl_batch_head);
	if (rc) {
		vu_queue_replay_free(vq);
		vu_dev_fail_reason(d, vq, "bad_inflight");
		return rc;
	}
	if (next > d->infl.counter)
		d->infl.counter = next;
	resume = (uint16_t)(vr->used_idx + n);
	if (vq->base != vr->used_idx && vq->base != resume)
		ios_log(d->s, d, "queue %u: base %u ignored: %u in flight after used index %u, "
			"resuming at %u", vq->index, vq->base, n, vr->used_idx, resume);
	vr->last_avail = resume;
	vq->nreplay = n;
	if (n)
		ios_event_replay(d, (int)vq->index, n);
	else
		vu_queue_replay_free(vq);
	if (vq->infl_inherited) {
		/* The dead server may have published completions without signalling them:
		 * signal once whatever happens (a spare interrupt is harmless). */
		vr->signalled_used = (uint16_t)(vr->used_idx - 1);
		vq->pushed = true;
		vq->infl_inherited = false;
	}
	vq->infl = q;
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
	rc = vu_queue_inflight_start(vq, &vr);
	if (rc)
		return rc;
	vq->vr = vr;
	if (d->s->ops->queue_start) {
		rc = d->s->ops->queue_start(d, vq);
		if (rc) {
			vu_queue_replay_free(vq);
			vq->infl = NULL;
			return rc;
		}
	}
	vq->started = true;
	return 0;
}

/* Chains still to resubmit when the ring stops stay in flight in the region: the next
 * start lists them again. */
void vu_queue_stop(struct vu_queue *vq)
{
	if (vq->started)
		vq->base = vq->vr.last_avail;
	vq->started = false;
	vq->infl = NULL;
	vu_queue_replay_free(vq);
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

/* The next head to resubmit, walked from the descriptor table with every check
 * vring_pop makes: through a private avail ring holding only that head. */
static enum vring_error vu_queue_replay(struct vu_queue *vq, struct vring_chain *chain)
{
	uint16_t avail[4] = { 0, 1, vq->replay[vq->replay_next].head, 0 };
	struct vring vr = vq->vr;
	enum vring_error e;

	vr.avail = (struct virtq_avail *)avail;
	vr.last_avail = 0;
	e = vring_pop(&vr, chain);
	if (e == VRING_OK && ++vq->replay_next == vq->nreplay)
		vu_queue_replay_free(vq);
	return e;
}

/* What a previous server left in flight comes first; then the avail ring. A chain is
 * recorded in flight before the class sees it. */
bool vu_queue_pop(struct vu_queue *vq, struct vring_chain *chain)
{
	enum vring_error e;

	if (!vu_queue_ready(vq))
		return false;
	if (vq->replay_next < vq->nreplay) {
		e = vu_queue_replay(vq, chain);
	} else {
		e = vring_pop(&vq->vr, chain);
		if (e == VRING_OK && vq->infl)
			vu_inflight_take(vq->infl, chain->head, vq->dev->infl.counter++);
	}
	if (e == VRING_OK)
		return true;
	if (e != VRING_EMPTY)
		vu_dev_fail(vq->dev, vq, e);
	return false;
}

/* One batch, one store of the used index: the driver, and a server restarted after a
 * kill at any point in here, see every chain of it used or none. */
void vu_queue_push_n(struct vu_queue *vq, const struct virtq_used_elem *elems, unsigned n)
{
	/* A broken device's rings may be anything: leave them alone. */
	if (!n || !vq->started || vq->dev->broken || vq->dev->dead)
		return;
	if (vq->infl)
		vu_inflight_complete_begin(vq->infl, &vq->infl_batch_head, elems, n);
	vring_push_n(&vq->vr, elems, n);
	if (vq->infl)
		vu_inflight_complete_end(vq->infl, elems, n, vq->vr.used_idx);
	vq->pushed = true;
}

void vu_queue_push(struct vu_queue *vq, uint16_t head, uint32_t len)
{
	const struct virtq_used_elem e = { head, len };

	vu_queue_push_n(vq, &e, 1);
}

/* Without a call fd yet (a ring starts before SET_VRING_CALL) completions wait for one. */
void vu_queue_notify(struct vu_queue *vq)
{
	static const uint64_t one = 1;

	if (!vq->pushed || !vq->started || vq->call_fd < 0)
		return;
	vq->pushed = false;
	if (vring_need_notify(&vq->vr) && write(vq->call_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the frontend will see it anyway */
	}
}

void vu_queue_set_notify(struct vu_queue *vq, bool enable)
{
	if (vu_queue_ready(vq))
		vring_set_notify(&vq->vr, enable);
}
