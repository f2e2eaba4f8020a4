/*
 * The virtio-net class (virtio 1.2, 5.1): every connection is a port of its network's
 * learning switch (net_switch.c), an uplink TAP (net_tap.c) another. A frame is copied
 * once, from the sender's transmit chain into the receivers' receive chains, and those
 * are published only after the transmit chain is completed: a server killed at any point
 * may lose a frame, never hand one to a guest twice (docs/ioserver.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/json_quote.h"
#include "ioserver/ioserver.h"
#include "ioserver/net.h"
#include "ioserver/net_offload.h"
#include "ioserver/net_switch.h"

#define NET_RXQ            0
#define NET_TXQ            1
#define NET_QUEUE_MAX      1024
#define NET_RX_MAX_CHAINS  256       /* receive chains one delivery may take (a 64 KiB
					 * GSO frame over MRG_RXBUF, or its segments) */
#define NET_TAP_BUF        65536     /* a frame read from a TAP */
#define NET_REPORT_NS      SW_NS_PER_S
#define NET_MAX_NETWORKS   IOS_MAX_CONNS

/* The configuration space offered: up to max_virtqueue_pairs (no MTU, no RSS). */
#define NET_CONFIG_LEN     offsetof(struct virtio_net_config, mtu)

/* A frame on its way: its first bytes (Ethernet, IP and TCP headers) copied out of the
 * sender's memory once (what was checked is what goes out: iov[0] points at head), the
 * rest where the sender has it; its offload metadata checked against that copy. */
struct net_frame {
	uint8_t head[OFF_HEAD_MAX];
	size_t headlen;
	struct iovec iov[VRING_MAX_IOV + 1];
	unsigned niov;
	size_t len;                       /* Ethernet bytes, header included */
	struct off_meta m;
};

struct net_server;

/* A port: a guest's device (d) or an uplink (tap_fd). */
struct net_port {
	struct sw_port sw;
	struct net_server *ns;
	struct net_port *next;
	struct vu_dev *d;                 /* NULL: an uplink */
	char partition[IOS_NAME_MAX + 1];
	unsigned device;
	/* Receive: chains taken from the ring and not used yet; the first fill_n hold the
	 * frame being delivered, published by net_commit. */
	struct vring_chain *stash;
	unsigned nstash, fill_n;
	uint32_t fill_len[NET_RX_MAX_CHAINS];
	/* Transmit: the frame taken (busy) and not done with, possibly held. */
	struct vring_chain *tx;
	struct net_frame frame;
	bool busy;
	bool admitted;                    /* rate credit taken, source checked */
	uint64_t wait_until;              /* not admitted: when the credit suffices */
	uint64_t deadline;                /* held for a receiver's buffers until then; 0 */
	uint64_t reported;                /* sw.gen at the last counters line */
	/* Uplink. */
	int tap_fd;
	char tap[16];
	bool readable;                    /* the TAP said so; reads until EAGAIN */
	struct ios_watch tap_watch;
	uint8_t *in_buf;                  /* the frame read (and held) */
	uint8_t *out_buf;                 /* a plain frame to write, prepared */
	const uint8_t *out_data;          /* what to write: out_buf, or the server's soft */
	const uint32_t *out_lens;         /* the frames in it */
	uint32_t out_len;
	unsigned out_n;
	bool out_ready;
};

struct net_server {
	struct ios *s;
	struct sw_switch *sw[NET_MAX_NETWORKS];
	unsigned nsw;
	struct net_port *ports;           /* guests and uplinks */
	int timer_fd;                     /* wakes the loop for held frames and reports */
	struct ios_watch timer_watch;
	uint64_t armed_ns;                /* what timer_fd is set to; UINT64_MAX: nothing */
	uint64_t hold_ns;
	uint64_t next_report_ns;
	struct net_port *dst[SW_MAX_PORTS];   /* one frame's receivers, prepared */
	/* The software work on the frame being routed, done once for every receiver
	 * without the offload it asks (soft_for: that frame; NULL: not done yet). */
	const struct net_frame *soft_for;
	uint8_t *lin;                     /* the frame, linear (OFF_GSO_MAX) */
	uint8_t *soft;                    /* the finished frames, one after the other */
	uint32_t soft_len[OFF_SEG_MAX];
	unsigned soft_n;
};

