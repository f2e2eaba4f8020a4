/* Unit tests for src/ioserver/net_switch.c: the net server's learning switch. MAC
 * learning, moves and aging on an injected clock, flooding rules, network separation,
 * anti-spoofing (not on the uplink), length checks, the token bucket (delay, refill,
 * burst, frames above the burst, frames it held) and the counters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ioserver/net_switch.h"

#define MS 1000000ull
#define S  SW_NS_PER_S

static const uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 0xa };
static const uint8_t mac_b[6] = { 2, 0, 0, 0, 0, 0xb };
static const uint8_t mac_c[6] = { 2, 0, 0, 0, 0, 0xc };
static const uint8_t mac_x[6] = { 2, 0, 0, 0, 0, 0x99 };     /* behind the uplink */
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };

/* One network: guests a, b, c and an uplink u. */
struct lan {
	struct sw_switch sw;
	struct sw_port a, b, c, u;
};

static struct lan *lan_new(void)
{
	struct lan *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	sw_init(&l->sw, "lan", SW_AGE_NS_DEFAULT);
	sw_port_init(&l->a, mac_a, false, &l->a);
	sw_port_init(&l->b, mac_b, false, &l->b);
	sw_port_init(&l->c, mac_c, false, &l->c);
	sw_port_init(&l->u, NULL, true, &l->u);
	assert_int_equal(sw_port_add(&l->sw, &l->a), 0);
	assert_int_equal(sw_port_add(&l->sw, &l->b), 0);
	assert_int_equal(sw_port_add(&l->sw, &l->c), 0);
	assert_int_equal(sw_port_add(&l->sw, &l->u), 0);
	return l;
}

/* An Ethernet header dst, src, ethertype. */
static void eth(uint8_t h[SW_ETH_HLEN], const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(h, dst, 6);
	memcpy(h + 6, src, 6);
	h[12] = (uint8_t)(type >> 8);
	h[13] = (uint8_t)type;
}

/* The frame from p goes through the checks: its verdict. */
static enum sw_verdict send_frame(struct sw_port *p, const uint8_t *dst, const uint8_t *src,
				  size_t len, uint64_t now)
{
	uint8_t h[SW_ETH_HLEN];
	enum sw_verdict v;

	eth(h, dst, src, 0x88b5);
	v = sw_check_length(p, h, len);
	return v != SW_PASS ? v : sw_ingress(p, h, 1, len, now);
}

static bool has(struct sw_port **out, unsigned n, const struct sw_port *p)
{
	for (unsigned i = 0; i < n; i++)
		if (out[i] == p)
			return true;
	return false;
}

static void test_learning_and_unicast(void **state)
{
	struct lan *l = lan_new();
	struct sw_port *out[SW_MAX_PORTS];
	bool flood;
	unsigned n;

	/* b unknown: flooded to everybody but a */
	n = sw_destinations(&l->sw, &l->a, mac_b, 0, out, &flood);
	assert_true(flood);
	assert_int_equal(n, 3);
	assert_false(has(out, n, &l->a));
	assert_true(has(out, n, &l->b) && has(out, n, &l->c) && has(out, n, &l->u));
	/* b sends: learned */
	assert_int_equal(send_frame(&l->b, mac_a, mac_b, 60, 10), SW_PASS);
	assert_ptr_equal(sw_fdb_lookup(&l->sw, mac_b, 20), &l->b);
	n = sw_destinations(&l->sw, &l->a, mac_b, 20, out, &flood);
	assert_false(flood);
	assert_int_equal(n, 1);
	assert_ptr_equal(out[0], &l->b);
	/* to itself: nowhere */
	assert_int_equal(sw_destinations(&l->sw, &l->b, mac_b, 20, out, &flood), 0);
	/* a host behind the uplink is learned there, and moves when seen elsewhere */
	assert_int_equal(send_frame(&l->u, bcast, mac_x, 60, 30), SW_PASS);
	assert_ptr_equal(sw_fdb_lookup(&l->sw, mac_x, 30), &l->u);
	sw_fdb_learn(&l->sw, mac_x, &l->c, 40);
	assert_ptr_equal(sw_fdb_lookup(&l->sw, mac_x, 40), &l->c);
	/* a port leaving forgets its addresses */
	sw_port_remove(&l->b);
	assert_null(sw_fdb_lookup(&l->sw, mac_b, 50));
	n = sw_destinations(&l->sw, &l->a, mac_b, 50, out, &flood);
	assert_true(flood);
	assert_int_equal(n, 2);
	assert_false(has(out, n, &l->b));
	free(l);
}

