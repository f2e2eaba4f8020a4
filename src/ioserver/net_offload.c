/*
 * Checksum and TCP segmentation offload for the net server (net_offload.h): a sender's
 * header checked against the frame, and the software work for receivers that did not
 * negotiate the offload. Everything is bounded by what off_parse checked.
 */
#include <string.h>

#include "ioserver/net_offload.h"

#define ETHERTYPE_IPV4  0x0800
#define ETHERTYPE_IPV6  0x86dd
#define IPPROTO_TCP_    6
#define IPV4_HLEN_MIN   20
#define IPV6_HLEN       40
#define TCP_HLEN_MIN    20
#define TCP_FIN         0x01
#define TCP_PSH         0x08
#define TCP_CWR         0x80
#define IPV4_FRAG_MASK  0x3fff        /* MF and the fragment offset */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

void off_meta_plain(struct off_meta *m, size_t len)
{
	*m = (struct off_meta){ .gso_type = VIRTIO_NET_HDR_GSO_NONE, .nseg = 1, .seg_max = len,
				.wire_bytes = len };
}

/* ------------------------------------------------------------------ checking */

/* The checksum request of a frame that is not GSO: inside the frame, and asked by a
 * sender that negotiated CSUM. */
static enum off_verdict off_parse_csum(const struct virtio_net_hdr *h, uint64_t features,
				       size_t len, struct off_meta *m)
{
	if (!(features & (1ull << VIRTIO_NET_F_CSUM)))
		return OFF_MALFORMED;
	if ((size_t)h->csum_start + h->csum_offset + sizeof(uint16_t) > len)
		return OFF_MALFORMED;
	m->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	m->csum_start = h->csum_start;
	m->csum_offset = h->csum_offset;
	return OFF_OK;
}

/* Where the TCP header of a GSO frame of this type starts in head (hl bytes): 0 when
 * the frame is not Ethernet (+ one tag) + IPv4 (unfragmented) or IPv6 + TCP. */
static size_t off_find_tcp(const uint8_t *head, size_t hl, bool v4, uint16_t *l3_out)
{
	size_t l3 = SW_ETH_HLEN, ihl;
	uint16_t type;

	if (hl < SW_ETH_HLEN)
		return 0;
	type = get16(head + 12);
	if (type == SW_ETHERTYPE_VLAN) {
		if (hl < SW_ETH_HLEN + 4)
			return 0;
		type = get16(head + 16);
		l3 += 4;
	}
	*l3_out = (uint16_t)l3;
	if (v4) {
		if (type != ETHERTYPE_IPV4 || hl < l3 + IPV4_HLEN_MIN || head[l3] >> 4 != 4)
			return 0;
		ihl = (size_t)(head[l3] & 0xf) * 4;
		if (ihl < IPV4_HLEN_MIN || head[l3 + 9] != IPPROTO_TCP_ ||
		    (get16(head + l3 + 6) & IPV4_FRAG_MASK))
			return 0;
		return l3 + ihl;
	}
	if (type != ETHERTYPE_IPV6 || hl < l3 + IPV6_HLEN || head[l3] >> 4 != 6 ||
	    head[l3 + 6] != IPPROTO_TCP_)
		return 0;
	return l3 + IPV6_HLEN;
}

enum off_verdict off_parse(const struct virtio_net_hdr *h, uint64_t features,
			   const uint8_t *head, size_t len, struct off_meta *m)
{
	size_t hl = len < OFF_HEAD_MAX ? len : OFF_HEAD_MAX, l4, hdr, payload;
	uint8_t base = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	uint64_t need;
	enum off_verdict v;

	off_meta_plain(m, len);
	/* DATA_VALID and RSC_INFO are the device's to set, never a driver's. */
	if ((h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) || h->hdr_len > len)
		return OFF_MALFORMED;
	if (h->flags && (v = off_parse_csum(h, features, len, m)) != OFF_OK)
		return v;
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return OFF_OK;
	if (base == VIRTIO_NET_HDR_GSO_TCPV4)
		need = 1ull << VIRTIO_NET_F_HOST_TSO4;
	else if (base == VIRTIO_NET_HDR_GSO_TCPV6)
		need = 1ull << VIRTIO_NET_F_HOST_TSO6;
	else
		return OFF_MALFORMED;             /* UDP (UFO, USO) and unknown types */
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
		need |= 1ull << VIRTIO_NET_F_HOST_ECN;
	if ((features & need) != need || !h->flags || !h->gso_size)
		return OFF_MALFORMED;
	if (len > OFF_GSO_MAX)
		return OFF_OVERSIZE;
	l4 = off_find_tcp(head, hl, base == VIRTIO_NET_HDR_GSO_TCPV4, &m->l3);
	if (!l4 || h->csum_start != l4 || h->csum_offset != OFF_TCP_CSUM_OFFSET ||
	    hl < l4 + TCP_HLEN_MIN)
		return OFF_MALFORMED;
	hdr = l4 + (size_t)(head[l4 + 12] >> 4) * 4;
	if (hdr < l4 + TCP_HLEN_MIN || hdr > hl)
		return OFF_MALFORMED;
	payload = len - hdr;
	m->nseg = payload ? (unsigned)((payload + h->gso_size - 1) / h->gso_size) : 1;
	if (m->nseg > OFF_SEG_MAX)
		return OFF_OVERSIZE;
	m->gso_type = h->gso_type;
	m->gso_size = h->gso_size;
	m->hdr_len = (uint16_t)hdr;
	m->seg_max = hdr + h->gso_size < len ? hdr + h->gso_size : len;
	m->wire_bytes = len + (uint64_t)(m->nseg - 1) * hdr;
	return OFF_OK;
}

