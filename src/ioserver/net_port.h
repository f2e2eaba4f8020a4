/*
 * The virtio-net class's ports and server, shared by the files that make up the class:
 *
 *   net.c          set-up and teardown of the server and its ports, device callbacks,
 *                  the class table
 *   net_tx.c       the transmit side: a guest's frame taken, checked, rate-limited
 *   net_rx.c       the receive side: a frame routed and delivered into the receivers'
 *                  receive chains or TAP writes, published only after its sender is done
 *   net_uplink.c   an uplink port: frames read from its TAP and routed
 *   net_poll.c     after every round of the loop: uplinks read, the timer set
 *   net_counters.c a port's `counters` events
 *
 * and, below them, the pure logic of the switch (net_switch.c) and of offloads
 * (net_offload.c), and the TAP's own I/O (net_tap.c, net.h). Nothing here is for main.c.
 */
#ifndef BH_IOSERVER_NET_PORT_H
#define BH_IOSERVER_NET_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "ioserver/ioserver.h"
#include "ioserver/net_offload.h"
#include "ioserver/net_switch.h"

#define NET_RXQ            0
#define NET_TXQ            1
#define NET_RX_MAX_CHAINS  256       /* receive chains one delivery may take (a 64 KiB
					 * GSO frame over MRG_RXBUF, or its segments) */
#define NET_TAP_BUF        65536     /* a frame read from a TAP */
#define NET_MAX_NETWORKS   IOS_MAX_CONNS

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

static inline uint64_t net_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SW_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Crossing files; each described where it is defined. */

/* net_rx.c */
int net_route(struct net_port *src, struct net_frame *f, uint64_t now, bool may_hold,
	      unsigned *n);
void net_commit(struct net_port **dst, unsigned n, const struct net_frame *f);
void net_stash_shift(struct net_port *p, unsigned k, bool give_back);

/* net_tx.c */
int net_tx_frame(struct net_port *p, uint64_t now, bool may_hold);
void net_tx_done(struct net_port *p);
unsigned net_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget);

/* net_uplink.c */
void net_uplink_readable(struct ios *s, struct ios_watch *w, uint32_t events);
unsigned net_uplink_poll(struct net_port *p, uint64_t now);

/* net_poll.c */
void net_timer_fired(struct ios *s, struct ios_watch *w, uint32_t events);
int net_io_poll(struct ios *s);

/* net_counters.c */
void net_report(struct net_port *p, bool final);
void net_report_all(struct ios *s);

#endif
