/*
 * The learning L2 switch of the net server (net_switch.h): MAC table with aging, frame
 * checks, unicast or flood destinations, token buckets and counters. Pure logic: the
 * caller brings the frames' first bytes and the time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ioserver/net_switch.h"

void sw_init(struct sw_switch *sw, const char *network, uint64_t age_ns)
{
	memset(sw, 0, sizeof(*sw));
	snprintf(sw->network, sizeof(sw->network), "%s", network);
	sw->age_ns = age_ns;
}

void sw_port_init(struct sw_port *p, const uint8_t mac[SW_MAC_LEN], bool uplink, void *owner)
{
	memset(p, 0, sizeof(*p));
	if (mac)
		memcpy(p->mac, mac, SW_MAC_LEN);
	p->uplink = uplink;
	p->owner = owner;
}

void sw_port_set_rate(struct sw_port *p, uint64_t bytes_per_sec, uint64_t burst, uint64_t now)
{
	p->bucket = (struct sw_bucket){ .rate = bytes_per_sec, .burst = burst, .tokens = burst,
					.last_ns = now };
}

int sw_port_add(struct sw_switch *sw, struct sw_port *p)
{
	if (sw->nports == SW_MAX_PORTS)
		return -ENOSPC;
	sw->ports[sw->nports++] = p;
	p->sw = sw;
	return 0;
}

void sw_port_remove(struct sw_port *p)
{
	struct sw_switch *sw = p->sw;

	if (!sw)
		return;
	for (unsigned i = 0; i < sw->nports; i++)
		if (sw->ports[i] == p) {
			sw->ports[i] = sw->ports[--sw->nports];
			break;
		}
	for (unsigned b = 0; b < SW_FDB_BUCKETS; b++)
		for (unsigned w = 0; w < SW_FDB_WAYS; w++)
			if (sw->fdb[b][w].port == p)
				sw->fdb[b][w].port = NULL;
	p->sw = NULL;
}

/* ------------------------------------------------------------------ MAC table */

static unsigned sw_fdb_hash(const uint8_t a[SW_MAC_LEN])
{
	uint32_t h = 2166136261u;         /* FNV-1a */

	for (unsigned i = 0; i < SW_MAC_LEN; i++)
		h = (h ^ a[i]) * 16777619u;
	return (h ^ (h >> 16)) % SW_FDB_BUCKETS;
}

static bool sw_fdb_live(const struct sw_switch *sw, const struct sw_fdb_entry *e, uint64_t now)
{
	return e->port && now - e->seen_ns < sw->age_ns;
}

struct sw_port *sw_fdb_lookup(struct sw_switch *sw, const uint8_t addr[SW_MAC_LEN],
			      uint64_t now)
{
	struct sw_fdb_entry *b = sw->fdb[sw_fdb_hash(addr)];

	for (unsigned w = 0; w < SW_FDB_WAYS; w++)
		if (sw_fdb_live(sw, &b[w], now) && !memcmp(b[w].mac, addr, SW_MAC_LEN))
			return b[w].port;
	return NULL;
}

/* The entry for addr is refreshed (it may move to another port); a new one takes a free
 * or aged slot of its bucket, else the least recently seen. */
void sw_fdb_learn(struct sw_switch *sw, const uint8_t addr[SW_MAC_LEN], struct sw_port *p,
		  uint64_t now)
{
	struct sw_fdb_entry *b = sw->fdb[sw_fdb_hash(addr)], *slot = NULL;

	if (sw_mac_is_multicast(addr))
		return;
	for (unsigned w = 0; w < SW_FDB_WAYS; w++)
		if (b[w].port && !memcmp(b[w].mac, addr, SW_MAC_LEN)) {
			slot = &b[w];
			break;
		}
	for (unsigned w = 0; !slot && w < SW_FDB_WAYS; w++)
		if (!sw_fdb_live(sw, &b[w], now))
			slot = &b[w];
	if (!slot) {
		slot = &b[0];
		for (unsigned w = 1; w < SW_FDB_WAYS; w++)
			if (b[w].seen_ns < slot->seen_ns)
				slot = &b[w];
	}
	memcpy(slot->mac, addr, SW_MAC_LEN);
	slot->port = p;
	slot->seen_ns = now;
}

/* ------------------------------------------------------------------ frames */

enum sw_verdict sw_check_length(struct sw_port *p, const uint8_t *hdr, size_t len)
{
	size_t max = SW_ETH_MAX;

