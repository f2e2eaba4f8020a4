/*
 * The net server's offload helpers (src/ioserver/net_offload.c): headers checked against
 * frames, hostile headers refused, partial checksums completed, TCP frames over IPv4 and
 * IPv6 cut into segments whose every header and checksum a receiver would accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ioserver/net_offload.h"

#define ALL  OFF_FEATURES
#define F(b) (1ull << (b))

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)g16(p) << 16 | g16(p + 2);
}

static void p16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A TCP frame: Ethernet (tag: one 802.1Q tag), IPv4 or IPv6, TCP with 12 bytes of
 * options, payload bytes i & 0xff; returns its length, *l4 where TCP starts. The TCP
 * checksum field holds the pseudo-header sum without length, as Linux leaves it. */
static size_t tcp_frame(uint8_t *f, bool v6, bool tag, size_t payload, uint8_t flags,
			size_t *l4_out)
{
	size_t l3 = 14, l4, hdr;

	memset(f, 0, 200);
	memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	if (tag) {
		p16(f + 12, 0x8100);
		p16(f + 14, 5);
		l3 = 18;
	}
	p16(f + l3 - 2, v6 ? 0x86dd : 0x0800);
	if (v6) {
		f[l3] = 0x60;
		f[l3 + 6] = 6;
		f[l3 + 7] = 64;
		for (int i = 0; i < 16; i++) {
			f[l3 + 8 + i] = (uint8_t)(0xfd + i);
			f[l3 + 24 + i] = (uint8_t)(0x20 + i);
		}
		l4 = l3 + 40;
	} else {
		f[l3] = 0x45;
		p16(f + l3 + 4, 0x1234);
		p16(f + l3 + 6, 0x4000);  /* DF */
		f[l3 + 8] = 64;
		f[l3 + 9] = 6;
		memcpy(f + l3 + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
		l4 = l3 + 20;
	}
	p16(f + l4, 5201);
	p16(f + l4 + 2, 40000);
	f[l4 + 4] = 0xff;                 /* sequence 0xfffff000: wraps while segmenting */
	f[l4 + 5] = 0xff;
	f[l4 + 6] = 0xf0;
	f[l4 + 12] = 8 << 4;              /* 32-byte header */
	f[l4 + 13] = flags;
	p16(f + l4 + 14, 502);
	hdr = l4 + 32;
	for (size_t i = 0; i < payload; i++)
		f[hdr + i] = (uint8_t)i;
	*l4_out = l4;
	return hdr + payload;
}

static struct virtio_net_hdr gso_hdr(bool v6, size_t l4, uint16_t mss)
{
	return (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = (uint16_t)(l4 + 32), .gso_size = mss, .csum_start = (uint16_t)l4,
		.csum_offset = 16 };
}

/* The TCP checksum of a segment, checked as a receiver does: 0 when right. */
static uint16_t tcp_verify(const uint8_t *s, size_t len, size_t l3, size_t l4, bool v6)
{
	uint64_t acc = v6 ? off_sum(s + l3 + 8, 32, 0) : off_sum(s + l3 + 12, 8, 0);

	acc += 6 + (len - l4);
	return off_csum_fold(off_sum(s + l4, len - l4, acc));
}

static uint8_t frame[OFF_GSO_MAX], out[OFF_OUT_MAX];

static void check_segments(bool v6, bool tag, size_t payload, uint16_t mss, uint8_t flags)
{
	size_t l4, l3 = tag ? 18 : 14, len = tcp_frame(frame, v6, tag, payload, flags, &l4);
	size_t hdr = l4 + 32, got = 0;
	struct virtio_net_hdr h = gso_hdr(v6, l4, mss);
	struct off_meta m;
	uint32_t seg_len[OFF_SEG_MAX];
	unsigned n, want = (unsigned)((payload + mss - 1) / mss);
	const uint8_t *s = out;

	if (v6)
		h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), OFF_OK);
	assert_int_equal(m.nseg, want);
	assert_int_equal(m.hdr_len, hdr);
	assert_int_equal(m.wire_bytes, payload + want * hdr);
	assert_int_equal(m.seg_max, hdr + (payload < mss ? payload : mss));
	n = off_segment(frame, len, &m, out, sizeof(out), seg_len);
	assert_int_equal(n, want);
	for (unsigned i = 0; i < n; s += seg_len[i++]) {
		size_t chunk = seg_len[i] - hdr;
		uint8_t fl = s[l4 + 13];

		assert_true(chunk == mss || (i == n - 1 && chunk == payload - got));
		assert_memory_equal(s, frame, l3);                   /* Ethernet untouched */
		if (v6) {
			assert_int_equal(g16(s + l3 + 4), 32 + chunk);
		} else {
			assert_int_equal(g16(s + l3 + 2), 20 + 32 + chunk);
			assert_int_equal(g16(s + l3 + 4), 0x1234 + i);
			assert_int_equal(off_csum_fold(off_sum(s + l3, 20, 0)), 0);
		}
		assert_int_equal(g32(s + l4 + 4), (uint32_t)(0xfffff000u + got));
		assert_int_equal(tcp_verify(s, seg_len[i], l3, l4, v6), 0);
		assert_int_equal(!!(fl & 0x01), (flags & 0x01) && i == n - 1);   /* FIN */
		assert_int_equal(!!(fl & 0x08), (flags & 0x08) && i == n - 1);   /* PSH */
		assert_int_equal(!!(fl & 0x80), (flags & 0x80) && i == 0);       /* CWR */
		assert_int_equal(fl & 0x10, flags & 0x10);                        /* ACK */
		assert_memory_equal(s + hdr, frame + hdr + got, chunk);
		got += chunk;
	}
	assert_int_equal(got, payload);
}

