/*
 * IPv4, ICMP echo and UDP for the inmate network stack: checks of what arrives (header
 * and transport checksums, lengths; fragments are not reassembled but ignored), echo
 * answers built in the received buffer (addresses swapped, checksums updated rather than
 * recomputed over the payload), and the builders programs send with.
 */
#include <inmate/net.h>
#include <inmate/string.h>

#define NET_IP_VERSION     4
#define NET_IP_FRAG_MASK   0x3FFF      /* MF and the fragment offset */
#define NET_BCAST_IP       0xFFFFFFFFu

/* The header checksum of a 20-byte header: five 32-bit words, no loop. */
static inline uint16_t net_ip_csum20(const void *hdr)
{
	const net_u32 *w = hdr;

	return (uint16_t)~net_csum_fold((uint64_t)w[0] + w[1] + w[2] + w[3] + w[4]);
}

static inline uint16_t net_ip_csum(const void *hdr, unsigned ihl)
{
	return ihl == NET_IP_HLEN ? net_ip_csum20(hdr) : net_csum(hdr, ihl);
}

/* Turns a received datagram around in its own buffer and sends it: Ethernet and IP
 * addresses swapped, a fresh TTL. The transport checksum stays valid: the sum of the
 * pseudo-header does not depend on which address is which. */
static void net_reply(struct net *nt, uint8_t *frame, struct net_ip *ip, unsigned ihl,
		      unsigned tot)
{
	struct net_eth *e = (struct net_eth *)frame;

	net_mac_copy(e->dst, e->src);
	net_mac_copy(e->src, nt->mac);
	ip->dst = ip->src;
	ip->src = nt->ip;
	ip->ttl = NET_IP_TTL;
	ip->csum = 0;
	ip->csum = net_ip_csum(ip, ihl);
	if (vnet_send(&nt->vn, frame, NET_ETH_HLEN + tot))
		nt->st.tx_errors++;
}

static int net_icmp_input(struct net *nt, uint8_t *frame, struct net_ip *ip, unsigned ihl,
			  unsigned tot)
{
	struct net_icmp_echo *icmp = (struct net_icmp_echo *)((uint8_t *)ip + ihl);
	unsigned len = tot - ihl;
	uint64_t sum;

	if (len < NET_ICMP_HLEN || net_csum(icmp, len)) {
		nt->st.bad++;
		return 0;
	}
	if (icmp->type == NET_ICMP_ECHO_REPLY && icmp->code == 0 && nt->on_echo_reply) {
		nt->on_echo_reply(nt, ip, icmp, (const uint8_t *)(icmp + 1), len - NET_ICMP_HLEN);
		return 0;
	}
	if (icmp->type != NET_ICMP_ECHO_REQUEST || icmp->code || !nt->icmp_echo ||
	    ip->dst != nt->ip) {
		nt->st.ignored++;
		return 0;
	}
	/* RFC 1624: HC' = ~(~HC + ~m + m'), the word (type, code) going from 8 to 0. */
	icmp->type = NET_ICMP_ECHO_REPLY;
	sum = (uint16_t)~icmp->csum + (uint16_t)~(uint16_t)NET_ICMP_ECHO_REQUEST;
	icmp->csum = (uint16_t)~net_csum_fold(sum);
	net_reply(nt, frame, ip, ihl, tot);
	nt->st.echo_answered++;
	return 1;
}

static int net_udp_input(struct net *nt, uint8_t *frame, unsigned frame_len, struct net_ip *ip,
			 unsigned ihl, unsigned tot)
{
	struct net_udp *udp = (struct net_udp *)((uint8_t *)ip + ihl);
	unsigned ulen;

	if (tot - ihl < NET_UDP_HLEN) {
		nt->st.bad++;
		return 0;
	}
	ulen = net_ntohs(udp->len);
	if (ulen < NET_UDP_HLEN || ulen > tot - ihl ||
	    (udp->csum && net_csum_fold(net_csum_add(net_csum_pseudo(ip->src, ip->dst,
		    NET_IP_PROTO_UDP, (uint16_t)ulen), udp, ulen)) != 0xFFFF)) {
		nt->st.bad++;
		return 0;
	}
	if (udp->dport == NET_HTONS(NET_UDP_PORT_ECHO) && nt->udp_echo && ip->dst == nt->ip) {
		uint16_t port = udp->sport;

		udp->sport = udp->dport;
		udp->dport = port;
		net_reply(nt, frame, ip, ihl, tot);
		nt->st.udp_echoed++;
		return 1;
	}
	if (!nt->on_udp) {                      /* discard (port 9) and everything else */
		nt->st.ignored++;
		return 0;
	}
	nt->st.udp_delivered++;
	nt->on_udp(nt, ip, udp, (const uint8_t *)(udp + 1), ulen - NET_UDP_HLEN, frame_len);
	return 0;
}