	if (len < SW_ETH_HLEN) {
		sw_count_drop(p, SW_DROP_MALFORMED);
		return SW_MALFORMED;
	}
	if (((unsigned)hdr[12] << 8 | hdr[13]) == SW_ETHERTYPE_VLAN)
		max = SW_ETH_MAX_VLAN;
	if (len > max) {
		sw_count_drop(p, SW_DROP_OVERSIZE);
		return SW_OVERSIZE;
	}
	return SW_PASS;
}

enum sw_verdict sw_ingress(struct sw_port *p, const uint8_t *hdr, uint64_t frames,
			   uint64_t bytes, uint64_t now)
{
	const uint8_t *src = hdr + SW_MAC_LEN;

	if (!p->uplink && memcmp(src, p->mac, SW_MAC_LEN)) {
		sw_count_drop(p, SW_DROP_SPOOF);
		return SW_SPOOF;
	}
	p->c.tx_frames += frames;
	p->c.tx_bytes += bytes;
	p->gen++;
	if (p->sw)
		sw_fdb_learn(p->sw, src, p, now);
	return SW_PASS;
}

unsigned sw_destinations(struct sw_switch *sw, const struct sw_port *src,
			 const uint8_t dst[SW_MAC_LEN], uint64_t now, struct sw_port **out,
			 bool *flood)
{
	struct sw_port *to = sw_mac_is_multicast(dst) ? NULL : sw_fdb_lookup(sw, dst, now);
	unsigned n = 0;

	*flood = !to;
	if (to) {
		if (to == src)
			return 0;             /* never back where it came from */
		out[0] = to;
		return 1;
	}
	for (unsigned i = 0; i < sw->nports; i++)
		if (sw->ports[i] != src)
			out[n++] = sw->ports[i];
	return n;
}

/* ------------------------------------------------------------------ rate */

/* Whole bytes earned since last_ns; last_ns moves by exactly their time, so the
 * fraction of a byte is kept for the next call. A full bucket forgets it. */
void sw_bucket_refill(struct sw_bucket *b, uint64_t now)
{
	unsigned __int128 earned;

	if (!b->rate || now <= b->last_ns)
		return;
	earned = (unsigned __int128)(now - b->last_ns) * b->rate / SW_NS_PER_S;
	if (b->tokens + earned >= b->burst) {
		b->tokens = b->burst;
		b->last_ns = now;
		return;
	}
	b->tokens += (uint64_t)earned;
	b->last_ns += (uint64_t)(earned * SW_NS_PER_S / b->rate);
}

uint64_t sw_rate_admit(struct sw_port *p, uint64_t len, uint64_t now)
{
	struct sw_bucket *b = &p->bucket;
	uint64_t need, deficit, wait;
	unsigned __int128 t;

	if (p->uplink || !b->rate)
		return 0;
	sw_bucket_refill(b, now);
	need = len < b->burst ? len : b->burst;
	if (b->tokens >= need) {
		b->tokens = len < b->tokens ? b->tokens - len : 0;
		b->waiting = false;
		return 0;
	}
	if (!b->waiting) {
		b->waiting = true;
		p->c.rate_held++;
		p->gen++;
	}
	/* The time the missing bytes take, less what has accrued towards them already. */
	deficit = need - b->tokens;
	t = ((unsigned __int128)deficit * SW_NS_PER_S + b->rate - 1) / b->rate;
	wait = t > (unsigned __int128)UINT64_MAX ? UINT64_MAX : (uint64_t)t;
	if (now > b->last_ns)
		wait = wait > now - b->last_ns ? wait - (now - b->last_ns) : 0;
	return wait ? wait : 1;
}

void sw_rate_forget(struct sw_port *p)
{
	p->bucket.waiting = false;
}

/* ------------------------------------------------------------------ counters */

void sw_count_rx(struct sw_port *p, uint64_t frames, uint64_t bytes)
{
	p->c.rx_frames += frames;
	p->c.rx_bytes += bytes;
	p->gen++;
}

void sw_count_drop(struct sw_port *p, enum sw_drop why)
{
	switch (why) {
	case SW_DROP_SPOOF: p->c.drop_spoof++; break;
	case SW_DROP_RATE:
		p->c.drop_rate++;
		sw_rate_forget(p);
		break;
	case SW_DROP_NO_BUFFER: p->c.drop_no_buffer++; break;
	case SW_DROP_OVERSIZE: p->c.drop_oversize++; break;
	case SW_DROP_MALFORMED: p->c.drop_malformed++; break;
	}
	p->gen++;
}