static void test_aging(void **state)
{
	struct lan *l = lan_new();

	sw_init(&l->sw, "lan", 300 * S);            /* again, the ports re-added */
	sw_port_add(&l->sw, &l->a);
	sw_port_add(&l->sw, &l->b);
	assert_int_equal(send_frame(&l->a, bcast, mac_a, 60, 1 * S), SW_PASS);
	assert_ptr_equal(sw_fdb_lookup(&l->sw, mac_a, 300 * S), &l->a);
	assert_null(sw_fdb_lookup(&l->sw, mac_a, 301 * S));          /* aged out */
	/* seen again: refreshed */
	assert_int_equal(send_frame(&l->a, bcast, mac_a, 60, 302 * S), SW_PASS);
	assert_int_equal(send_frame(&l->a, bcast, mac_a, 60, 500 * S), SW_PASS);
	assert_ptr_equal(sw_fdb_lookup(&l->sw, mac_a, 799 * S), &l->a);
	assert_null(sw_fdb_lookup(&l->sw, mac_a, 800 * S));
	free(l);
}

/* A full bucket of the table: the least recently seen entry goes, never a live one
 * while a dead one is there. */
static void test_table_full(void **state)
{
	struct lan *l = lan_new();
	uint8_t m[6] = { 2, 1, 0, 0, 0, 0 };
	unsigned learned = 0;

	for (unsigned i = 0; i < 4 * SW_FDB_BUCKETS * SW_FDB_WAYS; i++) {
		m[4] = (uint8_t)(i >> 8);
		m[5] = (uint8_t)i;
		sw_fdb_learn(&l->sw, m, &l->u, i);
	}
	/* the newest address is always there */
	assert_ptr_equal(sw_fdb_lookup(&l->sw, m, 1 << 20), &l->u);
	for (unsigned b = 0; b < SW_FDB_BUCKETS; b++)
		for (unsigned w = 0; w < SW_FDB_WAYS; w++)
			learned += l->sw.fdb[b][w].port != NULL;
	assert_true(learned > SW_FDB_BUCKETS * SW_FDB_WAYS / 2);
	/* multicast sources are never learned */
	sw_fdb_learn(&l->sw, mcast, &l->a, 5);
	assert_null(sw_fdb_lookup(&l->sw, mcast, 5));
	free(l);
}

static void test_flooding_rules(void **state)
{
	struct lan *l = lan_new();
	struct sw_port *out[SW_MAX_PORTS];
	bool flood;
	unsigned n;

	/* broadcast and multicast flood even when something was "learned" */
	sw_fdb_learn(&l->sw, bcast, &l->b, 0);
	n = sw_destinations(&l->sw, &l->a, bcast, 0, out, &flood);
	assert_true(flood);
	assert_int_equal(n, 3);
	n = sw_destinations(&l->sw, &l->u, mcast, 0, out, &flood);
	assert_true(flood);
	assert_int_equal(n, 3);
	assert_false(has(out, n, &l->u));            /* not back to the uplink */
	free(l);
}

static void test_networks_are_separate(void **state)
{
	struct lan *one = lan_new(), *two = lan_new();
	struct sw_port *out[SW_MAX_PORTS];
	bool flood;
	unsigned n;

	sw_init(&two->sw, "two", SW_AGE_NS_DEFAULT);
	sw_port_add(&two->sw, &two->c);             /* only c on network two */
	assert_int_equal(send_frame(&one->b, bcast, mac_b, 60, 0), SW_PASS);
	/* two knows nothing of one's b, and floods only to its own ports */
	assert_null(sw_fdb_lookup(&two->sw, mac_b, 0));
	n = sw_destinations(&two->sw, &two->c, mac_b, 0, out, &flood);
	assert_int_equal(n, 0);
	n = sw_destinations(&one->sw, &one->a, bcast, 0, out, &flood);
	assert_false(has(out, n, &two->c));
	free(one);
	free(two);
}

static void test_anti_spoof(void **state)
{
	struct lan *l = lan_new();

	assert_int_equal(send_frame(&l->a, mac_b, mac_b, 60, 0), SW_SPOOF);
	assert_int_equal(send_frame(&l->a, bcast, mac_x, 100, 0), SW_SPOOF);
	assert_int_equal(l->a.c.drop_spoof, 2);
	assert_int_equal(l->a.c.tx_frames, 0);
	/* a spoofed address is not learned on the spoofer */
	assert_null(sw_fdb_lookup(&l->sw, mac_b, 0));
	assert_null(sw_fdb_lookup(&l->sw, mac_x, 0));
	/* the uplink carries any source */
	assert_int_equal(send_frame(&l->u, mac_a, mac_x, 60, 0), SW_PASS);
	assert_int_equal(send_frame(&l->u, mac_a, mac_b, 60, 0), SW_PASS);
	assert_int_equal(l->u.c.drop_spoof, 0);
	assert_int_equal(l->a.c.drop_spoof, 2);
	free(l);
}