static void test_segment_ipv4(void **state)
{
	(void)state;
	check_segments(false, false, 3000, 1000, 0x19);          /* ACK PSH FIN */
	check_segments(false, false, 65535 - 20 - 32, 1448, 0x98);
	check_segments(false, true, 2897, 1448, 0x10);           /* tagged, odd tail */
	check_segments(false, false, 100, 1448, 0x18);           /* one segment */
}

static void test_segment_ipv6(void **state)
{
	(void)state;
	check_segments(true, false, 4000, 1428, 0x98);           /* CWR + ECN */
	check_segments(true, true, 65535 - 32, 1428, 0x18);
	check_segments(true, false, 1, 1000, 0x11);
}

/* NEEDS_CSUM without GSO: the sum from csum_start, stored at csum_offset. */
static void test_csum_fill(void **state)
{
	size_t l4, len = tcp_frame(frame, false, false, 777, 0x18, &l4);
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				    .csum_start = (uint16_t)l4, .csum_offset = 16 };
	struct off_meta m;
	uint64_t pseudo = off_sum(frame + 14 + 12, 8, 0) + 6 + (len - l4);

	(void)state;
	p16(frame + l4 + 16, (uint16_t)~off_csum_fold(pseudo));  /* the pseudo-header sum */
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), OFF_OK);
	assert_int_equal(m.nseg, 1);
	assert_true(off_needs_work(&m));
	off_csum_fill(frame, len, &m);
	assert_int_equal(tcp_verify(frame, len, 14, l4, false), 0);
	/* a result of 0 is stored as 0xffff; odd lengths are padded */
	memset(frame, 0, 64);
	h = (struct virtio_net_hdr){ .flags = 1, .csum_start = 10, .csum_offset = 0 };
	assert_int_equal(off_parse(&h, ALL, frame, 15, &m), OFF_OK);
	off_csum_fill(frame, 15, &m);
	assert_int_equal(g16(frame + 10), 0xffff);
	frame[14] = 0x12;
	p16(frame + 10, 0);
	off_csum_fill(frame, 15, &m);
	assert_int_equal(g16(frame + 10), (uint16_t)~0x1200);
}

