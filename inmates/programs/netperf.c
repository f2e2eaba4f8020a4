/*
 * netperf: a one-way stream of UDP frames to a peer's discard port (9) over virtio-net,
 * each with a sequence number, then an end marker (repeated) with the count sent, and
 * one line with the rate. netecho on the peer counts what arrived.
 *
 * Arguments: ip=A.B.C.D/N peer=A.B.C.D (required), [size=FRAME_BYTES] (1514, 64..1514,
 *   the whole Ethernet frame without FCS), [duration=MS] (2000) or [count=N],
 *   [src-mac=XX:XX:XX:XX:XX:XX] (forge the Ethernet source: no ARP, frames go to the
 *   broadcast address, nothing is waited for, exit 0), [arp-wait=MS] (10000), and the
 *   virtio options. A full transmit ring (a rate-limited port) is waited on, not dropped.
 */
#include <inmate/inmate.h>
#include <inmate/net.h>

#define PERF_SPORT          50009
#define PERF_MARKERS        5           /* end markers sent, in case some are lost */
#define PERF_MARKER_GAP_US  2000
#define PERF_TIME_EVERY     8           /* frames between clock reads (a read costs) */
#define PERF_POLL_EVERY     64          /* frames between looks at the receive ring */
#define PERF_HDRS           (NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN)
#define PERF_TMPL           (PERF_HDRS + sizeof(struct net_perf_msg))

static struct net nt;

static int opt_num(const char *arg, const char *key, uint64_t *v)
{
	size_t k = strlen(key);
	char *end;

	if (strncmp(arg, key, k) || arg[k] != '=')
		return 0;
	*v = strtoul(arg + k + 1, &end, 0);
	return end != arg + k + 1 && !*end ? 1 : -1;
}

/* One frame: the template's headers, then the sequence number (or the END count). */
static int perf_send(const uint8_t *tmpl, unsigned size, uint16_t type, uint64_t seq)
{
	struct net_perf_msg *m;
	uint8_t *f = vnet_get(&nt.vn);
	int err;

	if (!f && (err = vnet_get_wait(&nt.vn, &f, VNET_TX_TIMEOUT_US)))
		return err;
	memcpy(f, tmpl, PERF_TMPL);
	m = (struct net_perf_msg *)(f + PERF_HDRS);
	m->type = type;
	m->seq = seq;
	err = vnet_send(&nt.vn, f, size);
	if (!err)
		vnet_kick(&nt.vn);
	return err;
}

