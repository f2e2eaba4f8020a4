/* Unit tests for include/bulkhead/ports_core.h: the checks a channel end applies to the
 * header, counters and lengths another partition may have written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bulkhead/ports_core.h"

static struct bh_chan_header queuing(uint32_t max_message, uint32_t depth)
{
	return (struct bh_chan_header){ .magic = BH_CHAN_MAGIC, .type = BH_CHAN_AREA_QUEUING,
					.max_message = max_message, .depth = depth,
					.area_size = BH_QUEUING_SIZE(max_message, depth) };
}

static struct bh_chan_header sampling(uint32_t max_message, uint64_t refresh_ns)
{
	return (struct bh_chan_header){ .magic = BH_CHAN_MAGIC, .type = BH_CHAN_AREA_SAMPLING,
					.max_message = max_message, .refresh_ns = refresh_ns,
					.area_size = BH_SAMPLING_SIZE(max_message) };
}

static void test_sizes_match_the_checker(void **state)
{
	(void)state;
	/* The configuration checker's sizes (check_comm.c) hold header and slots. */
	assert_int_equal(BH_SAMPLING_SIZE(64), 4096);
	assert_int_equal(BH_SAMPLING_SIZE(4033), 8192);
	assert_int_equal(BH_QUEUING_SIZE(64, 4), 4096);
	assert_true(BH_QUEUING_SIZE(100, 4096) >= 64 + 4096 * (8 + 104));
	assert_int_equal(bh_queue_slot(0, 4, 64), 64);
	assert_int_equal(bh_queue_slot(5, 4, 64), 64 + 72);
	assert_int_equal(bh_queue_slot(3, 4, 61), 64 + 3 * 72);
}

static void test_header_is_checked_against_the_area(void **state)
{
	struct bh_chan_header h = queuing(64, 4);

	(void)state;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), 0);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_SAMPLING, 4096), -PORT_ETYPE);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 8192), -PORT_EHEADER);
	h.magic ^= 1;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_EHEADER);
	/* A header that promises more slots or longer messages than the area holds. */
	h = queuing(64, 4);
	h.depth = 100;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_EHEADER);
	h = queuing(64, 4);
	h.max_message = 4000;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_EHEADER);
	h = queuing(64, 4);
	h.depth = 0;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_EHEADER);
	h = queuing(64, 4);
	h.type = 7;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_EHEADER);

	h = sampling(64, 1000000);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_SAMPLING, 4096), 0);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_QUEUING, 4096), -PORT_ETYPE);
	h.max_message = 4033;
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_SAMPLING, 4096), -PORT_EHEADER);
	h = sampling(64, 0);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_SAMPLING, 4096), -PORT_EHEADER);
	h = sampling(BH_CHAN_MAX_MESSAGE + 1, 1);
	assert_int_equal(bh_chan_check_header(&h, BH_CHAN_AREA_SAMPLING, h.area_size),
			 -PORT_EHEADER);
}

static void test_queue_counters(void **state)
{
	(void)state;
	/* Source: own tail 10, head 7: 3 of 4 wait, one more fits. */
	assert_int_equal(bh_queue_send_check(10, 10, 7, 4), 0);
	assert_int_equal(bh_queue_send_check(10, 10, 6, 4), -PORT_EFULL);
	/* A head past our tail, or more than depth behind it. */
	assert_int_equal(bh_queue_send_check(10, 10, 11, 4), -PORT_ECORRUPT);
	assert_int_equal(bh_queue_send_check(10, 10, 5, 4), -PORT_ECORRUPT);
	/* Someone else wrote the tail. */
	assert_int_equal(bh_queue_send_check(10, 1010, 7, 4), -PORT_ECORRUPT);
	assert_int_equal(bh_queue_send_check(10, 9, 7, 4), -PORT_ECORRUPT);

	/* Destination: own head 7. */
	assert_int_equal(bh_queue_recv_check(7, 7, 7, 4), -PORT_EEMPTY);
	assert_int_equal(bh_queue_recv_check(7, 7, 8, 4), 0);
	assert_int_equal(bh_queue_recv_check(7, 7, 11, 4), 0);
	assert_int_equal(bh_queue_recv_check(7, 7, 12, 4), -PORT_ECORRUPT);
	assert_int_equal(bh_queue_recv_check(7, 7, 6, 4), -PORT_ECORRUPT);
	assert_int_equal(bh_queue_recv_check(7, 8, 9, 4), -PORT_ECORRUPT);

	/* Free-running counters wrap. */
	assert_int_equal(bh_queue_send_check(1, 1, UINT64_MAX - 1, 4), 0);
	assert_int_equal(bh_queue_send_check(2, 2, UINT64_MAX - 1, 4), -PORT_EFULL);
	assert_int_equal(bh_queue_recv_check(UINT64_MAX, UINT64_MAX, 2, 4), 0);
	assert_int_equal(bh_queue_waiting(UINT64_MAX, 2, 4), 3);
	assert_int_equal(bh_queue_slot(UINT64_MAX, 4, 8), 64 + (UINT64_MAX % 4) * 16);
}

static void test_lengths(void **state)
{
	(void)state;
	assert_int_equal(bh_chan_check_length(0, 64), 0);
	assert_int_equal(bh_chan_check_length(64, 64), 0);
	assert_int_equal(bh_chan_check_length(65, 64), -PORT_ECORRUPT);
	assert_int_equal(bh_chan_check_length(UINT64_MAX, 64), -PORT_ECORRUPT);
	assert_int_equal(bh_chan_check_length(1ULL << 32, 64), -PORT_ECORRUPT);
}

static void test_refresh_and_validity(void **state)
{
	uint64_t r = bh_ns_to_cycles(10000000, 2000000);     /* 10 ms at 2 GHz */

	(void)state;
	assert_int_equal(r, 20000000);
	assert_int_equal(bh_ns_to_cycles(1500, 2000000), 3000);
	assert_int_equal(bh_ns_to_cycles(UINT64_MAX, 3000000), UINT64_MAX);
	assert_true(bh_sample_valid(1000 + r, 1000, r));
	assert_false(bh_sample_valid(1001 + r, 1000, r));
	assert_true(bh_sample_valid(5, 1000, r));      /* stamp ahead of us: age 0 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_match_the_checker),
		cmocka_unit_test(test_header_is_checked_against_the_area),
		cmocka_unit_test(test_queue_counters),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_refresh_and_validity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
