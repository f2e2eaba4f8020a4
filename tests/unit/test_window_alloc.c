/* Unit tests for src/monitor/window_alloc.c: the window's constant-time size-class
 * allocator (classes, alignment, splitting and merging, exhaustion, bad frees, and a
 * random run checked against a model of which bytes are taken). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "monitor/window_alloc.h"

#define POOL   (4u << 20)
#define MIN    6          /* 64 B */
#define MAX    20         /* 1 MiB */

static void init_checks_arguments(void **state)
{
	struct walloc a;

	assert_int_equal(walloc_init(&a, 0, MIN, MAX), -EINVAL);
	assert_int_equal(walloc_init(&a, POOL + 4096, MIN, MAX), -EINVAL);  /* not whole tops */
	assert_int_equal(walloc_init(&a, POOL, MAX, MIN), -EINVAL);
	assert_int_equal(walloc_init(&a, POOL, 0, 30), -EINVAL);             /* too many classes */
	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	assert_int_equal(walloc_max_block(&a), 1u << MAX);
	walloc_destroy(&a);
}

static void classes_round_up_to_powers_of_two(void **state)
{
	struct walloc a;

	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	assert_int_equal(walloc_block_size(&a, 0), 64);
	assert_int_equal(walloc_block_size(&a, 1), 64);
	assert_int_equal(walloc_block_size(&a, 64), 64);
	assert_int_equal(walloc_block_size(&a, 65), 128);
	assert_int_equal(walloc_block_size(&a, 4097), 8192);
	assert_int_equal(walloc_block_size(&a, 1u << MAX), 1u << MAX);
	assert_int_equal(walloc_block_size(&a, (1u << MAX) + 1), 0);
	walloc_destroy(&a);
}

static void blocks_are_aligned_and_disjoint(void **state)
{
	struct walloc a;
	uint64_t off[64], len[64];
	unsigned n = 0;

	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	for (uint64_t size = 1; size <= (1u << 16); size = size * 3 + 1) {
		len[n] = walloc_block_size(&a, size);
		assert_int_equal(walloc_alloc(&a, size, &off[n]), 0);
		assert_int_equal(off[n] % len[n], 0);
		assert_true(off[n] + len[n] <= POOL);
		for (unsigned j = 0; j < n; j++)
			assert_true(off[n] + len[n] <= off[j] || off[j] + len[j] <= off[n]);
		n++;
	}
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(walloc_free(&a, off[i]), 0);
	assert_int_equal(a.used, 0);
	walloc_destroy(&a);
}

static void exhaustion_and_merge_back(void **state)
{
	struct walloc a;
	uint64_t off[POOL / 4096], x;
	unsigned n = 0;

	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	while (walloc_alloc(&a, 4096, &off[n]) == 0)
		n++;
	assert_int_equal(n, POOL / 4096);
	assert_int_equal(a.used, POOL);
	assert_int_equal(walloc_alloc(&a, 1, &x), -ENOMEM);
	assert_int_equal(walloc_alloc(&a, (1u << MAX) + 1, &x), -E2BIG);
	/* free every other block: 2 MiB free, but no 8 KiB block */
	for (unsigned i = 0; i < n; i += 2)
		assert_int_equal(walloc_free(&a, off[i]), 0);
	assert_int_equal(walloc_alloc(&a, 8192, &x), -ENOMEM);
	assert_int_equal(walloc_alloc(&a, 4096, &x), 0);
	assert_int_equal(walloc_free(&a, x), 0);
	for (unsigned i = 1; i < n; i += 2)
		assert_int_equal(walloc_free(&a, off[i]), 0);
	/* all merged back: four 1 MiB blocks */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(walloc_alloc(&a, 1u << MAX, &off[i]), 0);
	assert_int_equal(walloc_alloc(&a, 64, &x), -ENOMEM);
	walloc_destroy(&a);
}

static void bad_frees_change_nothing(void **state)
{
	struct walloc a;
	uint64_t x, y;

	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	assert_int_equal(walloc_alloc(&a, 1000, &x), 0);
	assert_int_equal(walloc_free(&a, x + 64), -EINVAL);      /* inside a block */
	assert_int_equal(walloc_free(&a, x + 1), -EINVAL);       /* unaligned */
	assert_int_equal(walloc_free(&a, POOL), -EINVAL);        /* outside */
	assert_int_equal(walloc_free(&a, UINT64_MAX), -EINVAL);
	assert_int_equal(walloc_free(&a, x), 0);
	assert_int_equal(walloc_free(&a, x), -EINVAL);           /* double free */
	assert_int_equal(a.used, 0);
	assert_int_equal(walloc_alloc(&a, 1000, &y), 0);
	assert_int_equal(y, x);
	walloc_reset(&a);
	assert_int_equal(a.used, 0);
	assert_int_equal(walloc_free(&a, y), -EINVAL);           /* reset freed it */
	walloc_destroy(&a);
}

/* Random allocations and frees against a byte map of the pool. */
static void random_run_matches_model(void **state)
{
	enum { SLOTS = 512 };
	struct walloc a;
	uint64_t off[SLOTS], size[SLOTS];
	uint8_t *map = calloc(POOL / 64, 1);
	unsigned live = 0, fails = 0;

	assert_non_null(map);
	assert_int_equal(walloc_init(&a, POOL, MIN, MAX), 0);
	memset(size, 0, sizeof(size));
	srand(1234);
	for (unsigned step = 0; step < 200000; step++) {
		unsigned i = rand() % SLOTS;

		if (size[i]) {
			uint64_t bs = walloc_block_size(&a, size[i]);

			for (uint64_t u = off[i] / 64; u < (off[i] + bs) / 64; u++)
				map[u] = 0;
			assert_int_equal(walloc_free(&a, off[i]), 0);
			size[i] = 0;
			live--;
		} else {
			uint64_t want = 1 + (uint64_t)rand() % (rand() % 4 ? 8192 : (1u << MAX));
			uint64_t bs = walloc_block_size(&a, want);
			int ret = walloc_alloc(&a, want, &off[i]);

			if (ret) {
				assert_int_equal(ret, -ENOMEM);
				fails++;
				continue;
			}
			assert_int_equal(off[i] % bs, 0);
			for (uint64_t u = off[i] / 64; u < (off[i] + bs) / 64; u++) {
				assert_int_equal(map[u], 0);
				map[u] = 1;
			}
			size[i] = want;
			live++;
		}
	}
	for (unsigned i = 0; i < SLOTS; i++)
		if (size[i])
			assert_int_equal(walloc_free(&a, off[i]), 0);
	assert_int_equal(a.used, 0);
	for (unsigned i = 0; i < 4; i++)          /* fully merged again */
		assert_int_equal(walloc_alloc(&a, 1u << MAX, &off[i]), 0);
	walloc_destroy(&a);
	free(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_checks_arguments),
		cmocka_unit_test(classes_round_up_to_powers_of_two),
		cmocka_unit_test(blocks_are_aligned_and_disjoint),
		cmocka_unit_test(exhaustion_and_merge_back),
		cmocka_unit_test(bad_frees_change_nothing),
		cmocka_unit_test(random_run_matches_model),
	};
	return cmocka_run_group_tests_name("window_alloc", tests, NULL, NULL);
}