static void test_lengths(void **state)
{
	struct lan *l = lan_new();
	uint8_t h[SW_ETH_HLEN];

	eth(h, mac_b, mac_a, 0x0800);
	assert_int_equal(sw_check_length(&l->a, h, 13), SW_MALFORMED);
	assert_int_equal(sw_check_length(&l->a, h, 14), SW_PASS);
	assert_int_equal(sw_check_length(&l->a, h, 1514), SW_PASS);
	assert_int_equal(sw_check_length(&l->a, h, 1515), SW_OVERSIZE);
	assert_int_equal(sw_check_length(&l->a, h, 1518), SW_OVERSIZE);
	eth(h, mac_b, mac_a, SW_ETHERTYPE_VLAN);
	assert_int_equal(sw_check_length(&l->a, h, 1518), SW_PASS);
	assert_int_equal(sw_check_length(&l->a, h, 1519), SW_OVERSIZE);
	assert_int_equal(l->a.c.drop_malformed, 1);
	assert_int_equal(l->a.c.drop_oversize, 3);
	free(l);
}

static void test_bucket_delay_and_refill(void **state)
{
	struct sw_port p;
	uint64_t t = 1000 * S, wait;

	sw_port_init(&p, mac_a, false, &p);
	assert_int_equal(sw_rate_admit(&p, 1 << 20, t), 0);          /* no limit */
	sw_port_set_rate(&p, 10000, 3000, t);                         /* 10 kB/s, 3000 burst */
	assert_int_equal(sw_rate_admit(&p, 1500, t), 0);
	assert_int_equal(sw_rate_admit(&p, 1500, t), 0);              /* the burst */
	wait = sw_rate_admit(&p, 1500, t);                            /* empty: 150 ms */
	assert_int_equal(wait, 150 * MS);
	/* nothing was taken while refused; after 100 ms, 50 ms more */
	wait = sw_rate_admit(&p, 1500, t + 100 * MS);
	assert_int_equal(wait, 50 * MS);
	assert_int_equal(sw_rate_admit(&p, 1500, t + 150 * MS), 0);
	assert_int_equal(p.bucket.tokens, 0);
	/* fractions of a byte are not lost over many small steps */
	for (unsigned i = 1; i <= 1000; i++)
		sw_bucket_refill(&p.bucket, t + 150 * MS + i * 33333);   /* 33.333 us steps */
	assert_in_range(p.bucket.tokens, 332, 334);                    /* 33.33 ms: 333 B */
	/* a long idle refills up to the burst, never beyond */
	assert_int_equal(sw_rate_admit(&p, 100, t + 3600 * S), 0);
	assert_int_equal(p.bucket.tokens, 2900);
	assert_int_equal(p.c.drop_rate, 0);                           /* delayed, not dropped */
	assert_int_equal(p.c.rate_held, 1);                           /* one frame, asked twice */
}

static void test_bucket_rate_over_time(void **state)
{
	struct sw_port p;
	uint64_t t = 0, sent = 0, wait = 0;

	sw_port_init(&p, mac_a, false, &p);
	sw_port_set_rate(&p, 1000000, 64 * 1024, t);                 /* 1 MB/s */
	/* a sender that always has 1514-byte frames, for 10 s */
	while (t < 10 * S) {
		wait = sw_rate_admit(&p, 1514, t);
		if (wait)
			t += wait;
		else
			sent += 1514;
	}
	/* burst + rate x time, give or take a frame */
	assert_in_range(sent, 10000000 + 64 * 1024 - 1514, 10000000 + 64 * 1024 + 1514);
	/* every frame but the 43 the burst covered waited, once; so did the one still
	 * waiting when the time was up */
	assert_int_equal(p.c.rate_held, sent / 1514 - 43 + (wait != 0));
}

