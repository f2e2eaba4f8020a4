/*
 * The net class's receive side: where a frame goes, and its copy into each receiver.
 * Everything is prepared before anything is published, and a guest's receive chains are
 * published only after the sender's transmit chain is completed (net_tx.c): a server
 * killed at any point may lose a frame, never hand one to a guest twice.
 */
#include <errno.h>
#include <string.h>

#include "ioserver/net.h"
#include "ioserver/net_port.h"

/* Copies len bytes of a frame (iov), from where *pos says, to dst. */
static void net_frame_copy(const struct iovec *iov, size_t pos[2], uint8_t *dst, size_t len)
{
	while (len) {
		const struct iovec *v = &iov[pos[0]];
		size_t n = v->iov_len - pos[1];

		if (n > len)
			n = len;
		memcpy(dst, (const uint8_t *)v->iov_base + pos[1], n);
		dst += n;
		len -= n;
		pos[1] += n;
		if (pos[1] == v->iov_len) {
			pos[0]++;
			pos[1] = 0;
		}
	}
}

/* A frame and where its next byte is, for vring_walk. */
struct net_frame_pos {
	const struct iovec *iov;
	size_t *pos;
};

static void net_frame_piece(void *ctx, uint8_t *dst, size_t n)
{
	struct net_frame_pos *f = ctx;

	net_frame_copy(f->iov, f->pos, dst, n);
}

/* Fills the writable buffers of chain c, from skip on, with up to *left frame bytes;
 * returns the bytes written. */
static uint32_t net_fill_chain(const struct vring_chain *c, size_t skip, const struct iovec *iov,
			       size_t pos[2], size_t *left)
{
	struct net_frame_pos f = { iov, pos };
	size_t done = vring_walk(c, true, skip, *left, net_frame_piece, &f);

	*left -= done;
	return (uint32_t)done;
}

/* The next receive chain, into the stash: false when the ring has none (or broke). A
 * receive chain the device cannot even put a header in is a broken driver. */
static bool net_rx_take(struct net_port *p, struct vu_queue *vq)
{
	struct vring_chain *c = &p->stash[p->nstash];

	if (!vu_queue_pop(vq, c))
		return false;
	if (c->readable || c->writable < sizeof(struct virtio_net_hdr)) {
		vu_dev_fail(p->d, vq, VRING_BAD_LAYOUT);
		return false;
	}
	p->nstash++;
	return true;
}

/* Publishes the first k receive chains of the stash as one batch (one move of the used
 * index: a frame's chains reach the driver, or a restarted server's region, together),
 * with the lengths in len; NULL: length 0, unused, which drivers discard. */
static void net_rx_publish(struct net_port *p, unsigned k, const uint32_t *len)
{
	struct virtq_used_elem e[NET_RX_MAX_CHAINS];

	for (unsigned i = 0; i < k; i++)
		e[i] = (struct virtq_used_elem){ p->stash[i].head, len ? len[i] : 0 };
	vu_queue_push_n(&p->d->q[NET_RXQ], e, k);
}

/* The first k receive chains of the stash leave it; back to the driver unused unless
 * they were published already. */
void net_stash_shift(struct net_port *p, unsigned k, bool give_back)
{
	if (give_back)
		net_rx_publish(p, k, NULL);
	p->nstash -= k;
	memmove(p->stash, p->stash + k, p->nstash * sizeof(p->stash[0]));
}

/* Copies one frame (h, then len bytes of iov) into p's receive chains from the stash's
 * fill_n on, without publishing them. -ENOBUFS: the ring runs but has no (or not enough)
 * buffers; -ENODEV: it does not run; -EMSGSIZE: the buffers cannot take the frame (the
 * chains taken for this delivery go back, empty). */
static int net_fill_frame(struct net_port *p, struct virtio_net_hdr *h, const struct iovec *iov,
			  size_t len)
{
	struct vu_queue *vq = &p->d->q[NET_RXQ];
	bool mrg = p->d->features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
	unsigned base = p->fill_n, k;
	size_t need = sizeof(*h) + len, room = 0, left = len;
	size_t pos[2] = { 0, 0 };

	for (k = 0; room < need; k++) {
		if ((!mrg && k == 1) || base + k == NET_RX_MAX_CHAINS) {
			net_stash_shift(p, base + k, true);
			p->fill_n = 0;
			return -EMSGSIZE;
		}
		if (base + k == p->nstash && !net_rx_take(p, vq))
			return vu_queue_ready(vq) ? -ENOBUFS : -ENODEV;
		room += p->stash[base + k].writable;
	}
	h->num_buffers = (uint16_t)k;
	vring_copy_to(&p->stash[base], 0, h, sizeof(*h));
	for (unsigned i = 0; i < k; i++) {
		p->fill_len[base + i] = net_fill_chain(&p->stash[base + i], i ? 0 : sizeof(*h), iov,
						       pos, &left);
		if (!i)
			p->fill_len[base] += sizeof(*h);
	}
	p->fill_n = base + k;
	return 0;
}

/* The software work for receivers without the offload the frame asks, once per frame:
 * its checksum completed, or its segments made, into ns->soft. */
