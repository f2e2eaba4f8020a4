/*
 * Test harness bookkeeping: counts checks and failures and reports each failure with
 * its location and values, so a failed run explains itself in the partition's log.
 */
#include <inmate/printf.h>
#include <inmate/test.h>

static unsigned test_nr_checks;
static unsigned test_nr_failures;

static int test_record(int ok)
{
	test_nr_checks++;
	if (!ok)
		test_nr_failures++;
	return ok;
}

int test_check(int ok, const char *file, int line, const char *expr)
{
	if (!test_record(ok))
		printf("%s:%d: FAILED %s\n", file, line, expr);
	return ok;
}

int test_check_int(int ok, const char *file, int line, const char *op,
		   const char *a_expr, const char *b_expr, int64_t a, int64_t b)
{
	if (!test_record(ok))
		printf("%s:%d: FAILED %s %s %s: %ld (0x%lx) vs %ld (0x%lx)\n", file, line,
		       a_expr, op, b_expr, a, (uint64_t)a, b, (uint64_t)b);
	return ok;
}

int test_check_str(int ok, const char *file, int line, const char *op,
		   const char *a_expr, const char *b_expr, const char *a, const char *b)
{
	if (!test_record(ok))
		printf("%s:%d: FAILED %s %s %s: \"%s\" vs \"%s\"\n", file, line, a_expr, op,
		       b_expr, a ? a : "(null)", b ? b : "(null)");
	return ok;
}

int test_summary(void)
{
	printf("inmate-test: %u checks, %u failures\n", test_nr_checks, test_nr_failures);
	return test_nr_failures > TEST_STATUS_MAX ? TEST_STATUS_MAX : (int)test_nr_failures;
}

unsigned test_checks(void)
{
	return test_nr_checks;
}

unsigned test_failures(void)
{
	return test_nr_failures;
}
