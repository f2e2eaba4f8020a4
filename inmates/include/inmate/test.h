/*
 * A minimal test harness for inmates: EXPECT_* checks that print file:line and both
 * values on failure and keep going, and test_summary() whose return value (the number
 * of failures, capped at TEST_STATUS_MAX) is meant to be main's: `return test_summary();`
 */
#ifndef INMATE_TEST_H
#define INMATE_TEST_H

#include <stdint.h>
#include <inmate/string.h>

#define TEST_STATUS_MAX 127   /* stays clear of INMATE_STATUS_EXCEPTION_BASE */

/* Records one check; prints a failure report when !ok. Returns ok. */
int test_check(int ok, const char *file, int line, const char *expr);
int test_check_int(int ok, const char *file, int line, const char *op,
		   const char *a_expr, const char *b_expr, int64_t a, int64_t b);
int test_check_str(int ok, const char *file, int line, const char *op,
		   const char *a_expr, const char *b_expr, const char *a, const char *b);

/* Prints "inmate-test: N checks, F failures" and returns F (capped). */
int test_summary(void);
unsigned test_checks(void);
unsigned test_failures(void);

#define EXPECT_TRUE(c)   test_check(!!(c), __FILE__, __LINE__, "EXPECT_TRUE(" #c ")")
#define EXPECT_FALSE(c)  test_check(!(c), __FILE__, __LINE__, "EXPECT_FALSE(" #c ")")

/* Each operand is evaluated once and compared with C's own rules, so EXPECT_GT(u, 0)
 * means what `u > 0` means (the copies would otherwise trip -Wsign-compare, which a
 * literal operand does not). Values print as signed and hex. */
#define TEST_CMP_(a, b, op) ({                                                       \
	__typeof__(a) a_ = (a);                                                      \
	__typeof__(b) b_ = (b);                                                      \
	_Pragma("GCC diagnostic push")                                               \
	_Pragma("GCC diagnostic ignored \"-Wsign-compare\"")                         \
	int ok_ = a_ op b_;                                                          \
	_Pragma("GCC diagnostic pop")                                                \
	test_check_int(ok_, __FILE__, __LINE__, #op, #a, #b,                         \
		       (int64_t)a_, (int64_t)b_);                                    \
})

#define EXPECT_EQ(a, b)  TEST_CMP_(a, b, ==)
#define EXPECT_NE(a, b)  TEST_CMP_(a, b, !=)
#define EXPECT_LT(a, b)  TEST_CMP_(a, b, <)
#define EXPECT_LE(a, b)  TEST_CMP_(a, b, <=)
#define EXPECT_GT(a, b)  TEST_CMP_(a, b, >)
#define EXPECT_GE(a, b)  TEST_CMP_(a, b, >=)

/* |a - b| <= tol, in signed 64-bit arithmetic. */
#define EXPECT_NEAR(a, b, tol) ({                                                    \
	int64_t a_ = (int64_t)(a), b_ = (int64_t)(b), t_ = (int64_t)(tol);           \
	int64_t d_ = a_ > b_ ? a_ - b_ : b_ - a_;                                    \
	test_check_int(d_ <= t_, __FILE__, __LINE__, "~=", #a, #b, a_, b_);          \
})

#define EXPECT_STREQ(a, b) ({                                                        \
	const char *a_ = (a), *b_ = (b);                                             \
	test_check_str(a_ && b_ && strcmp(a_, b_) == 0, __FILE__, __LINE__, "==",    \
		       #a, #b, a_, b_);                                              \
})

#endif