static uint64_t net_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SW_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ counters */

static void net_report(struct net_port *p, bool final)
{
	char server[IOS_NAME_MAX * 6 + 3], who[IOS_NAME_MAX * 6 + 48], net[IOS_NAME_MAX * 6 + 3];
	char line[2048], name[IOS_NAME_MAX * 6 + 3];
	const struct sw_counters *c = &p->sw.c;
	const uint8_t *m = p->sw.mac;
	int n;

	if (json_quote(server, sizeof(server), p->ns->s->name) < 0 ||
	    json_quote(net, sizeof(net), p->sw.sw ? p->sw.sw->network : "") < 0 ||
	    json_quote(name, sizeof(name), p->d ? p->partition : p->tap) < 0)
		return;
	if (p->d)
		snprintf(who, sizeof(who), "\"partition\":%s,\"device\":%u", name, p->device);
	else
		snprintf(who, sizeof(who), "\"uplink\":%s", name);
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"counters\",\"server\":%s,%s,\"network\":%s,"
		     "\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"rx_frames\":%" PRIu64
		     ",\"rx_bytes\":%" PRIu64 ",\"tx_frames\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
		     ",\"drop_spoof\":%" PRIu64 ",\"drop_rate\":%" PRIu64 ",\"drop_no_buffer\":%"
		     PRIu64 ",\"drop_oversize\":%" PRIu64 ",\"drop_malformed\":%" PRIu64 "%s}\n",
		     server, who, net, m[0], m[1], m[2], m[3], m[4], m[5], c->rx_frames,
		     c->rx_bytes, c->tx_frames, c->tx_bytes, c->drop_spoof, c->drop_rate,
		     c->drop_no_buffer, c->drop_oversize, c->drop_malformed,
		     final ? ",\"final\":true" : "");
	if (n > 0 && (size_t)n < sizeof(line))
		ios_event_write(p->ns->s, line, (size_t)n);
	p->reported = p->sw.gen;
}

/* SIGUSR1: every port now. */
static void net_report_all(struct ios *s)
{
	struct net_server *ns = s->priv;

	for (struct net_port *p = ns->ports; p; p = p->next)
		net_report(p, false);
}

/* ------------------------------------------------------------------ receive side */

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

/* Fills the writable buffers of chain c, from skip on, with up to *left frame bytes;
 * returns the bytes written. */
static uint32_t net_fill_chain(const struct vring_chain *c, size_t skip, const struct iovec *iov,
			       size_t pos[2], size_t *left)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < c->niov && *left; i++) {
		const struct vring_iov *v = &c->iov[i];
		size_t n;

		if (!v->write)
			continue;
		if (skip >= v->len) {
			skip -= v->len;
			continue;
		}
		n = v->len - skip < *left ? v->len - skip : *left;
		net_frame_copy(iov, pos, (uint8_t *)v->base + skip, n);
		*left -= n;
		done += (uint32_t)n;
		skip = 0;
	}
	return done;
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
static void net_stash_shift(struct net_port *p, unsigned k, bool give_back)
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
static void net_commit(struct net_port **dst, unsigned n, const struct net_frame *f)
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
static int net_route(struct net_port *src, struct net_frame *f, uint64_t now, bool may_hold,
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

/* ------------------------------------------------------------------ transmit side */

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

static void net_tx_done(struct net_port *p)
{
	p->busy = false;
	vu_queue_push(&p->d->q[NET_TXQ], p->tx->head, 0);
}

/* The taken frame, as far as it can go now: 0 when it is done with (delivered or
 * dropped, its chain completed before the receivers see it), -EAGAIN while it waits
 * for credit or for a receiver's buffers. may_hold false: no waiting for buffers. */
static int net_tx_frame(struct net_port *p, uint64_t now, bool may_hold)
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

static unsigned net_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget)
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

/* ------------------------------------------------------------------ uplinks */

static void net_tap_readable(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct net_port *p = (struct net_port *)((char *)w - offsetof(struct net_port, tap_watch));

	p->readable = true;
}

