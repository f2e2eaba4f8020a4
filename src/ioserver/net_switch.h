/*
 * The net server's learning L2 switch, as pure logic: one switch per network, its ports,
 * the MAC table with aging, frame checks (length, anti-spoofing), destinations (unicast
 * or flood), a token bucket per rate-limited port, and per-port counters. No I/O and no
 * clock of its own: every call that needs the time is given it (tests inject theirs).
 */
#ifndef BH_IOSERVER_NET_SWITCH_H
#define BH_IOSERVER_NET_SWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_MAC_LEN        6
#define SW_ETH_HLEN       14          /* destination, source, ethertype */
#define SW_ETH_MAX        1514        /* largest frame without FCS */
#define SW_ETH_MAX_VLAN   1518        /* with one 802.1Q tag */
#define SW_ETHERTYPE_VLAN 0x8100
#define SW_NAME_MAX       64          /* network names, as IOS_NAME_MAX */
#define SW_MAX_PORTS      128         /* ports of one switch */
#define SW_FDB_BUCKETS    256         /* MAC table: buckets of SW_FDB_WAYS entries */
#define SW_FDB_WAYS       4
#define SW_AGE_NS_DEFAULT (300ull * 1000000000ull)
#define SW_NS_PER_S       1000000000ull

/* What a port has seen; rx is towards the guest (delivered), tx from it (accepted).
 * rate_held: frames its token bucket made wait, so a sender slower than its limit can
 * be told from a limit that held (neither drops anything). */
struct sw_counters {
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t rate_held;
	uint64_t drop_spoof, drop_rate, drop_no_buffer, drop_oversize, drop_malformed;
};

enum sw_drop {
	SW_DROP_SPOOF,
	SW_DROP_RATE,
	SW_DROP_NO_BUFFER,
	SW_DROP_OVERSIZE,
	SW_DROP_MALFORMED,
};

/* A token bucket on bytes: tokens grow by rate per second up to burst. */
struct sw_bucket {
	uint64_t rate;                    /* bytes per second; 0: no limit */
	uint64_t burst;                   /* bytes */
	uint64_t tokens;
	uint64_t last_ns;                 /* when the last whole byte was credited */
	bool waiting;                     /* a frame was refused and has not gone yet: it
					   * counts in rate_held once, however often it asks */
};

struct sw_switch;

struct sw_port {
	struct sw_switch *sw;             /* NULL until added */
	uint8_t mac[SW_MAC_LEN];          /* guests: the only source address allowed */
	bool uplink;                      /* no anti-spoofing, no rate limit */
	struct sw_bucket bucket;
	struct sw_counters c;
	uint64_t gen;                     /* bumped on every counter change */
	void *owner;                      /* the caller's port */
};

struct sw_fdb_entry {
	uint8_t mac[SW_MAC_LEN];
	struct sw_port *port;             /* NULL: free */
	uint64_t seen_ns;
};

struct sw_switch {
	char network[SW_NAME_MAX + 1];
	uint64_t age_ns;
	unsigned nports;
	struct sw_port *ports[SW_MAX_PORTS];
	struct sw_fdb_entry fdb[SW_FDB_BUCKETS][SW_FDB_WAYS];
};

/* Checks of a frame at ingress, in the order they are made. */
enum sw_verdict {
	SW_PASS,
	SW_MALFORMED,                     /* shorter than an Ethernet header */
	SW_OVERSIZE,                      /* longer than 1514 bytes (1518 tagged); a GSO
					   * frame: its largest segment */
	SW_SPOOF,                         /* a guest's frame with another source address */
};

void sw_init(struct sw_switch *sw, const char *network, uint64_t age_ns);

/* A port with its MAC (guests) and kind; no rate limit until sw_port_set_rate. */
void sw_port_init(struct sw_port *p, const uint8_t mac[SW_MAC_LEN], bool uplink, void *owner);
void sw_port_set_rate(struct sw_port *p, uint64_t bytes_per_sec, uint64_t burst, uint64_t now);

/* Joins / leaves a switch. Leaving forgets every address learned on the port.
 * sw_port_add: 0, or -ENOSPC when the switch has SW_MAX_PORTS ports. */
int sw_port_add(struct sw_switch *sw, struct sw_port *p);
void sw_port_remove(struct sw_port *p);

/* Length checks (no credit is charged for frames that fail them): a verdict, counted
 * on p when it is a drop. hdr holds the frame's first min(len, SW_ETH_HLEN) bytes. */
enum sw_verdict sw_check_length(struct sw_port *p, const uint8_t *hdr, size_t len);

/* The source check and learning, once the frame may go: drop_spoof, or tx counted (a
 * GSO frame as the frames and bytes it makes on a wire) and the source address learned
 * on p. */
enum sw_verdict sw_ingress(struct sw_port *p, const uint8_t *hdr, uint64_t frames,
			   uint64_t bytes, uint64_t now);

/* Where a frame from src to dst goes: the learned port (none when that is src itself),
 * or every other port of the switch (flood: broadcast, multicast, unknown unicast).
 * Returns the number of ports put in out (room for SW_MAX_PORTS). */
unsigned sw_destinations(struct sw_switch *sw, const struct sw_port *src,
			 const uint8_t dst[SW_MAC_LEN], uint64_t now, struct sw_port **out,
			 bool *flood);

/* The MAC table: the port addr was learned on (not aged out), or NULL. */
struct sw_port *sw_fdb_lookup(struct sw_switch *sw, const uint8_t addr[SW_MAC_LEN],
			      uint64_t now);
void sw_fdb_learn(struct sw_switch *sw, const uint8_t addr[SW_MAC_LEN], struct sw_port *p,
		  uint64_t now);

/* Rate limiting: takes len bytes of credit and returns 0, or returns the nanoseconds
 * until there will be enough (nothing taken). A frame larger than the burst goes when
 * the bucket is full, and empties it. Always 0 on a port without a limit. A refused
 * frame is expected back until it is admitted, or given up with SW_DROP_RATE: it counts
 * rate_held once, when first refused. */
uint64_t sw_rate_admit(struct sw_port *p, uint64_t len, uint64_t now);
/* The refused frame is given up without counting drop_rate (its ring broke): the next
 * one refused is another frame. */
void sw_rate_forget(struct sw_port *p);
void sw_bucket_refill(struct sw_bucket *b, uint64_t now);

/* Counting on a port. */
void sw_count_rx(struct sw_port *p, uint64_t frames, uint64_t bytes);
void sw_count_drop(struct sw_port *p, enum sw_drop why);

static inline bool sw_mac_is_multicast(const uint8_t mac[SW_MAC_LEN])
{
	return mac[0] & 1;                /* broadcast included */
}

#endif