int main(int argc, char **argv)
{
	static const uint8_t bcast[NET_ALEN] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	struct virtio_opts o = { 0 };
	uint64_t size = VNET_FRAME_MAX, duration = 2000, count = 0, arp_wait = 10000;
	uint64_t sent = 0, t0, t1, end, us, fps, mbit10;
	uint32_t ip = 0, peer = 0;
	unsigned prefix = 0;
	uint8_t dst_mac[NET_ALEN], forged[NET_ALEN], tmpl[PERF_TMPL];
	struct net_perf_msg *m;
	char a[18], b[16], c[16];
	int err, have_ip = 0, have_peer = 0, forge = 0, have_duration = 0;

	for (int i = 1; i < argc; i++) {
		int r;

		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "ip=", 3)) {
			if (net_parse_ip(argv[i] + 3, &ip, &prefix)) {
				printf("netperf: bad address '%s' (want ip=A.B.C.D/N)\n", argv[i] + 3);
				return 2;
			}
			have_ip = 1;
			continue;
		}
		if (!strncmp(argv[i], "peer=", 5)) {
			if (net_parse_ip(argv[i] + 5, &peer, NULL)) {
				printf("netperf: bad peer '%s' (want peer=A.B.C.D)\n", argv[i] + 5);
				return 2;
			}
			have_peer = 1;
			continue;
		}
		if (!strncmp(argv[i], "src-mac=", 8)) {
			if (net_parse_mac(argv[i] + 8, forged)) {
				printf("netperf: bad MAC '%s' (want src-mac=XX:XX:XX:XX:XX:XX)\n",
				       argv[i] + 8);
				return 2;
			}
			forge = 1;
			continue;
		}
		if ((r = opt_num(argv[i], "size", &size)) || (r = opt_num(argv[i], "count", &count)) ||
		    (r = opt_num(argv[i], "arp-wait", &arp_wait)) ||
		    (r = have_duration = opt_num(argv[i], "duration", &duration))) {
			if (r < 0) {
				printf("netperf: '%s' is not a number\n", argv[i]);
				return 2;
			}
			continue;
		}
		printf("netperf: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	if (!have_ip || !have_peer) {
		printf("netperf: usage: ip=A.B.C.D/N peer=A.B.C.D [size=FRAME_BYTES] "
		       "[duration=MS] [count=N] [src-mac=XX:XX:XX:XX:XX:XX] [arp-wait=MS]\n");
		return 2;
	}
	if (size < 64 || size > VNET_FRAME_MAX || !duration || duration > 3600000 ||
	    arp_wait > 3600000 || (count && have_duration)) {
		printf("netperf: size must be 64..%u, duration 1..3600000 ms, arp-wait at most "
		       "3600000 ms; count and duration exclude each other\n", VNET_FRAME_MAX);
		return 2;
	}
	err = net_open(&nt, &o, ip, prefix);
	if (err) {
		printf("netperf: no usable virtio-net device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		return 1;
	}
	printf("netperf: mac %s, ip %s/%u\n", net_fmt_mac(nt.mac, a), net_fmt_ip(ip, b), prefix);
	if (forge) {
		net_mac_copy(nt.src_mac, forged);
		net_mac_copy(dst_mac, bcast);
		printf("netperf: forging source mac %s, sending to the broadcast address\n",
		       net_fmt_mac(forged, a));
	} else {
		err = net_arp_resolve(&nt, peer, dst_mac, arp_wait);
		if (err) {
			printf("netperf: cannot resolve %s: %s\n", net_fmt_ip(peer, c),
			       net_strerror(err));
			return 1;
		}
	}

	/* The headers are the same for every frame: built once, copied with the number. */
	m = (struct net_perf_msg *)net_udp_build(&nt, tmpl, dst_mac, peer, PERF_SPORT,
						 NET_UDP_PORT_DISCARD, (unsigned)size - PERF_HDRS);
	*m = (struct net_perf_msg){ .magic = NET_PERF_MAGIC, .type = NET_PERF_DATA,
				    .stream = (uint32_t)tsc_now() ^ nt.mac[5] << 24 };
	if (count)
		printf("netperf: %lu frames of %lu bytes to %s port %u\n", count, size,
		       net_fmt_ip(peer, c), NET_UDP_PORT_DISCARD);
	else
		printf("netperf: %lu ms of %lu-byte frames to %s port %u\n", duration, size,
		       net_fmt_ip(peer, c), NET_UDP_PORT_DISCARD);

	t0 = tsc_now();
	end = t0 + tsc_from_us(duration * 1000);
	for (err = 0; !err; ) {
		if (count ? sent >= count : sent % PERF_TIME_EVERY == 0 && tsc_now() >= end)
			break;
		if (sent % PERF_POLL_EVERY == PERF_POLL_EVERY - 1)
			net_poll(&nt, PERF_POLL_EVERY);          /* ARP from the peer, say */
		err = perf_send(tmpl, (unsigned)size, NET_PERF_DATA, sent);
		sent += !err;
	}
	if (!err)
		err = vnet_flush(&nt.vn, VNET_TX_TIMEOUT_US);
	t1 = tsc_now();
	for (unsigned i = 0; i < PERF_MARKERS && !err; i++) {
		if (i)
			udelay(PERF_MARKER_GAP_US);
		err = perf_send(tmpl, (unsigned)size, NET_PERF_END, sent);
	}
	if (!err)
		err = vnet_flush(&nt.vn, VNET_TX_TIMEOUT_US);
	us = tsc_to_us(t1 - t0);
	fps = us ? sent * 1000000 / us : 0;
	mbit10 = us ? sent * size * 80 / us : 0;
	printf("netperf: sent %lu frames, %lu bytes in %lu us: %lu frames/s, %lu.%lu Mbit/s\n",
	       sent, sent * size, us, fps, mbit10 / 10, mbit10 % 10);
	printf("netperf: %lu notifications (%lu suppressed), %lu waits for a full ring\n",
	       nt.vn.tx.kicks, nt.vn.tx.kicks_suppressed, nt.vn.tx_full_waits);
	if (err) {
		printf("netperf: device failed: %s\n", virtio_strerror(err));
		return forge ? 0 : 1;
	}
	return 0;
}
