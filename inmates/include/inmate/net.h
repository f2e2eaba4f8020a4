/*
 * A small network stack over virtio-net for inmates: Ethernet, ARP (requests, replies,
 * a small cache), IPv4 (no fragments, no routing: one subnet), ICMP echo (answered, and
 * replies handed to the program), UDP (sent, received, echoed on port 7). Replies are
 * built in the received buffer and sent from it: nothing is copied.
 */
#ifndef INMATE_NET_H
#define INMATE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <inmate/virtio_net.h>

/* Loads and stores of other widths over packet bytes: allowed to alias, unaligned. */
typedef uint16_t net_u16 __attribute__((may_alias, aligned(1)));
typedef uint32_t net_u32 __attribute__((may_alias, aligned(1)));

#define NET_HTONS(x)       ((uint16_t)((((x) & 0xFFu) << 8) | (((x) >> 8) & 0xFFu)))
static inline uint16_t net_htons(uint16_t v) { return __builtin_bswap16(v); }
static inline uint16_t net_ntohs(uint16_t v) { return __builtin_bswap16(v); }
static inline uint32_t net_htonl(uint32_t v) { return __builtin_bswap32(v); }
static inline uint32_t net_ntohl(uint32_t v) { return __builtin_bswap32(v); }

#define NET_ALEN           6
#define NET_ETH_HLEN       14
#define NET_ETH_P_IP       0x0800
#define NET_ETH_P_ARP      0x0806
#define NET_IP_HLEN        20
#define NET_IP_TTL         64
#define NET_IP_DF          0x4000
#define NET_IP_PROTO_ICMP  1
#define NET_IP_PROTO_UDP   17
#define NET_ICMP_HLEN      8
#define NET_ICMP_ECHO_REPLY    0
#define NET_ICMP_ECHO_REQUEST  8
#define NET_UDP_HLEN       8
#define NET_UDP_PORT_ECHO     7
#define NET_UDP_PORT_DISCARD  9
#define NET_MTU            1500
#define NET_UDP_PAYLOAD_MAX (NET_MTU - NET_IP_HLEN - NET_UDP_HLEN)    /* 1472 */
#define NET_ICMP_PAYLOAD_MAX (NET_MTU - NET_IP_HLEN - NET_ICMP_HLEN)  /* 1472 */
#define NET_ARP_ENTRIES    8
#define NET_ARP_RETRY_MS   200

/* Error codes (negated) beyond the virtio ones. */
#define NET_EHOSTUNREACH   113

struct net_eth {
	uint8_t  dst[NET_ALEN], src[NET_ALEN];
	uint16_t type;
} __attribute__((packed));

struct net_arp {
	uint16_t htype, ptype;
	uint8_t  hlen, plen;
	uint16_t op;
	uint8_t  sha[NET_ALEN];
	uint32_t spa;
	uint8_t  tha[NET_ALEN];
	uint32_t tpa;
} __attribute__((packed));

struct net_ip {
	uint8_t  vihl, tos;
	uint16_t len, id, frag;
	uint8_t  ttl, proto;
	uint16_t csum;
	uint32_t src, dst;
} __attribute__((packed));

struct net_udp {
	uint16_t sport, dport, len, csum;
} __attribute__((packed));

struct net_icmp_echo {
	uint8_t  type, code;
	uint16_t csum, id, seq;
} __attribute__((packed));

/* Addresses are kept in network byte order, as they are on the wire. */
struct net_arp_entry {
	uint32_t ip;                 /* 0: empty */
	uint8_t  mac[NET_ALEN];
};

struct net;

/* A UDP datagram for this host to a port other than 7 (echo, answered by the stack).
 * `frame_len` is the Ethernet frame's length as received. */
typedef void (*net_udp_fn)(struct net *nt, const struct net_ip *ip, const struct net_udp *udp,
			   const uint8_t *data, unsigned len, unsigned frame_len);
/* An ICMP echo reply (checksum verified); `data` is the payload after the 8-byte header. */
typedef void (*net_echo_reply_fn)(struct net *nt, const struct net_ip *ip,
				  const struct net_icmp_echo *icmp, const uint8_t *data,
				  unsigned len);

struct net_stats {
	uint64_t arp_answered, arp_requests, arp_learned;
	uint64_t echo_answered, udp_echoed, udp_delivered;
	uint64_t bad;                /* malformed, bad checksum */
	uint64_t ignored;            /* not for us, or nothing to do with it */
	uint64_t tx_errors;
};

struct net {
	struct vnet vn;
	uint8_t  mac[NET_ALEN];      /* the device's address: what we accept and answer with */
	uint8_t  src_mac[NET_ALEN];  /* the source of frames the program builds (= mac) */
	uint32_t ip, mask;           /* network byte order */
	unsigned prefix;
	struct net_arp_entry arp[NET_ARP_ENTRIES];
	unsigned arp_next;
	uint16_t ip_id;
	int icmp_echo, udp_echo;     /* answer them (both on after net_open) */
	net_udp_fn on_udp;
	net_echo_reply_fn on_echo_reply;
	void *ctx;                   /* for the callbacks */
	uint64_t now;                /* TSC when the frames being handled were taken */
	struct net_stats st;
};

/* --- checksums (lib/net_csum.c) ------------------------------------------------------ */

/* Adds `len` bytes to a 64-bit ones'-complement accumulator, eight bytes per step (and
 * 64 per loop iteration). `p` must be at an even offset of what is being summed. */
