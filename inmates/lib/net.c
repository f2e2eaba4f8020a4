/*
 * The network stack's interface and link layer: opening the device, the receive loop
 * (net_poll) and its dispatch by EtherType, ARP (answering requests in place, asking,
 * a small cache) and address parsing and printing.
 */
#include <inmate/net.h>
#include <inmate/printf.h>
#include <inmate/string.h>
#include <inmate/tsc.h>

#define NET_ARP_HTYPE_ETH  1
#define NET_ARP_REQUEST    1
#define NET_ARP_REPLY      2
#define NET_POLL_REFILL    16          /* re-post receive buffers this often in a burst */

static const uint8_t net_bcast[NET_ALEN] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

const char *net_strerror(int err)
{
	if (err == -NET_EHOSTUNREACH || err == NET_EHOSTUNREACH)
		return "host unreachable (not on our subnet, or not in the ARP cache)";
	return virtio_strerror(err);
}

/* One decimal number 0..max; returns the character after it, or NULL. */
static const char *net_parse_num(const char *s, unsigned max, unsigned *v)
{
	unsigned n = 0, digits = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		n = n * 10 + (unsigned)(*s - '0');
		if (n > max || digits > 3)
			return NULL;
	}
	*v = n;
	return digits ? s : NULL;
}

int net_parse_ip(const char *s, uint32_t *ip, unsigned *prefix)
{
	uint8_t b[4];
	unsigned v;

	for (int i = 0; i < 4; i++) {
		s = net_parse_num(s, 255, &v);
		if (!s || (i < 3 && *s++ != '.'))
			return -VIRTIO_EINVAL;
		b[i] = (uint8_t)v;
	}
	if (prefix) {
		*prefix = 24;
		if (*s == '/') {
			s = net_parse_num(s + 1, 32, prefix);
			if (!s || !*prefix)
				return -VIRTIO_EINVAL;
		}
	}
	if (*s)
		return -VIRTIO_EINVAL;
	memcpy(ip, b, 4);
	return 0;
}

static int net_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int net_parse_mac(const char *s, uint8_t mac[NET_ALEN])
{
	for (int i = 0; i < NET_ALEN; i++) {
		int hi = net_hex(s[0]), lo = hi < 0 ? -1 : net_hex(s[1]);

		if (lo < 0 || (i < NET_ALEN - 1 ? s[2] != ':' : s[2] != 0))
			return -VIRTIO_EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += 3;
	}
	return 0;
}

