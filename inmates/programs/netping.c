/*
 * netping: ICMP echo round trips to a peer over virtio-net. Resolves the peer with ARP,
 * sends `count` echo requests one at a time, checks each reply byte for byte and prints
 * one summary line with the round-trip figures. Exit status 0 iff no ping was lost.
 *
 * Arguments: ip=A.B.C.D/N peer=A.B.C.D (required), [count=N] (10), [size=BYTES] (56,
 *   0..1472), [interval=US] (0: the next request as soon as a reply came),
 *   [timeout=MS] (1000, per ping), [arp-wait=MS] (10000), [udp] (UDP datagrams to the
 *   peer's echo port 7 instead of ICMP), and the virtio options.
 * The round trip runs from just before the request is handed to the device to the
 * taking of the reply from the receive ring (building and checking are outside it).
 */
#include <inmate/inmate.h>
#include <inmate/net.h>

#define PING_ID            0x6268u      /* "bh" */
#define PING_DEFAULT_COUNT 10u
#define PING_DEFAULT_SIZE  56u
#define PING_MAX_COUNT     100000u
#define PING_REPORT_MAX    10           /* mismatches printed */
#define PING_BUDGET        32
#define PING_UDP_PORT_BASE 40000u
#define PING_UDP_PORTS     16384u

struct ping {
	uint32_t peer;
	uint16_t seq;                /* the one being waited for */
	int waiting, replied;
	uint64_t t0;                 /* TSC when the request went */
	uint32_t rtt;                /* us, of the reply */
	const uint8_t *pattern;      /* expected payload */
	unsigned size;
	uint64_t late, mismatched;
};

static struct net nt;
static struct ping pg;

/* A reply for this program (its id or port) from the peer; `seq_ok`: for the request
 * being waited for. */
static void ping_check(struct net *n, int seq_ok, const uint8_t *data, unsigned len)
{
	unsigned bad = len;

	if (!pg.waiting || !seq_ok) {
		pg.late++;
		return;
	}
	if (len == pg.size && memcmp(data, pg.pattern, len))
		for (bad = 0; data[bad] == pg.pattern[bad]; bad++)
			;
	if (len != pg.size || bad < len) {
		if (pg.mismatched++ >= PING_REPORT_MAX)
			;
		else if (len != pg.size)
			printf("netping: reply %u: %u bytes, expected %u: counted as lost\n",
			       pg.seq, len, pg.size);
		else
			printf("netping: reply %u: payload differs at byte %u (0x%02x, expected "
			       "0x%02x): counted as lost\n", pg.seq, bad, data[bad], pg.pattern[bad]);
		pg.waiting = 0;
		return;
	}
	pg.rtt = (uint32_t)tsc_to_us(n->now - pg.t0);
	pg.replied = 1;
	pg.waiting = 0;
}

static void ping_icmp_reply(struct net *n, const struct net_ip *ip,
			    const struct net_icmp_echo *icmp, const uint8_t *data, unsigned len)
{
	if (icmp->id == NET_HTONS(PING_ID) && ip->src == pg.peer)
		ping_check(n, icmp->seq == net_htons(pg.seq), data, len);
}

/* UDP mode: the request's source port carries its number, the echo comes back to it. */
static uint16_t ping_udp_port(uint16_t seq)
{
	return (uint16_t)(PING_UDP_PORT_BASE + seq % PING_UDP_PORTS);
}

static void ping_udp_reply(struct net *n, const struct net_ip *ip, const struct net_udp *udp,
			   const uint8_t *data, unsigned len, unsigned frame_len)
{
	uint16_t dport = net_ntohs(udp->dport);

	(void)frame_len;
	if (udp->sport == NET_HTONS(NET_UDP_PORT_ECHO) && ip->src == pg.peer &&
	    dport >= PING_UDP_PORT_BASE && dport < PING_UDP_PORT_BASE + PING_UDP_PORTS)
		ping_check(n, dport == ping_udp_port(pg.seq), data, len);
}

