/* Unit tests for src/ioserver/vu_inflight.c: the inflight region of vhost-user's
 * INFLIGHT_SHMFD (split rings). Its layout and seals, what a mapped region must look
 * like, and above all recovery: a server killed at every step of a completion leaves a
 * region from which exactly the unfinished requests come back, in pop order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "ioserver/vu_inflight.h"

#define QS 16   /* queue size in most tests */

/* A one-queue region of QS descriptors, and a stand-in for the used ring's index. */
struct fixture {
	struct vu_inflight_map m;
	struct vu_inflight_queue *q;
	int fd;
	uint64_t size;
	uint16_t used;                    /* used->idx */
	uint16_t batch;                   /* the server's copy of last_batch_head */
	uint64_t counter;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(vu_inflight_create(&f->m, 1, QS, &f->fd, &f->size), 0);
	f->q = vu_inflight_queue(&f->m, 0);
	assert_non_null(f->q);
}

static void fixture_fini(struct fixture *f)
{
	vu_inflight_unmap(&f->m);
	close(f->fd);
}

static void take(struct fixture *f, uint16_t head)
{
	vu_inflight_take(f->q, head, f->counter++);
}

/* A whole completion, as vu_queue_push does it around vring_push. */
static void complete(struct fixture *f, uint16_t head)
{
	const struct virtq_used_elem e = { head, 0 };

	vu_inflight_complete_begin(f->q, &f->batch, &e, 1);
	f->used++;
	vu_inflight_complete_end(f->q, &e, 1, f->used);
}

/* Recovers (with the ring size num) and checks the heads to resubmit, in order. */
static void expect_recover(struct fixture *f, uint16_t num, const uint16_t *want, unsigned n)
{
	struct vu_inflight_head out[QS];
	uint64_t next;
	uint16_t batch;
	unsigned got;

	assert_int_equal(vu_inflight_recover(f->q, QS, num, f->used, out, &got, &next, &batch), 0);
	assert_int_equal(got, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(out[i].head, want[i]);
	assert_true(next >= (n ? out[n - 1].counter + 1 : 0));
	assert_int_equal(f->q->used_idx, f->used);
}

static void create_makes_a_sealed_initialised_region(void **state)
{
	struct vu_inflight_map m = { 0 };
	uint64_t size;
	int fd;

	assert_int_equal(vu_inflight_queue_bytes(128), 2112);        /* 16 + 2048, to 64 */
	assert_int_equal(vu_inflight_queue_bytes(1), 64);
	assert_int_equal(vu_inflight_create(&m, 2, 128, &fd, &size), 0);
	assert_int_equal(size, 2 * 2112);
	for (unsigned i = 0; i < 2; i++) {
		struct vu_inflight_queue *q = vu_inflight_queue(&m, i);

		assert_ptr_equal(q, m.base + i * 2112);
		assert_int_equal(q->version, 1);
		assert_int_equal(q->desc_num, 128);
		assert_int_equal(q->features, 0);
		assert_int_equal(q->last_batch_head | q->used_idx, 0);
		for (unsigned d = 0; d < 128; d++)
			assert_int_equal(q->desc[d].inflight | q->desc[d].counter, 0);
	}
	assert_null(vu_inflight_queue(&m, 2));
	/* Nobody can shrink (or grow) it under a server's mapping. */
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 1 << 20), -1);
	vu_inflight_unmap(&m);
	assert_null(vu_inflight_queue(&m, 0));
	close(fd);
	assert_int_equal(vu_inflight_create(&m, 0, 128, &fd, &size), -EINVAL);
	assert_int_equal(vu_inflight_create(&m, 1, 0, &fd, &size), -EINVAL);
	assert_int_equal(vu_inflight_create(&m, 1, VU_INFLIGHT_MAX_SIZE + 1, &fd, &size), -EINVAL);
}

static void map_fd_takes_only_regions_that_fit(void **state)
{
	struct fixture f;
	struct vu_inflight_map m = { 0 };

	fixture_init(&f);
	take(&f, 3);
	/* What a restarted server sees: the same state. */
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 1, QS), 0);
	assert_int_equal(vu_inflight_queue(&m, 0)->desc[3].inflight, 1);
	vu_inflight_unmap(&m);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size - 64, 0, 1, QS), -EINVAL);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 4096, 1, QS), -EINVAL);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, UINT64_MAX, 1, QS), -EINVAL);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 2, QS), -EINVAL);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 1, QS / 2), -EINVAL);
	assert_null(m.map);
	f.q->version = 2;                                            /* another layout */
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 1, QS), -EINVAL);
	f.q->version = 0;                                            /* never initialised */
	f.q->desc_num = 999;
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 1, QS), 0);
	assert_int_equal(f.q->version, 1);
	assert_int_equal(f.q->desc_num, QS);
	assert_int_equal(f.q->desc[3].inflight, 0);
	vu_inflight_unmap(&m);
	fixture_fini(&f);
}