int net_ip_input(struct net *nt, uint8_t *frame, unsigned len)
{
	struct net_ip *ip = (struct net_ip *)(frame + NET_ETH_HLEN);
	unsigned ihl, tot;

	if (len < NET_ETH_HLEN + NET_IP_HLEN) {
		nt->st.bad++;
		return 0;
	}
	ihl = (ip->vihl & 0xFu) * 4;
	tot = net_ntohs(ip->len);
	if (ip->vihl >> 4 != NET_IP_VERSION || ihl < NET_IP_HLEN || tot < ihl ||
	    tot > len - NET_ETH_HLEN || net_ip_csum(ip, ihl)) {
		nt->st.bad++;
		return 0;
	}
	if (ip->frag & NET_HTONS(NET_IP_FRAG_MASK)) {
		nt->st.ignored++;                   /* no reassembly */
		return 0;
	}
	if (ip->dst != nt->ip &&
	    !(ip->proto == NET_IP_PROTO_UDP &&
	      (ip->dst == NET_BCAST_IP || ip->dst == (nt->ip | ~nt->mask)))) {
		nt->st.ignored++;
		return 0;
	}
	switch (ip->proto) {
	case NET_IP_PROTO_ICMP:
		return net_icmp_input(nt, frame, ip, ihl, tot);
	case NET_IP_PROTO_UDP:
		return net_udp_input(nt, frame, len, ip, ihl, tot);
	default:
		nt->st.ignored++;
		return 0;
	}
}

/* --- building ----------------------------------------------------------------------------- */

uint8_t *net_ip_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
		      uint8_t proto, unsigned len)
{
	struct net_eth *e = (struct net_eth *)frame;
	struct net_ip *ip = (struct net_ip *)(frame + NET_ETH_HLEN);

	net_mac_copy(e->dst, dst_mac);
	net_mac_copy(e->src, nt->src_mac);
	e->type = NET_HTONS(NET_ETH_P_IP);
	/* Never fragmented, so DF and identification 0 (RFC 6864, atomic datagrams). */
	*ip = (struct net_ip){
		.vihl = NET_IP_VERSION << 4 | NET_IP_HLEN / 4,
		.len = net_htons((uint16_t)(NET_IP_HLEN + len)), .frag = NET_HTONS(NET_IP_DF),
		.ttl = NET_IP_TTL, .proto = proto, .src = nt->ip, .dst = dst,
	};
	ip->csum = net_ip_csum20(ip);
	return (uint8_t *)(ip + 1);
}

uint8_t *net_udp_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
		       uint16_t sport, uint16_t dport, unsigned len)
{
	struct net_udp *udp = (struct net_udp *)net_ip_build(nt, frame, dst_mac, dst,
							     NET_IP_PROTO_UDP, NET_UDP_HLEN + len);

	*udp = (struct net_udp){ .sport = net_htons(sport), .dport = net_htons(dport),
				 .len = net_htons((uint16_t)(NET_UDP_HLEN + len)) };
	return (uint8_t *)(udp + 1);
}

void net_udp_finish(uint8_t *frame)
{
	struct net_ip *ip = (struct net_ip *)(frame + NET_ETH_HLEN);
	struct net_udp *udp = (struct net_udp *)(ip + 1);
	uint16_t ulen = net_ntohs(udp->len), c;

	udp->csum = 0;
	c = (uint16_t)~net_csum_fold(net_csum_add(
		net_csum_pseudo(ip->src, ip->dst, NET_IP_PROTO_UDP, ulen), udp, ulen));
	udp->csum = c ? c : 0xFFFF;             /* 0 would mean "no checksum" */
}

int net_udp_send(struct net *nt, uint32_t dst, uint16_t sport, uint16_t dport,
		 const void *data, unsigned len)
{
	uint8_t mac[NET_ALEN], *f, *payload;
	int err;

	if (len > NET_UDP_PAYLOAD_MAX)
		return -VIRTIO_EINVAL;
	err = net_arp_lookup(nt, dst, mac);
	if (!err)
		err = vnet_get_wait(&nt->vn, &f, VNET_TX_TIMEOUT_US);
	if (err)
		return err;
	payload = net_udp_build(nt, f, mac, dst, sport, dport, len);
	memcpy(payload, data, len);
	net_udp_finish(f);
	err = vnet_send(&nt->vn, f, NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + len);
	if (!err)
		vnet_kick(&nt->vn);
	return err;
}

unsigned net_echo_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
			uint16_t id, uint16_t seq, const void *data, unsigned len)
{
	struct net_icmp_echo *icmp = (struct net_icmp_echo *)net_ip_build(
		nt, frame, dst_mac, dst, NET_IP_PROTO_ICMP, NET_ICMP_HLEN + len);

	*icmp = (struct net_icmp_echo){ .type = NET_ICMP_ECHO_REQUEST,
					.id = net_htons(id), .seq = net_htons(seq) };
	memcpy(icmp + 1, data, len);
	icmp->csum = net_csum(icmp, NET_ICMP_HLEN + len);
	return NET_ETH_HLEN + NET_IP_HLEN + NET_ICMP_HLEN + len;
}