/* Heapsort: n log n steps whatever the input (each step costs here). */
static void sort_u32(uint32_t *v, unsigned n)
{
	for (unsigned end = n, start = n / 2; end > 1; ) {
		unsigned root, child;
		uint32_t t;

		if (start) {
			root = --start;
		} else {
			t = v[--end];
			v[end] = v[0];
			v[0] = t;
			root = 0;
		}
		t = v[root];
		while ((child = 2 * root + 1) < end) {
			if (child + 1 < end && v[child + 1] > v[child])
				child++;
			if (v[child] <= t)
				break;
			v[root] = v[child];
			root = child;
		}
		v[root] = t;
	}
}

static int opt_num(const char *arg, const char *key, uint64_t *v)
{
	size_t k = strlen(key);
	char *end;

	if (strncmp(arg, key, k) || arg[k] != '=')
		return 0;
	*v = strtoul(arg + k + 1, &end, 0);
	return end != arg + k + 1 && !*end ? 1 : -1;
}

int main(int argc, char **argv)
{
	struct virtio_opts o = { 0 };
	uint64_t count = PING_DEFAULT_COUNT, size = PING_DEFAULT_SIZE, interval = 0;
	uint64_t timeout = 1000, arp_wait = 10000, sum = 0, received = 0;
	uint32_t ip = 0, *rtts;
	unsigned prefix = 0;
	uint8_t peer_mac[NET_ALEN], *pattern;
	char a[18], b[16], c[16];
	int err, have_ip = 0, have_peer = 0, udp = 0;

	for (int i = 1; i < argc; i++) {
		int r;

		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "ip=", 3)) {
			if (net_parse_ip(argv[i] + 3, &ip, &prefix)) {
				printf("netping: bad address '%s' (want ip=A.B.C.D/N)\n", argv[i] + 3);
				return 2;
			}
			have_ip = 1;
			continue;
		}
		if (!strncmp(argv[i], "peer=", 5)) {
			if (net_parse_ip(argv[i] + 5, &pg.peer, NULL)) {
				printf("netping: bad peer '%s' (want peer=A.B.C.D)\n", argv[i] + 5);
				return 2;
			}
			have_peer = 1;
			continue;
		}
		if (!strcmp(argv[i], "udp")) {
			udp = 1;
			continue;
		}
		if ((r = opt_num(argv[i], "count", &count)) || (r = opt_num(argv[i], "size", &size)) ||
		    (r = opt_num(argv[i], "interval", &interval)) ||
		    (r = opt_num(argv[i], "timeout", &timeout)) ||
		    (r = opt_num(argv[i], "arp-wait", &arp_wait))) {
			if (r < 0) {
				printf("netping: '%s' is not a number\n", argv[i]);
				return 2;
			}
			continue;
		}
		printf("netping: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	if (!have_ip || !have_peer) {
		printf("netping: usage: ip=A.B.C.D/N peer=A.B.C.D [count=N] [size=BYTES] "
		       "[interval=US] [timeout=MS] [arp-wait=MS] [udp]\n");
		return 2;
	}
	if (!count || count > PING_MAX_COUNT || size > NET_ICMP_PAYLOAD_MAX || !timeout ||
	    timeout > 3600000 || interval > 60000000 || arp_wait > 3600000) {
		printf("netping: count must be 1..%u, size 0..%u, timeout 1..3600000 ms, "
		       "interval at most 60 s, arp-wait at most 3600000 ms\n", PING_MAX_COUNT,
		       NET_ICMP_PAYLOAD_MAX);
		return 2;
	}
	err = net_open(&nt, &o, ip, prefix);
	if (err) {
		printf("netping: no usable virtio-net device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		return 1;
	}
	nt.on_echo_reply = ping_icmp_reply;
	nt.on_udp = ping_udp_reply;
	printf("netping: mac %s, ip %s/%u\n", net_fmt_mac(nt.mac, a), net_fmt_ip(ip, b), prefix);

	/* Everything the loop touches, allocated (and so touched) before it. */
	rtts = mem_alloc(count * sizeof(*rtts), 0);
	pattern = mem_alloc(size + 1, 0);
	if (!rtts || !pattern) {
		printf("netping: out of memory for %lu pings\n", count);
		return 1;
	}
	for (unsigned i = 0; i < size; i++)
		pattern[i] = (uint8_t)(i * 37 + 11 + (i >> 8));
	pg.pattern = pattern;
	pg.size = (unsigned)size;

	err = net_arp_resolve(&nt, pg.peer, peer_mac, arp_wait);
	if (err) {
		printf("netping: cannot resolve %s: %s\n", net_fmt_ip(pg.peer, c), net_strerror(err));
		return 1;
	}
	printf("netping: %s is at %s; %lu %s of %lu bytes\n", net_fmt_ip(pg.peer, c),
	       net_fmt_mac(peer_mac, a), count, udp ? "UDP echoes (port 7)" : "pings", size);

	for (uint64_t i = 0; i < count; i++) {
		uint64_t deadline, now;
		unsigned len;
		uint8_t *f;

		err = vnet_get_wait(&nt.vn, &f, VNET_TX_TIMEOUT_US);
		if (err)
			break;
		pg.seq = (uint16_t)i;
		if (udp) {
			memcpy(net_udp_build(&nt, f, peer_mac, pg.peer, ping_udp_port(pg.seq),
					     NET_UDP_PORT_ECHO, (unsigned)size), pattern, size);
			net_udp_finish(f);
			len = NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + (unsigned)size;
		} else {
			len = net_echo_build(&nt, f, peer_mac, pg.peer, PING_ID, pg.seq, pattern,
					     (unsigned)size);
		}
		pg.waiting = 1;
		pg.replied = 0;
		pg.t0 = tsc_now();
		err = vnet_send(&nt.vn, f, len);
		if (err)
			break;
		vnet_kick(&nt.vn);
		deadline = pg.t0 + tsc_from_us(timeout * 1000);
		while (pg.waiting) {
			if (net_poll(&nt, PING_BUDGET))
				continue;
			now = tsc_now();
			if (now >= deadline)
				break;
			err = net_wait(&nt, tsc_to_us(deadline - now) + 1);
			if (err && err != -VIRTIO_ETIMEDOUT)
				break;
			err = 0;
		}
		if (err)
			break;
		pg.waiting = 0;
		if (pg.replied) {
			rtts[received++] = pg.rtt;
			sum += pg.rtt;
		}
		if (interval && i + 1 < count) {
			uint64_t next = pg.t0 + tsc_from_us(interval);

			while ((now = tsc_now()) < next) {
				if (!net_poll(&nt, PING_BUDGET))
					net_wait(&nt, tsc_to_us(next - now) + 1);
			}
		}
	}
	if (err) {
		printf("netping: device failed: %s\n", virtio_strerror(err));
		return 1;
	}
	sort_u32(rtts, (unsigned)received);
	if (received)
		printf("netping: %lu sent, %lu received, %lu lost, rtt min/avg/max/median/p99 = "
		       "%u/%lu/%u/%u/%u us\n", count, received, count - received, rtts[0],
		       sum / received, rtts[received - 1], rtts[(received - 1) / 2],
		       rtts[(received * 99 + 99) / 100 - 1]);
	else
		printf("netping: %lu sent, 0 received, %lu lost, rtt min/avg/max/median/p99 = "
		       "0/0/0/0/0 us\n", count, count);
	if (pg.late || pg.mismatched)
		printf("netping: %lu late replies, %lu wrong replies\n", pg.late, pg.mismatched);
	return received == count ? 0 : 1;
}