/* The uplink's held frame, or the next ones from the TAP; returns the frames done. */
static unsigned net_tap_poll(struct net_port *p, uint64_t now)
{
	struct net_frame *f = &p->frame;
	unsigned done = 0, n;

	while (done < IOS_BATCH) {
		if (!p->busy) {
			ssize_t len;

			if (!p->readable)
				break;
			len = net_tap_read(p->tap_fd, p->in_buf, NET_TAP_BUF);
			if (len < 0) {
				p->readable = false;   /* EAGAIN; or the TAP is gone: stop */
				break;
			}
			done++;
			f->len = (size_t)len;
			f->headlen = f->len < OFF_HEAD_MAX ? f->len : OFF_HEAD_MAX;
			memset(f->head, 0, SW_ETH_HLEN);
			memcpy(f->head, p->in_buf, f->headlen);
			if (sw_check_length(&p->sw, f->head, f->len) != SW_PASS)
				continue;
			off_meta_plain(&f->m, f->len);       /* no vnet header: no offloads */
			sw_ingress(&p->sw, f->head, 1, f->len, now);
			f->iov[0] = (struct iovec){ f->head, f->headlen };
			f->iov[1] = (struct iovec){ p->in_buf + f->headlen, f->len - f->headlen };
			f->niov = 2;
			p->busy = true;
			p->deadline = 0;
		}
		if (net_route(p, f, now, p->ns->hold_ns && (!p->deadline || now < p->deadline),
			      &n) == -EAGAIN) {
			if (!p->deadline)
				p->deadline = now + p->ns->hold_ns;
			break;
		}
		p->busy = false;
		net_commit(p->ns->dst, n, f);
	}
	return done;
}

/* ------------------------------------------------------------------ timer, polling */

static void net_timer_fired(struct ios *s, struct ios_watch *w, uint32_t events)
{
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already read; the loop looks at every ring after a wake-up anyway */
	}
}

/* When a waiting port wants looking at again: its credit, or its hold's end. Ports whose
 * ring cannot run are left alone (a drain or a reset settles them). */
static uint64_t net_port_due(const struct net_port *p)
{
	if (!p->busy || (p->d && !vu_queue_ready(&p->d->q[NET_TXQ])))
		return UINT64_MAX;
	if (p->d && !p->admitted)
		return p->wait_until;
	return p->deadline ? p->deadline : UINT64_MAX;
}

