/*
 * The net class's transmit side: a guest's frame taken from its transmit ring, checked
 * (header, offload request, length, source), made to wait for rate credit, then routed
 * (net_rx.c). A frame that waits keeps its chain, so the ring is not read further:
 * backpressure on the guest rather than drops.
 */
#include <errno.h>
#include <string.h>

#include "ioserver/net_port.h"

/* The chain just taken as a frame: the header read once, the frame's first bytes copied
 * out once, the header's offload request checked against them and against what the
 * port negotiated, the lengths checked. False: dropped. */
static bool net_tx_parse(struct net_port *p)
{
	const struct vring_chain *c = p->tx;
	struct net_frame *f = &p->frame;
	size_t skip;
	struct virtio_net_hdr h;
	enum off_verdict v;

	if (c->readable < sizeof(h)) {
		sw_count_drop(&p->sw, SW_DROP_MALFORMED);
		return false;
	}
	vring_copy_from(c, 0, &h, sizeof(h));
	f->len = c->readable - sizeof(h);
	f->headlen = f->len < OFF_HEAD_MAX ? f->len : OFF_HEAD_MAX;
	memset(f->head, 0, SW_ETH_HLEN);
	vring_copy_from(c, sizeof(h), f->head, f->headlen);
	if (f->len < SW_ETH_HLEN) {
		sw_check_length(&p->sw, f->head, f->len);     /* drop_malformed */
		return false;
	}
	v = off_parse(&h, p->d->features, f->head, f->len, &f->m);
	if (v != OFF_OK) {
		sw_count_drop(&p->sw, v == OFF_OVERSIZE ? SW_DROP_OVERSIZE : SW_DROP_MALFORMED);
		return false;
	}
	if (sw_check_length(&p->sw, f->head, f->m.seg_max) != SW_PASS)
		return false;
	f->iov[0] = (struct iovec){ f->head, f->headlen };
	f->niov = 1;
	skip = sizeof(h) + f->headlen;
	for (unsigned i = 0; i < c->niov && !c->iov[i].write; i++) {
		const struct vring_iov *vi = &c->iov[i];

		if (skip >= vi->len) {
			skip -= vi->len;
			continue;
		}
		f->iov[f->niov++] = (struct iovec){ (uint8_t *)vi->base + skip, vi->len - skip };
		skip = 0;
	}
	return true;
}

void net_tx_done(struct net_port *p)
{
	p->busy = false;
	vu_queue_push(&p->d->q[NET_TXQ], p->tx->head, 0);
}

/* The taken frame, as far as it can go now: 0 when it is done with (delivered or
 * dropped, its chain completed before the receivers see it), -EAGAIN while it waits
 * for credit or for a receiver's buffers. may_hold false: no waiting for buffers. */
int net_tx_frame(struct net_port *p, uint64_t now, bool may_hold)
{
	struct net_server *ns = p->ns;
	unsigned n = 0;

	if (!p->admitted) {
		uint64_t wait = sw_rate_admit(&p->sw, p->frame.m.wire_bytes, now);

		if (wait) {
			p->wait_until = now + wait;
			return -EAGAIN;
		}
		p->admitted = true;
		if (sw_ingress(&p->sw, p->frame.head, p->frame.m.nseg, p->frame.m.wire_bytes,
			       now) != SW_PASS) {
			net_tx_done(p);
			return 0;
		}
	}
	may_hold = may_hold && ns->hold_ns && (!p->deadline || now < p->deadline);
	if (net_route(p, &p->frame, now, may_hold, &n) == -EAGAIN) {
		if (!p->deadline)
			p->deadline = now + ns->hold_ns;
		return -EAGAIN;
	}
	net_tx_done(p);
	net_commit(ns->dst, n, &p->frame);
	return 0;
}

unsigned net_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget)
{
	struct net_port *p = d->priv;
	uint64_t now = net_now_ns();
	unsigned n = 0;

	if (vq->index != NET_TXQ)
		return 0;                 /* receive chains are taken as frames arrive */
	if (p->busy) {
		if (!p->admitted && now < p->wait_until)
			return 0;
		if (net_tx_frame(p, now, true))
			return 0;
		n++;
	}
	while (n < budget && vu_queue_pop(vq, p->tx)) {
		n++;
		p->busy = true;
		p->admitted = false;
		p->deadline = 0;
		if (!net_tx_parse(p)) {
			net_tx_done(p);
			continue;
		}
		if (net_tx_frame(p, now, true))
			break;
	}
	return n;
}