/* Who takes a frame as it is. */
static void test_passes(void **state)
{
	size_t l4, len = tcp_frame(frame, false, false, 3000, 0x18, &l4);
	struct virtio_net_hdr h = gso_hdr(false, l4, 1000);
	struct off_meta m, plain;
	struct virtio_net_hdr rx;
	uint64_t csum = F(VIRTIO_NET_F_GUEST_CSUM);

	(void)state;
	off_meta_plain(&plain, 60);
	assert_true(off_passes(&plain, 0));
	assert_false(off_needs_work(&plain));
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), OFF_OK);
	assert_false(off_passes(&m, 0));
	assert_false(off_passes(&m, csum));
	assert_false(off_passes(&m, csum | F(VIRTIO_NET_F_GUEST_TSO6)));
	assert_false(off_passes(&m, F(VIRTIO_NET_F_GUEST_TSO4)));
	assert_true(off_passes(&m, csum | F(VIRTIO_NET_F_GUEST_TSO4)));
	off_rx_hdr(&m, &rx);
	assert_int_equal(rx.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(rx.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(rx.gso_size, 1000);
	assert_int_equal(rx.hdr_len, l4 + 32);
	assert_int_equal(rx.csum_start, l4);
	assert_int_equal(rx.csum_offset, 16);
	h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), OFF_OK);
	assert_false(off_passes(&m, csum | F(VIRTIO_NET_F_GUEST_TSO4)));
	assert_true(off_passes(&m, csum | F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_ECN)));
	h = (struct virtio_net_hdr){ .flags = 1, .csum_start = (uint16_t)l4, .csum_offset = 16 };
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), OFF_OK);
	assert_false(off_passes(&m, 0));
	assert_true(off_passes(&m, csum));
}

/* Headers that cannot be right, each refused. */
static void test_hostile_headers(void **state)
{
	size_t l4, len = tcp_frame(frame, false, false, 3000, 0x18, &l4);
	struct virtio_net_hdr good = gso_hdr(false, l4, 1000), h;
	struct off_meta m;

	(void)state;
#define BAD(field, value, want) do { h = good; h.field = (value); \
	assert_int_equal(off_parse(&h, ALL, frame, len, &m), (want)); } while (0)
	BAD(flags, VIRTIO_NET_HDR_F_DATA_VALID, OFF_MALFORMED);
	BAD(flags, VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_RSC_INFO, OFF_MALFORMED);
	BAD(flags, 0, OFF_MALFORMED);                      /* GSO without NEEDS_CSUM */
	BAD(gso_size, 0, OFF_MALFORMED);
	BAD(gso_size, 10, OFF_OVERSIZE);                   /* 300 segments */
	BAD(hdr_len, (uint16_t)(len + 1), OFF_MALFORMED);
	BAD(gso_type, VIRTIO_NET_HDR_GSO_UDP, OFF_MALFORMED);
	BAD(gso_type, VIRTIO_NET_HDR_GSO_UDP_L4, OFF_MALFORMED);
	BAD(gso_type, 2, OFF_MALFORMED);
	BAD(gso_type, 0x7f, OFF_MALFORMED);
	BAD(gso_type, VIRTIO_NET_HDR_GSO_TCPV6, OFF_MALFORMED);     /* an IPv4 frame */
	BAD(csum_start, (uint16_t)(l4 + 1), OFF_MALFORMED);
	BAD(csum_start, 0xffff, OFF_MALFORMED);
	BAD(csum_offset, 6, OFF_MALFORMED);
	BAD(csum_offset, 0xffff, OFF_MALFORMED);
	/* what the sender did not negotiate */
	assert_int_equal(off_parse(&good, ALL & ~F(VIRTIO_NET_F_HOST_TSO4), frame, len, &m),
			 OFF_MALFORMED);
	assert_int_equal(off_parse(&good, 0, frame, len, &m), OFF_MALFORMED);
	h = good;
	h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(off_parse(&h, ALL & ~F(VIRTIO_NET_F_HOST_ECN), frame, len, &m),
			 OFF_MALFORMED);
	/* checksum positions outside the frame, without GSO */
	h = (struct virtio_net_hdr){ .flags = 1, .csum_start = 58, .csum_offset = 1 };
	assert_int_equal(off_parse(&h, ALL, frame, 60, &m), OFF_MALFORMED);
	h.csum_offset = 0;
	assert_int_equal(off_parse(&h, ALL, frame, 60, &m), OFF_OK);
	assert_int_equal(off_parse(&h, ALL & ~F(VIRTIO_NET_F_CSUM), frame, 60, &m),
			 OFF_MALFORMED);
	/* frames that are not what the type says */
	frame[14 + 9] = 17;                                /* UDP */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_MALFORMED);
	frame[14 + 9] = 6;
	p16(frame + 14 + 6, 0x2000);                       /* a fragment */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_MALFORMED);
	p16(frame + 14 + 6, 0x4000);
	frame[14] = 0x44;                                  /* IHL 16 bytes */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_MALFORMED);
	frame[14] = 0x4f;                                  /* IHL 60: TCP not at csum_start */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_MALFORMED);
	frame[14] = 0x45;
	frame[l4 + 12] = 4 << 4;                           /* TCP header of 16 bytes */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_MALFORMED);
	frame[l4 + 12] = 8 << 4;
	assert_int_equal(off_parse(&good, ALL, frame, l4 + 20, &m), OFF_MALFORMED);  /* cut */
	assert_int_equal(off_parse(&good, ALL, frame, len, &m), OFF_OK);
	assert_int_equal(off_parse(&good, ALL, frame, OFF_GSO_MAX + 1, &m), OFF_OVERSIZE);
	/* a frame shorter than its own Ethernet header */
	h = good;
	h.hdr_len = 0;
	assert_int_equal(off_parse(&h, ALL, frame, 10, &m), OFF_MALFORMED);