bool off_passes(const struct off_meta *m, uint64_t features)
{
	uint64_t need = 1ull << VIRTIO_NET_F_GUEST_CSUM;
	uint8_t base = m->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (!off_needs_work(m))
		return true;
	if (base == VIRTIO_NET_HDR_GSO_TCPV4)
		need |= 1ull << VIRTIO_NET_F_GUEST_TSO4;
	else if (base == VIRTIO_NET_HDR_GSO_TCPV6)
		need |= 1ull << VIRTIO_NET_F_GUEST_TSO6;
	if (m->gso_type & VIRTIO_NET_HDR_GSO_ECN)
		need |= 1ull << VIRTIO_NET_F_GUEST_ECN;
	return (features & need) == need;
}

void off_rx_hdr(const struct off_meta *m, struct virtio_net_hdr *h)
{
	*h = (struct virtio_net_hdr){ .flags = m->flags, .gso_type = m->gso_type };
	if (m->flags) {
		h->csum_start = m->csum_start;
		h->csum_offset = m->csum_offset;
	}
	if (m->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		h->hdr_len = m->hdr_len;
		h->gso_size = m->gso_size;
	}
}

/* ------------------------------------------------------------------ software */

/* 32-bit words at a time: a word hi:lo is hi + lo modulo 0xffff, as two 16-bit words. */
uint64_t off_sum(const uint8_t *p, size_t n, uint64_t acc)
{
	for (; n >= 4; p += 4, n -= 4)
		acc += get32(p);
	if (n >= 2) {
		acc += get16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

uint16_t off_csum_fold(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

/* 0 and 0xffff are the same sum; 0 means "no checksum" to UDP over IPv4. */
void off_csum_fill(uint8_t *frame, size_t len, const struct off_meta *m)
{
	uint16_t c;

	if (!m->flags || (size_t)m->csum_start + m->csum_offset + 2 > len)
		return;
	c = off_csum_fold(off_sum(frame + m->csum_start, len - m->csum_start, 0));
	put16(frame + m->csum_start + m->csum_offset, c ? c : 0xffff);
}

/* One segment's headers made right: s holds hdr header bytes then chunk payload bytes;
 * i of n, first_seq the sequence number of the GSO frame's first byte. */
static void off_fix_segment(uint8_t *s, const struct off_meta *m, size_t chunk, unsigned i,
			    uint32_t seq0, uint16_t id0, uint8_t flags0)
{
	size_t l3 = m->l3, l4 = m->csum_start, hdr = m->hdr_len, tcp_len = hdr - l4 + chunk;
	bool v4 = (m->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4;
	uint8_t fl = flags0;
	uint64_t acc;

	if (v4) {
		put16(s + l3 + 2, (uint16_t)(hdr - l3 + chunk));
		put16(s + l3 + 4, (uint16_t)(id0 + i));
		put16(s + l3 + 10, 0);
		put16(s + l3 + 10, off_csum_fold(off_sum(s + l3, l4 - l3, 0)));
		acc = off_sum(s + l3 + 12, 8, 0);         /* source, destination */
	} else {
		put16(s + l3 + 4, (uint16_t)(hdr - l3 - IPV6_HLEN + chunk));
		acc = off_sum(s + l3 + 8, 32, 0);
	}
	put32(s + l4 + 4, seq0 + (uint32_t)i * m->gso_size);
	if (i + 1 != m->nseg)
		fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (i)
		fl &= (uint8_t)~TCP_CWR;
	s[l4 + 13] = fl;
	put16(s + l4 + OFF_TCP_CSUM_OFFSET, 0);
	acc += IPPROTO_TCP_ + tcp_len;
	put16(s + l4 + OFF_TCP_CSUM_OFFSET, off_csum_fold(off_sum(s + l4, tcp_len, acc)));
}

unsigned off_segment(const uint8_t *frame, size_t len, const struct off_meta *m,
		     uint8_t *out, size_t room, uint32_t *seg_len)
{
	size_t hdr = m->hdr_len, l4 = m->csum_start, payload, off = 0, used = 0;
	uint32_t seq0;
	uint16_t id0;
	uint8_t flags0;

	if (m->gso_type == VIRTIO_NET_HDR_GSO_NONE || hdr > len || !m->gso_size)
		return 0;
	payload = len - hdr;
	seq0 = get32(frame + l4 + 4);
	id0 = get16(frame + m->l3 + 4);
	flags0 = frame[l4 + 13];
	for (unsigned i = 0; i < m->nseg; i++) {
		size_t chunk = payload - off < m->gso_size ? payload - off : m->gso_size;
		uint8_t *s = out + used;

		if (room - used < hdr + chunk)
			return 0;
		memcpy(s, frame, hdr);
		memcpy(s + hdr, frame + hdr + off, chunk);
		off_fix_segment(s, m, chunk, i, seq0, id0, flags0);
		seg_len[i] = (uint32_t)(hdr + chunk);
		used += hdr + chunk;
		off += chunk;
	}
	return m->nseg;
}