/* rate_held counts frames, not refusals: a frame asks until it goes or is given up. */
static void test_bucket_held_counts_frames(void **state)
{
	struct sw_port p;
	uint64_t gen;

	sw_port_init(&p, mac_a, false, &p);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sw_rate_admit(&p, 1500, 0), 0);      /* no limit */
	sw_port_set_rate(&p, 1000, 1500, 0);
	assert_int_equal(sw_rate_admit(&p, 1500, 0), 0);              /* the burst */
	assert_int_equal(p.c.rate_held, 0);
	gen = p.gen;
	assert_int_equal(sw_rate_admit(&p, 1500, 0), 1500 * MS);
	assert_int_equal(sw_rate_admit(&p, 1500, 500 * MS), 1000 * MS);
	assert_int_equal(sw_rate_admit(&p, 1500, 1000 * MS), 500 * MS);
	assert_int_equal(p.c.rate_held, 1);
	assert_true(p.gen != gen);                                    /* reported */
	assert_int_equal(sw_rate_admit(&p, 1500, 1500 * MS), 0);
	assert_int_equal(p.c.rate_held, 1);
	/* the next frame waits too, and is given up (its ring stopped) */
	assert_int_not_equal(sw_rate_admit(&p, 1500, 1500 * MS), 0);
	assert_int_equal(p.c.rate_held, 2);
	sw_count_drop(&p, SW_DROP_RATE);
	/* so the one after it is a new frame that waits */
	assert_int_not_equal(sw_rate_admit(&p, 1500, 1600 * MS), 0);
	assert_int_equal(p.c.rate_held, 3);
	assert_int_equal(p.c.drop_rate, 1);
	assert_int_equal(sw_rate_admit(&p, 1500, 10 * S), 0);        /* it goes */
	/* one given up with its broken ring, without a drop, ends its wait as well */
	assert_int_not_equal(sw_rate_admit(&p, 1500, 10 * S), 0);
	sw_rate_forget(&p);
	assert_int_not_equal(sw_rate_admit(&p, 1500, 10 * S), 0);
	assert_int_equal(p.c.rate_held, 5);
	assert_int_equal(p.c.drop_rate, 1);
	assert_int_equal(sw_rate_admit(&p, 1500, 20 * S), 0);        /* it goes */
	/* a frame that finds its credit there is not held */
	assert_int_equal(sw_rate_admit(&p, 1500, 30 * S), 0);
	assert_int_equal(p.c.rate_held, 5);
	/* the uplink is never limited, so never held */
	p.uplink = true;
	assert_int_equal(sw_rate_admit(&p, 1500, 30 * S), 0);
	assert_int_equal(sw_rate_admit(&p, 1500, 30 * S), 0);
	assert_int_equal(p.c.rate_held, 5);
}

static void test_bucket_frame_above_burst(void **state)
{
	struct sw_port p;

	sw_port_init(&p, mac_a, false, &p);
	sw_port_set_rate(&p, 1000, 500, 0);
	/* full bucket: the big frame goes and empties it */
	assert_int_equal(sw_rate_admit(&p, 1500, 0), 0);
	assert_int_equal(p.bucket.tokens, 0);
	/* then it takes the whole burst again: 500 ms */
	assert_int_equal(sw_rate_admit(&p, 1500, 0), 500 * MS);
	assert_int_equal(sw_rate_admit(&p, 1500, 500 * MS), 0);
	/* the uplink is never limited */
	p.uplink = true;
	assert_int_equal(sw_rate_admit(&p, 1500, 500 * MS), 0);
}

static void test_counters(void **state)
{
	struct lan *l = lan_new();
	uint64_t gen = l->a.gen;

	assert_int_equal(send_frame(&l->a, mac_b, mac_a, 100, 0), SW_PASS);
	assert_int_equal(send_frame(&l->a, mac_b, mac_a, 60, 0), SW_PASS);
	assert_int_equal(l->a.c.tx_frames, 2);
	assert_int_equal(l->a.c.tx_bytes, 160);
	assert_true(l->a.gen != gen);
	sw_count_rx(&l->b, 1, 100);
	sw_count_rx(&l->b, 1, 60);
	sw_count_drop(&l->b, SW_DROP_NO_BUFFER);
	sw_count_drop(&l->b, SW_DROP_RATE);
	assert_int_equal(l->b.c.rx_frames, 2);
	assert_int_equal(l->b.c.rx_bytes, 160);
	assert_int_equal(l->b.c.drop_no_buffer, 1);
	assert_int_equal(l->b.c.drop_rate, 1);
	assert_int_equal(l->b.c.tx_frames, 0);
	gen = l->c.gen;
	send_frame(&l->c, mac_a, mac_c, 9000, 0);                    /* oversize */
	assert_int_equal(l->c.c.drop_oversize, 1);
	assert_int_equal(l->c.c.tx_frames, 0);
	assert_true(l->c.gen != gen);
	free(l);
}

static void test_ports_limit(void **state)
{
	struct sw_switch *sw = calloc(1, sizeof(*sw));
	struct sw_port *p = calloc(SW_MAX_PORTS + 1, sizeof(*p));

	sw_init(sw, "big", SW_AGE_NS_DEFAULT);
	for (unsigned i = 0; i < SW_MAX_PORTS; i++)
		assert_int_equal(sw_port_add(sw, &p[i]), 0);
	assert_int_equal(sw_port_add(sw, &p[SW_MAX_PORTS]), -ENOSPC);
	free(p);
	free(sw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learning_and_unicast),
		cmocka_unit_test(test_aging),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_flooding_rules),
		cmocka_unit_test(test_networks_are_separate),
		cmocka_unit_test(test_anti_spoof),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_bucket_delay_and_refill),
		cmocka_unit_test(test_bucket_rate_over_time),
		cmocka_unit_test(test_bucket_frame_above_burst),
		cmocka_unit_test(test_bucket_held_counts_frames),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_ports_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