static void net_soft(struct net_server *ns, const struct net_frame *f)
{
	size_t pos[2] = { 0, 0 };

	if (ns->soft_for == f)
		return;
	ns->soft_for = f;
	if (f->m.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		net_frame_copy(f->iov, pos, ns->soft, f->len);
		off_csum_fill(ns->soft, f->len, &f->m);
		ns->soft_len[0] = (uint32_t)f->len;
		ns->soft_n = 1;
		return;
	}
	net_frame_copy(f->iov, pos, ns->lin, f->len);
	ns->soft_n = off_segment(ns->lin, f->len, &f->m, ns->soft, OFF_OUT_MAX, ns->soft_len);
}

/* Copies the frame into p's receive chains without publishing them: as it is, with its
 * offload header, when p negotiated what it asks; else the frames net_soft made, each
 * with a header of its own (DATA_VALID for a receiver that negotiated GUEST_CSUM: the
 * server computed those checksums), all of them published together. -ENOBUFS, -ENODEV,
 * -EMSGSIZE: as net_fill_frame. */
static int net_prepare_guest(struct net_port *p, const struct net_frame *f)
{
	struct net_server *ns = p->ns;
	struct virtio_net_hdr h;
	size_t off = 0;
	int rc = 0;

	if (!vu_queue_ready(&p->d->q[NET_RXQ]))
		return -ENODEV;
	p->fill_n = 0;
	if (off_passes(&f->m, p->d->features)) {
		off_rx_hdr(&f->m, &h);
		rc = net_fill_frame(p, &h, f->iov, f->len);
	} else {
		net_soft(ns, f);
		if (!ns->soft_n)
			return -EMSGSIZE;
		for (unsigned j = 0; j < ns->soft_n && !rc; j++) {
			struct iovec v = { ns->soft + off, ns->soft_len[j] };
			bool valid = p->d->features & (1ull << VIRTIO_NET_F_GUEST_CSUM);

			h = (struct virtio_net_hdr){ .flags = valid ? VIRTIO_NET_HDR_F_DATA_VALID : 0 };
			rc = net_fill_frame(p, &h, &v, v.iov_len);
			off += ns->soft_len[j];
		}
	}
	if (rc)
		p->fill_n = 0;
	return rc;
}

/* An uplink: the frame copied into the server (a plain one into out_buf, a finished
 * one is net_soft's), written at commit. */
static int net_prepare(struct net_port *p, const struct net_frame *f)
{
	size_t pos[2] = { 0, 0 };

	if (p->d)
		return net_prepare_guest(p, f);
	if (off_needs_work(&f->m)) {
		net_soft(p->ns, f);
		p->out_data = p->ns->soft;
		p->out_lens = p->ns->soft_len;
		p->out_n = p->ns->soft_n;
	} else {
		net_frame_copy(f->iov, pos, p->out_buf, f->len);
		p->out_len = (uint32_t)f->len;
		p->out_data = p->out_buf;
		p->out_lens = &p->out_len;
		p->out_n = 1;
	}
	p->out_ready = true;
	return 0;
}

/* Publishes what net_prepare made for frame f: the receive chains, or the writes to the
 * TAP. Counted as frames and bytes on a wire (a GSO frame as its segments). */
void net_commit(struct net_port **dst, unsigned n, const struct net_frame *f)
{
	for (unsigned i = 0; i < n; i++) {
		struct net_port *p = dst[i];
		const uint8_t *data = p->out_data;

		if (p->d) {
			net_rx_publish(p, p->fill_n, p->fill_len);
			net_stash_shift(p, p->fill_n, false);
			p->fill_n = 0;
			sw_count_rx(&p->sw, f->m.nseg, f->m.wire_bytes);
			continue;
		}
		p->out_ready = false;
		for (unsigned j = 0; j < p->out_n; data += p->out_lens[j++]) {
			if (net_tap_write(p->tap_fd, data, p->out_lens[j]))
				sw_count_drop(&p->sw, SW_DROP_NO_BUFFER);
			else
				sw_count_rx(&p->sw, 1, p->out_lens[j]);
		}
	}
}

/* Where a frame from src goes, every receiver prepared (ns->dst, *n). A unicast frame
 * whose receiver has no buffers yet is held (-EAGAIN, nothing prepared) when may_hold;
 * otherwise, and for flooded frames, a receiver without room counts drop_no_buffer. */
int net_route(struct net_port *src, struct net_frame *f, uint64_t now, bool may_hold,
	      unsigned *n)
{
	struct net_server *ns = src->ns;
	struct sw_port *to[SW_MAX_PORTS];
	bool flood;
	unsigned k = sw_destinations(src->sw.sw, &src->sw, f->head, now, to, &flood);

	*n = 0;
	ns->soft_for = NULL;
	for (unsigned i = 0; i < k; i++) {
		struct net_port *p = to[i]->owner;
		int rc = net_prepare(p, f);

		if (!rc)
			ns->dst[(*n)++] = p;
		else if (rc == -ENOBUFS && !flood && may_hold)
			return -EAGAIN;
		else
			sw_count_drop(&p->sw, SW_DROP_NO_BUFFER);
	}
	return 0;
}
