/*
 * The net server's checksum and segmentation offload, as pure logic: a sender's
 * virtio_net_hdr checked against the frame's own headers (off_parse), whether a
 * receiver takes the frame as it is (off_passes), and the work done in software for
 * one that does not: the partial checksum completed (off_csum_fill), a TCP frame cut
 * into MSS-sized segments (off_segment). No I/O: the caller brings the bytes.
 */
#ifndef BH_IOSERVER_NET_OFFLOAD_H
#define BH_IOSERVER_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/virtio.h"
#include "ioserver/net_switch.h"

#define OFF_HEAD_MAX   160            /* frame bytes parsed: Ethernet + tag + IP + TCP (138) */
#define OFF_GSO_MAX    (SW_ETH_HLEN + 4 + 40 + 65535)  /* tagged IPv6's largest payload */
#define OFF_SEG_MAX    128            /* segments of one GSO frame (64 KiB at MSS 512) */
#define OFF_OUT_MAX    (OFF_GSO_MAX + OFF_SEG_MAX * OFF_HEAD_MAX)   /* segmented output */

/* The offload features a port may negotiate; what a sender asks is checked against its
 * own, what a receiver gets against its own. */
#define OFF_FEATURES ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) | \
		      (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) | \
		      (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) | \
		      (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN))

#define OFF_TCP_CSUM_OFFSET 16        /* the checksum's place in a TCP header */

/* A frame's offload metadata, checked: nothing here points outside the frame. */
struct off_meta {
	uint8_t flags;                    /* 0 or VIRTIO_NET_HDR_F_NEEDS_CSUM */
	uint8_t gso_type;                 /* as the sender gave it, ECN bit included */
	uint16_t gso_size;                /* GSO: the MSS */
	uint16_t csum_start, csum_offset; /* NEEDS_CSUM */
	uint16_t hdr_len;                 /* GSO: Ethernet + IP + TCP headers, parsed */
	uint16_t l3;                      /* GSO: where the IP header starts */
	unsigned nseg;                    /* frames on a wire: 1 unless GSO */
	size_t seg_max;                   /* the largest of them */
	uint64_t wire_bytes;              /* their bytes (Ethernet, no FCS) */
};

enum off_verdict {
	OFF_OK,
	OFF_MALFORMED,                    /* an offload header that cannot be right */
	OFF_OVERSIZE,                     /* too large a GSO frame, or too many segments */
};

/* A plain frame of len bytes: nothing to do for anyone. */
void off_meta_plain(struct off_meta *m, size_t len);

/* Checks the header h a sender with the negotiated features gave a frame of len bytes
 * whose first min(len, OFF_HEAD_MAX) bytes are head, and fills m. A frame asking for
 * what the sender did not negotiate, a checksum position outside the frame, a GSO frame
 * that is not Ethernet + IPv4/IPv6 + TCP with its checksum asked at the TCP header,
 * gso_size 0, hdr_len past the frame, an unknown gso_type or flag: OFF_MALFORMED. The
 * caller checks m->seg_max against the largest frame a wire takes. */
enum off_verdict off_parse(const struct virtio_net_hdr *h, uint64_t features,
			   const uint8_t *head, size_t len, struct off_meta *m);

/* Whether a receiver with these negotiated features takes the frame as it is. */
bool off_passes(const struct off_meta *m, uint64_t features);

/* The header such a receiver gets (num_buffers left 0). */
void off_rx_hdr(const struct off_meta *m, struct virtio_net_hdr *h);

/* Whether the frame needs work in software for a receiver without offloads. */
static inline bool off_needs_work(const struct off_meta *m)
{
	return m->flags || m->gso_type != VIRTIO_NET_HDR_GSO_NONE;
}

/* The Internet checksum's running sum of n bytes (big-endian 16-bit words, from an
 * even position), added to acc; off_csum_fold makes the 16 bits stored. */
uint64_t off_sum(const uint8_t *p, size_t n, uint64_t acc);
uint16_t off_csum_fold(uint64_t acc);

/* A NEEDS_CSUM frame (not GSO) of len bytes, in place: the sum from csum_start to the
 * end stored at csum_start + csum_offset. */
void off_csum_fill(uint8_t *frame, size_t len, const struct off_meta *m);

/* A GSO frame (frame, len bytes, checked by off_parse) cut into m->nseg segments, one
 * after the other in out (room bytes), their lengths in seg_len: the headers copied in
 * front of each MSS of payload, IPv4 total length, id and header checksum or IPv6
 * payload length, TCP sequence number, flags (CWR on the first only, FIN and PSH on the
 * last only) and checksum set. Returns the segments, or 0 when out is too small. */
unsigned off_segment(const uint8_t *frame, size_t len, const struct off_meta *m,
		     uint8_t *out, size_t room, uint32_t *seg_len);

#endif