static void completions_clear_and_record(void **state)
{
	struct fixture f;
	static const uint16_t left[] = { 9, 2 };

	fixture_init(&f);
	take(&f, 5);
	take(&f, 9);
	take(&f, 2);
	assert_int_equal(f.q->desc[9].counter, 1);
	complete(&f, 5);
	assert_int_equal(f.q->desc[5].inflight, 0);
	assert_int_equal(f.q->last_batch_head, 5);
	assert_int_equal(f.q->used_idx, 1);
	expect_recover(&f, QS, left, 2);
	fixture_fini(&f);
}

/* A server dies at each step of completing B (A done before, C still running). */
static void crash_at_every_step_of_a_completion(void **state)
{
	static const uint16_t both[] = { 7, 3 }, only_c[] = { 3 };
	static const struct virtq_used_elem b = { 7, 0 };
	enum { BEFORE, AFTER_BEGIN, AFTER_USED, AFTER_END } step;

	for (step = BEFORE; step <= AFTER_END; step++) {
		struct fixture f;

		fixture_init(&f);
		take(&f, 1);                          /* A */
		take(&f, 7);                          /* B */
		take(&f, 3);                          /* C */
		complete(&f, 1);
		if (step >= AFTER_BEGIN)
			vu_inflight_complete_begin(f.q, &f.batch, &b, 1);
		if (step >= AFTER_USED)
			f.used++;                     /* vring_push published B */
		if (step >= AFTER_END)
			vu_inflight_complete_end(f.q, &b, 1, f.used);
		/* Published: B is done and must not come back; else it must. */
		if (step >= AFTER_USED)
			expect_recover(&f, QS, only_c, 1);
		else
			expect_recover(&f, QS, both, 2);
		/* Recovery settled the region: doing it again gives the same answer. */
		if (step >= AFTER_USED)
			expect_recover(&f, QS, only_c, 1);
		else
			expect_recover(&f, QS, both, 2);
		fixture_fini(&f);
	}
}

/* Dying while taking: the counter may be written, the flag not; the chain is simply
 * not taken (the avail ring resumes before it). */
static void crash_while_taking(void **state)
{
	struct fixture f;
	static const uint16_t one[] = { 4 };

	fixture_init(&f);
	take(&f, 4);
	f.q->desc[6].counter = f.counter++;
	expect_recover(&f, QS, one, 1);
	fixture_fini(&f);
}

/* Another implementation may complete in batches: the list from last_batch_head. */
static void settles_a_longer_batch(void **state)
{
	struct fixture f;
	static const uint16_t left[] = { 0 };

	fixture_init(&f);
	for (uint16_t h = 0; h < 4; h++)
		take(&f, h);
	/* Batch 3, 1, 2 recorded (2 last), used index moved by 3, flags not cleared. */
	f.q->desc[3].next = 11;
	f.q->desc[1].next = 3;
	f.q->desc[2].next = 1;
	f.q->last_batch_head = 2;
	f.used += 3;
	expect_recover(&f, QS, left, 1);
	fixture_fini(&f);
}

static void nothing_in_flight_takes_the_used_index(void **state)
{
	struct fixture f;

	fixture_init(&f);
	f.q->used_idx = 500;                  /* the driver reset its ring meanwhile */
	f.used = 0;
	expect_recover(&f, QS, NULL, 0);
	fixture_fini(&f);
}

/* A frontend zeroed the region while the rings were stopped (its guest reset the
 * device): the next start makes it a region again, so that a server after this one
 * does not take it for a fresh one and wipe what is recorded from now on. */