#undef BAD
}

/* Random headers on random frames: whatever off_parse accepts, off_segment cuts within
 * the output buffer, every segment within the largest size off_parse said. */
static void test_random_headers(void **state)
{
	uint32_t seg_len[OFF_SEG_MAX];
	struct off_meta m;
	unsigned ok = 0;

	(void)state;
	srand(1);
	for (unsigned it = 0; it < 200000; it++) {
		size_t l4, len = tcp_frame(frame, rand() & 1, rand() & 1, (size_t)rand() % 4000,
					   (uint8_t)rand(), &l4);
		struct virtio_net_hdr h = gso_hdr(frame[12] == 0x86 || frame[16] == 0x86, l4,
						  (uint16_t)(rand() % 2000));

		switch (rand() % 8) {
		case 0: h.csum_start = (uint16_t)rand(); break;
		case 1: h.csum_offset = (uint16_t)rand(); break;
		case 2: h.hdr_len = (uint16_t)rand(); break;
		case 3: h.gso_type = (uint8_t)rand(); break;
		case 4: frame[rand() % 80] = (uint8_t)rand(); break;
		case 5: len = (size_t)rand() % (len + 1); break;
		case 6: h.flags = (uint8_t)rand(); break;
		default: break;
		}
		if (off_parse(&h, ALL, frame, len, &m) != OFF_OK || !off_needs_work(&m))
			continue;
		if (m.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
			off_csum_fill(frame, len, &m);
			continue;
		}
		ok++;
		assert_int_equal(off_segment(frame, len, &m, out, sizeof(out), seg_len), m.nseg);
		for (unsigned i = 0; i < m.nseg; i++)
			assert_true(seg_len[i] <= m.seg_max);
	}
	assert_true(ok > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_ipv4),
		cmocka_unit_test(test_segment_ipv6),
		cmocka_unit_test(test_csum_fill),
		cmocka_unit_test(test_passes),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_random_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