char *net_fmt_ip(uint32_t ip, char *buf)
{
	const uint8_t *b = (const uint8_t *)&ip;

	snprintf(buf, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	return buf;
}

char *net_fmt_mac(const uint8_t *m, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

int net_open(struct net *nt, const struct virtio_opts *opts, uint32_t ip, unsigned prefix)
{
	int err;

	memset(nt, 0, sizeof(*nt));
	err = vnet_open(&nt->vn, opts);
	if (err)
		return err;
	net_mac_copy(nt->mac, nt->vn.mac);
	net_mac_copy(nt->src_mac, nt->vn.mac);
	nt->ip = ip;
	nt->prefix = prefix;
	nt->mask = prefix ? net_htonl(~0u << (32 - prefix)) : 0;
	nt->icmp_echo = nt->udp_echo = 1;
	return 0;
}

unsigned net_poll(struct net *nt, unsigned budget)
{
	uint64_t sent = nt->vn.tx_frames;
	unsigned n = 0, len;
	uint8_t *f;

	while (n < budget && (f = vnet_recv(&nt->vn, &len))) {
		if (!n)
			nt->now = tsc_now();      /* one TSC read per batch: it costs an exit */
		n++;
		if (!net_input(nt, f, len))
			vnet_put(&nt->vn, f);
		if (n % NET_POLL_REFILL == 0)
			vnet_reclaim(&nt->vn);
	}
	if (nt->vn.tx_frames != sent)
		vnet_kick(&nt->vn);
	vnet_reclaim(&nt->vn);
	return n;
}

int net_wait(struct net *nt, uint64_t timeout_us)
{
	vnet_reclaim(&nt->vn);
	return vnet_wait_rx(&nt->vn, timeout_us);
}

int net_input(struct net *nt, uint8_t *frame, unsigned len)
{
	const struct net_eth *e = (const struct net_eth *)frame;

	if (!net_mac_eq(e->dst, nt->mac) && !net_mac_eq(e->dst, net_bcast)) {
		nt->st.ignored++;
		return 0;
	}
	switch (e->type) {
	case NET_HTONS(NET_ETH_P_IP):
		return net_ip_input(nt, frame, len);
	case NET_HTONS(NET_ETH_P_ARP):
		return net_arp_input(nt, frame, len);
	default:
		nt->st.ignored++;
		return 0;
	}
}

/* --- ARP ------------------------------------------------------------------------------ */

int net_arp_lookup(struct net *nt, uint32_t ip, uint8_t mac[NET_ALEN])
{
	for (unsigned i = 0; i < NET_ARP_ENTRIES; i++) {
		if (nt->arp[i].ip == ip && ip) {
			net_mac_copy(mac, nt->arp[i].mac);
			return 0;
		}
	}
	return -NET_EHOSTUNREACH;
}

/* Updates the entry of `ip`, or takes the next slot round-robin. */
static void net_arp_learn(struct net *nt, uint32_t ip, const uint8_t *mac)
{
	struct net_arp_entry *slot = NULL;

	for (unsigned i = 0; i < NET_ARP_ENTRIES && !slot; i++)
		if (nt->arp[i].ip == ip)
			slot = &nt->arp[i];
	if (!slot) {
		slot = &nt->arp[nt->arp_next++ % NET_ARP_ENTRIES];
		nt->st.arp_learned++;
	}
	slot->ip = ip;
	net_mac_copy(slot->mac, mac);
}

int net_arp_input(struct net *nt, uint8_t *frame, unsigned len)
{
	struct net_eth *e = (struct net_eth *)frame;
	struct net_arp *a = (struct net_arp *)(frame + NET_ETH_HLEN);
	int err;

	if (len < NET_ETH_HLEN + sizeof(*a) || a->htype != NET_HTONS(NET_ARP_HTYPE_ETH) ||
	    a->ptype != NET_HTONS(NET_ETH_P_IP) || a->hlen != NET_ALEN || a->plen != 4) {
		nt->st.bad++;
		return 0;
	}
	/* RFC 826: only what is addressed to us is learned (and a sender of 0 never is). */
	if (a->tpa != nt->ip || !a->spa) {
		nt->st.ignored++;
		return 0;
	}
	net_arp_learn(nt, a->spa, a->sha);
	if (a->op != NET_HTONS(NET_ARP_REQUEST))
		return 0;
	/* The reply, in the request's own buffer. */
	net_mac_copy(e->dst, a->sha);
	net_mac_copy(e->src, nt->mac);
	a->op = NET_HTONS(NET_ARP_REPLY);
	net_mac_copy(a->tha, a->sha);
	a->tpa = a->spa;
	net_mac_copy(a->sha, nt->mac);
	a->spa = nt->ip;
	err = vnet_send(&nt->vn, frame, NET_ETH_HLEN + sizeof(*a));
	if (err)
		nt->st.tx_errors++;
	else
		nt->st.arp_answered++;
	return 1;
}

int net_arp_request(struct net *nt, uint32_t ip)
{
	struct net_eth *e;
	struct net_arp *a;
	uint8_t *f = vnet_get(&nt->vn);
	int err;

	if (!f && (err = vnet_get_wait(&nt->vn, &f, VNET_TX_TIMEOUT_US)))
		return err;
	e = (struct net_eth *)f;
	a = (struct net_arp *)(f + NET_ETH_HLEN);
	net_mac_copy(e->dst, net_bcast);
	net_mac_copy(e->src, nt->mac);
	e->type = NET_HTONS(NET_ETH_P_ARP);
	*a = (struct net_arp){
		.htype = NET_HTONS(NET_ARP_HTYPE_ETH), .ptype = NET_HTONS(NET_ETH_P_IP),
		.hlen = NET_ALEN, .plen = 4, .op = NET_HTONS(NET_ARP_REQUEST),
		.spa = nt->ip, .tpa = ip,
	};
	net_mac_copy(a->sha, nt->mac);
	err = vnet_send(&nt->vn, f, NET_ETH_HLEN + sizeof(*a));
	if (err)
		return err;
	vnet_kick(&nt->vn);
	nt->st.arp_requests++;
	return 0;
}

int net_arp_resolve(struct net *nt, uint32_t ip, uint8_t mac[NET_ALEN], uint64_t timeout_ms)
{
	uint64_t now = tsc_now(), deadline = now + tsc_from_us(timeout_ms * 1000);
	uint64_t retry = tsc_from_us(NET_ARP_RETRY_MS * 1000), next = now;
	int err;

	if ((ip & nt->mask) != (nt->ip & nt->mask))
		return -NET_EHOSTUNREACH;
	for (;;) {
		if (!net_arp_lookup(nt, ip, mac))
			return 0;
		if (now >= deadline)
			return -VIRTIO_ETIMEDOUT;
		if (now >= next) {
			err = net_arp_request(nt, ip);
			if (err)
				return err;
			next = now + retry;
		}
		if (!net_poll(nt, 64)) {
			uint64_t until = next < deadline ? next : deadline;

			err = net_wait(nt, until > now ? tsc_to_us(until - now) + 1 : 1);
			if (err && err != -VIRTIO_ETIMEDOUT)
				return err;
		}
		now = tsc_now();
	}
}
