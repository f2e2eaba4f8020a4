/*
 * The net class's uplink ports: frames read from the TAP (net_tap.c) until it has none,
 * checked for length and learned like a guest's, then routed like any other. No
 * anti-spoofing: many hosts' addresses come in through one TAP.
 */
#include <errno.h>
#include <string.h>

#include "ioserver/net.h"
#include "ioserver/net_port.h"

void net_uplink_readable(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct net_port *p = (struct net_port *)((char *)w - offsetof(struct net_port, tap_watch));

	p->readable = true;
}

/* The uplink's held frame, or the next ones from the TAP; returns the frames done. */
unsigned net_uplink_poll(struct net_port *p, uint64_t now)
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