uint64_t net_csum_add(uint64_t sum, const void *p, size_t len);
/* Folds the accumulator to 16 bits (not inverted), in memory byte order. */
uint16_t net_csum_fold(uint64_t sum);
/* The Internet checksum of a buffer, ready to store: 0 when verifying a correct one. */
static inline uint16_t net_csum(const void *p, size_t len)
{
	return (uint16_t)~net_csum_fold(net_csum_add(0, p, len));
}
/* The sum of the UDP pseudo-header (addresses in network order, length in host order). */
uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);

/* --- addresses (lib/net.c) ------------------------------------------------------------ */

/* "10.0.0.1" (prefix NULL) or "10.0.0.1/24" (prefix given, 1..32; without "/N": 24).
 * Returns 0 or -VIRTIO_EINVAL. */
int net_parse_ip(const char *s, uint32_t *ip, unsigned *prefix);
/* "02:62:68:00:00:01". Returns 0 or -VIRTIO_EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[NET_ALEN]);
/* Into buf (16 / 18 bytes); return buf, for printf. */
char *net_fmt_ip(uint32_t ip, char *buf);
char *net_fmt_mac(const uint8_t *mac, char *buf);
const char *net_strerror(int err);

static inline int net_mac_eq(const uint8_t *a, const uint8_t *b)
{
	return *(const net_u32 *)a == *(const net_u32 *)b &&
	       *(const net_u16 *)(a + 4) == *(const net_u16 *)(b + 4);
}

static inline void net_mac_copy(uint8_t *dst, const uint8_t *src)
{
	*(net_u32 *)dst = *(const net_u32 *)src;
	*(net_u16 *)(dst + 4) = *(const net_u16 *)(src + 4);
}

/* --- the interface (lib/net.c) --------------------------------------------------------- */

/* Opens the virtio-net device and sets the address (network order) and prefix. */
int net_open(struct net *nt, const struct virtio_opts *opts, uint32_t ip, unsigned prefix);
/* Handles up to `budget` received frames (answers, callbacks), sends what they
 * produced, keeps the receive ring full. Returns how many frames it handled. */
unsigned net_poll(struct net *nt, unsigned budget);
/* Waits up to timeout_us for a received frame (call after net_poll returned 0). */
int net_wait(struct net *nt, uint64_t timeout_us);

/* The cached address of `ip`, 0; or -NET_EHOSTUNREACH. */
int net_arp_lookup(struct net *nt, uint32_t ip, uint8_t mac[NET_ALEN]);
/* Sends an ARP request for `ip`. */
int net_arp_request(struct net *nt, uint32_t ip);
/* Looks `ip` up, asking every NET_ARP_RETRY_MS until it is answered or timeout_ms
 * passed (-VIRTIO_ETIMEDOUT); handles other frames meanwhile. -NET_EHOSTUNREACH when
 * `ip` is not on our subnet. */
int net_arp_resolve(struct net *nt, uint32_t ip, uint8_t mac[NET_ALEN], uint64_t timeout_ms);

/* --- building and sending (lib/net_ip.c) ------------------------------------------------ */

/* Writes Ethernet and IPv4 headers (src_mac, our address, TTL 64, DF, checksum) for a
 * payload of `len` bytes of protocol `proto` into `frame`; returns the payload start. */
uint8_t *net_ip_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
		      uint8_t proto, unsigned len);
/* Ethernet, IPv4 and UDP headers for `len` payload bytes, UDP checksum 0 (none, as IPv4
 * allows: for a program that changes the payload after building); returns the payload. */
uint8_t *net_udp_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
		       uint16_t sport, uint16_t dport, unsigned len);
/* Computes the UDP checksum of a frame built by net_udp_build once its payload is in. */
void net_udp_finish(uint8_t *frame);
/* Sends a UDP datagram (copied, checksummed) to `dst`, which must be in the ARP cache,
 * and notifies the device. */
int net_udp_send(struct net *nt, uint32_t dst, uint16_t sport, uint16_t dport,
		 const void *data, unsigned len);
/* An ICMP echo request with `len` payload bytes (copied) into `frame`, checksummed.
 * Returns the frame length (send it with vnet_send + vnet_kick). */
unsigned net_echo_build(struct net *nt, uint8_t *frame, const uint8_t *dst_mac, uint32_t dst,
			uint16_t id, uint16_t seq, const void *data, unsigned len);

/* Handles one received frame; returns 1 when the buffer was used (sent back as a
 * reply), 0 when the caller should give it back. Called by net_poll. */
int net_input(struct net *nt, uint8_t *frame, unsigned len);
int net_arp_input(struct net *nt, uint8_t *frame, unsigned len);
int net_ip_input(struct net *nt, uint8_t *frame, unsigned len);

/* --- the netperf stream (programs netperf and netecho) --------------------------------- */

/* The UDP payload of each frame to port 9: little-endian, both ends are inmates. */
#define NET_PERF_MAGIC  0x504E4842u  /* "BHNP" */
#define NET_PERF_DATA   0
#define NET_PERF_END    1
struct net_perf_msg {
	uint32_t magic;
	uint16_t type;
	uint16_t reserved;
	uint32_t stream;             /* chosen by the sender for each run */
	uint64_t seq;                /* DATA: from 0; END: the number of frames sent */
} __attribute__((packed));

#endif