static void net_timer_arm(struct net_server *ns, uint64_t at)
{
	struct itimerspec its = { 0 };

	if (at == ns->armed_ns)
		return;
	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / SW_NS_PER_S);
		its.it_value.tv_nsec = (long)(at % SW_NS_PER_S);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (!timerfd_settime(ns->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		ns->armed_ns = at;
}

/* After every round: the uplinks read, counters reported (at most once a second per
 * port, while they change), and the timer set to the next thing to wait for. */
static int net_io_poll(struct ios *s)
{
	struct net_server *ns = s->priv;
	uint64_t now = net_now_ns(), next = UINT64_MAX;
	bool changed = false;
	unsigned done = 0;

	for (struct net_port *p = ns->ports; p; p = p->next) {
		uint64_t due;

		if (!p->d)
			done += net_tap_poll(p, now);
		due = net_port_due(p);
		if (due < next)
			next = due;
		changed |= p->sw.gen != p->reported;
	}
	if (changed && now >= ns->next_report_ns) {
		for (struct net_port *p = ns->ports; p; p = p->next)
			if (p->sw.gen != p->reported)
				net_report(p, false);
		ns->next_report_ns = now + NET_REPORT_NS;
		changed = false;
	}
	if (changed && ns->next_report_ns < next)
		next = ns->next_report_ns;
	if (ns->armed_ns <= now)
		ns->armed_ns = UINT64_MAX; /* a one-shot timer that has fired */
	net_timer_arm(ns, next);
	return (int)done;
}

/* ------------------------------------------------------------------ set-up */

static struct sw_switch *net_switch_find(struct net_server *ns, const char *network)
{
	for (unsigned i = 0; i < ns->nsw; i++)
		if (!strcmp(ns->sw[i]->network, network))
			return ns->sw[i];
	return NULL;
}

static int net_switch_get(struct net_server *ns, const char *network, struct sw_switch **out)
{
	struct sw_switch *sw = net_switch_find(ns, network);

	if (!sw) {
		if (ns->nsw == NET_MAX_NETWORKS)
			return -ENOSPC;
		sw = malloc(sizeof(*sw));
		if (!sw)
			return -ENOMEM;
		sw_init(sw, network, SW_AGE_NS_DEFAULT);
		ns->sw[ns->nsw++] = sw;
	}
	*out = sw;
	return 0;
}

static void net_port_link(struct net_server *ns, struct net_port *p)
{
	p->ns = ns;
	p->next = ns->ports;
	ns->ports = p;
}

static void net_port_unlink(struct net_port *p)
{
	for (struct net_port **pp = &p->ns->ports; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
}

static int net_uplink_add(struct ios *s, struct net_server *ns, const struct ios_uplink_spec *u,
			  const uint8_t mac[6])
{
	struct net_port *p = calloc(1, sizeof(*p));
	struct sw_switch *sw;
	int rc;

	if (!p)
		return -ENOMEM;
	sw_port_init(&p->sw, mac, true, p);
	p->tap_fd = u->fd;
	snprintf(p->tap, sizeof(p->tap), "%s", u->tap);
	p->in_buf = malloc(NET_TAP_BUF);
	p->out_buf = malloc(SW_ETH_MAX_VLAN);
	rc = p->in_buf && p->out_buf ? net_switch_get(ns, u->network, &sw) : -ENOMEM;
	if (!rc)
		rc = sw_port_add(sw, &p->sw);
	p->tap_watch.fd = u->fd;
	p->tap_watch.fn = net_tap_readable;
	if (!rc)
		rc = ios_watch_add(s, &p->tap_watch, EPOLLIN | EPOLLET);
	if (rc) {
		sw_port_remove(&p->sw);
		free(p->in_buf);
		free(p->out_buf);
		free(p);
		return rc;
	}
	p->readable = true;               /* frames may be queued already */
	net_port_link(ns, p);
	return 0;
}

static int net_server_init(struct ios *s, const struct ios_conn_spec *specs, unsigned n)
{
	struct net_server *ns = calloc(1, sizeof(*ns));
	struct sw_switch *sw;
	int rc = 0;

	if (!ns)
		return -ENOMEM;
	s->priv = ns;
	ns->s = s;
	ns->hold_ns = (uint64_t)s->net.hold_ms * 1000000u;
	ns->armed_ns = UINT64_MAX;
	ns->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ns->timer_fd < 0)
		return -errno;
	ns->timer_watch.fd = ns->timer_fd;
	ns->timer_watch.fn = net_timer_fired;
	rc = ios_watch_add(s, &ns->timer_watch, EPOLLIN);
	ns->lin = malloc(OFF_GSO_MAX);
	ns->soft = malloc(OFF_OUT_MAX);
	if (!rc && (!ns->lin || !ns->soft))
		rc = -ENOMEM;
	for (unsigned i = 0; !rc && i < n; i++)
		rc = net_switch_get(ns, specs[i].network, &sw);
	for (unsigned i = 0; !rc && i < s->net.nuplinks; i++) {
		const struct ios_uplink_spec *u = &s->net.uplinks[i];

		rc = net_uplink_add(s, ns, u, u->mac);
	}
	return rc;
}

static void net_server_fini(struct ios *s)
{
	struct net_server *ns = s->priv;

	if (!ns)
		return;
	while (ns->ports) {               /* the uplinks: the devices are gone */
		struct net_port *p = ns->ports;

		net_report(p, true);
		net_port_unlink(p);
		sw_port_remove(&p->sw);
		close(p->tap_fd);
		free(p->in_buf);
		free(p->out_buf);
		free(p);
	}
	for (unsigned i = 0; i < ns->nsw; i++)
		free(ns->sw[i]);
	if (ns->timer_fd >= 0)
		close(ns->timer_fd);
	free(ns->lin);
	free(ns->soft);
	free(ns);
	s->priv = NULL;
}

/* A connection's port: its network and MAC; standalone, the template's MAC advanced by
 * the number of frontends accepted before this one. */
static int net_dev_init(struct vu_dev *d, const struct ios_conn_spec *spec)
{
	struct net_server *ns = d->s->priv;
	struct net_port *p = calloc(1, sizeof(*p));
	struct sw_switch *sw = net_switch_find(ns, spec->network);
	uint8_t mac[6];
	int rc;

	if (!p)
		return -ENOMEM;
	memcpy(mac, spec->mac, sizeof(mac));
	if (d->s->listen_fd >= 0 && d->s->accepted > 1) {
		uint64_t v = 0;

		for (unsigned i = 0; i < 6; i++)
			v = v << 8 | mac[i];
		v += d->s->accepted - 1;
		for (unsigned i = 6; i-- > 0; v >>= 8)
			mac[i] = (uint8_t)v;
	}
	sw_port_init(&p->sw, mac, false, p);
	if (spec->rate)
		sw_port_set_rate(&p->sw, spec->rate, spec->burst, net_now_ns());
	p->d = d;
	p->tap_fd = -1;
	snprintf(p->partition, sizeof(p->partition), "%s", spec->partition);
	p->device = spec->device;
	p->stash = calloc(NET_RX_MAX_CHAINS, sizeof(*p->stash));
	p->tx = malloc(sizeof(*p->tx));
	rc = !sw ? -ENOENT : !p->stash || !p->tx ? -ENOMEM : sw_port_add(sw, &p->sw);
	if (rc) {
		free(p->stash);
		free(p->tx);
		free(p);
		return rc;
	}
	net_port_link(ns, p);
	d->priv = p;
	return 0;
}

/* A port going: its final counters; frames held for it are routed again when retried
 * (its addresses are forgotten). */
static void net_dev_fini(struct vu_dev *d)
{
	struct net_port *p = d->priv;

	if (!p)
		return;
	net_report(p, true);
	net_port_unlink(p);
	sw_port_remove(&p->sw);
	free(p->stash);
	free(p->tx);
	free(p);
	d->priv = NULL;
}

/* Nothing of the device's may stay taken: its held frame goes now (without waiting for
 * buffers; one still waiting for credit is dropped, drop_rate), and receive chains taken
 * but not filled go back empty. A broken device's rings are left alone. */
static void net_drain(struct vu_dev *d)
{
	struct net_port *p = d->priv;
	bool usable = !d->broken && !d->dead;

	if (p->busy && usable) {
		if (!p->admitted) {
			sw_count_drop(&p->sw, SW_DROP_RATE);
			net_tx_done(p);
		} else {
			net_tx_frame(p, net_now_ns(), false);
		}
	}
	p->busy = false;
	net_stash_shift(p, p->nstash, usable);
	p->fill_n = 0;
}

static uint64_t net_features(struct vu_dev *d)
{
	return IOS_RING_FEATURES | (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
	       (1ull << VIRTIO_NET_F_STATUS) | OFF_FEATURES;
}

static size_t net_config_fill(struct vu_dev *d, uint8_t *buf)
{
	const struct net_port *p = d->priv;
	struct virtio_net_config c = { .status = VIRTIO_NET_S_LINK_UP, .max_virtqueue_pairs = 1 };

	memcpy(c.mac, p->sw.mac, sizeof(c.mac));
	memcpy(buf, &c, NET_CONFIG_LEN);
	return NET_CONFIG_LEN;
}

static const char *net_prepare_spec(struct ios_conn_spec *spec)
{
	if (!spec->network[0] || !spec->has_mac)
		return "network= and mac= are required for net";
	return NULL;
}

const struct ios_backend ios_net_backend = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.queue_max = NET_QUEUE_MAX,
	.features = net_features,
	.config = net_config_fill,
	.prepare_spec = net_prepare_spec,
	.server_init = net_server_init,
	.server_fini = net_server_fini,
	.dev_init = net_dev_init,
	.dev_fini = net_dev_fini,
	.handle = net_handle,
	.io_poll = net_io_poll,
	.drain = net_drain,
	.reset = net_drain,
	.report = net_report_all,
};
