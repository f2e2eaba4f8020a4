/* Unit tests for src/common/units.c: sizes and durations as the system file writes them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/units.h"

static void sizes_with_units(void **state)
{
	uint64_t v;
	assert_int_equal(units_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(units_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(units_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(units_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(units_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
}

static void sizes_refused(void **state)
{
	uint64_t v;
	const char *bad[] = { "", "M", "-1", "1.5G", "64m", "64 M", "64MB", "0x10", " 4K", "4K ",
			      "1P" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(units_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(units_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(units_parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(units_parse_size("18446744073709551615", &v), 0);
}

static void times_need_units(void **state)
{
	uint64_t v;
	assert_int_equal(units_parse_time("500us", &v), 0);
	assert_int_equal(v, 500000);
	assert_int_equal(units_parse_time("10ms", &v), 0);
	assert_int_equal(v, 10000000);
	assert_int_equal(units_parse_time("2s", &v), 0);
	assert_int_equal(v, 2000000000);
	assert_int_equal(units_parse_time("7ns", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(units_parse_time("10", &v), -EINVAL);
	assert_int_equal(units_parse_time("10m", &v), -EINVAL);
	assert_int_equal(units_parse_time("1.5s", &v), -EINVAL);
	assert_int_equal(units_parse_time("99999999999999999999s", &v), -ERANGE);
	assert_int_equal(units_parse_time("18446744074s", &v), -ERANGE);
}

static void formatting_round_trips(void **state)
{
	char buf[24];
	uint64_t v;
	assert_string_equal(units_format_size(16ULL << 20, buf), "16M");
	assert_string_equal(units_format_size(1536, buf), "1536");
	assert_string_equal(units_format_size(0, buf), "0");
	assert_string_equal(units_format_size(3ULL << 30, buf), "3G");
	assert_string_equal(units_format_time(10000000, buf), "10ms");
	assert_string_equal(units_format_time(1500, buf), "1500ns");
	assert_string_equal(units_format_time(0, buf), "0ns");
	for (uint64_t x = 1; x < (1ULL << 50); x = x * 3 + 512) {
		assert_int_equal(units_parse_size(units_format_size(x, buf), &v), 0);
		assert_int_equal(v, x);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_with_units),
		cmocka_unit_test(sizes_refused),
		cmocka_unit_test(times_need_units),
		cmocka_unit_test(formatting_round_trips),
	};
	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