static void a_zeroed_region_is_initialised_again(void **state)
{
	struct vu_inflight_head out[QS];
	struct vu_inflight_map m = { 0 };
	struct fixture f;
	uint64_t next;
	uint16_t batch;
	unsigned n;

	fixture_init(&f);
	memset(f.q, 0, vu_inflight_queue_bytes(QS));
	expect_recover(&f, QS, NULL, 0);
	assert_int_equal(f.q->version, 1);
	assert_int_equal(f.q->desc_num, QS);
	take(&f, 6);
	assert_int_equal(vu_inflight_map_fd(&m, f.fd, f.size, 0, 1, QS), 0);
	assert_int_equal(vu_inflight_queue(&m, 0)->desc[6].inflight, 1);
	vu_inflight_unmap(&m);
	f.q->version = 9;
	assert_int_equal(vu_inflight_recover(f.q, QS, QS, f.used, out, &n, &next, &batch), -EINVAL);
	fixture_fini(&f);
}

static void impossible_regions_are_refused(void **state)
{
	struct vu_inflight_head out[QS];
	struct fixture f;
	uint64_t next;
	uint16_t batch;
	unsigned n;

	fixture_init(&f);
	take(&f, 12);                         /* a head the smaller ring cannot have */
	assert_int_equal(vu_inflight_recover(f.q, QS, 8, f.used, out, &n, &next, &batch), -EINVAL);
	assert_int_equal(vu_inflight_recover(f.q, QS, QS * 2, f.used, out, &n, &next, &batch),
			 -EINVAL);
	f.used = 200;                         /* a batch longer than the ring */
	assert_int_equal(vu_inflight_recover(f.q, QS, QS, f.used, out, &n, &next, &batch), -EINVAL);
	f.used = 2;                           /* a batch list leaving the ring */
	f.q->last_batch_head = 12;
	f.q->desc[12].next = 40;
	assert_int_equal(vu_inflight_recover(f.q, QS, QS, f.used, out, &n, &next, &batch), -EINVAL);
	f.used = 0;
	f.q->used_idx = 0;
	take(&f, 12);                         /* a counter that cannot be */
	f.q->desc[12].counter = UINT64_MAX;
	assert_int_equal(vu_inflight_recover(f.q, QS, QS, f.used, out, &n, &next, &batch), -EINVAL);
	fixture_fini(&f);
}

static void forget_empties_the_queue(void **state)
{
	struct fixture f;

	fixture_init(&f);
	take(&f, 1);
	complete(&f, 1);
	take(&f, 2);
	vu_inflight_forget(f.q, QS);
	assert_int_equal(f.q->desc[2].inflight, 0);
	assert_int_equal(f.q->used_idx | f.q->last_batch_head, 0);
	assert_int_equal(f.q->version, 1);
	f.used = 0;
	expect_recover(&f, QS, NULL, 0);
	fixture_fini(&f);
}

/* Many heads in random pop order come back sorted by counter, with a counter above. */
static void resubmission_follows_pop_order(void **state)
{
	struct vu_inflight_map m = { 0 };
	struct vu_inflight_head out[1024];
	struct vu_inflight_queue *q;
	uint16_t order[1024], batch;
	uint64_t size, next;
	unsigned n;
	int fd;

	assert_int_equal(vu_inflight_create(&m, 1, 1024, &fd, &size), 0);
	q = vu_inflight_queue(&m, 0);
	for (unsigned i = 0; i < 1024; i++)
		order[i] = (uint16_t)i;
	srand(7);
	for (unsigned i = 1023; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1);
		uint16_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i < 1000; i++)
		vu_inflight_take(q, order[i], 100 + 3 * (uint64_t)i);
	assert_int_equal(vu_inflight_recover(q, 1024, 1024, 0, out, &n, &next, &batch), 0);
	assert_int_equal(n, 1000);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(out[i].head, order[i]);
		assert_int_equal(out[i].counter, 100 + 3 * (uint64_t)i);
	}
	assert_int_equal(next, 100 + 3 * 999 + 1);
	vu_inflight_unmap(&m);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_makes_a_sealed_initialised_region),
		cmocka_unit_test(map_fd_takes_only_regions_that_fit),
		cmocka_unit_test(completions_clear_and_record),
		cmocka_unit_test(crash_at_every_step_of_a_completion),
		cmocka_unit_test(crash_while_taking),
		cmocka_unit_test(settles_a_longer_batch),
		cmocka_unit_test(nothing_in_flight_takes_the_used_index),
		cmocka_unit_test(a_zeroed_region_is_initialised_again),
		cmocka_unit_test(impossible_regions_are_refused),
		cmocka_unit_test(forget_empties_the_queue),
		cmocka_unit_test(resubmission_follows_pop_order),
	};
	return cmocka_run_group_tests_name("vu_inflight", tests, NULL, NULL);
}
