/*
 * Memory and string helpers. memcpy/memset/memcmp use the string instructions: short,
 * no SSE, and immune to the compiler turning a byte loop back into a call to itself.
 * Bulk work goes 8 bytes per step (movsq/stosq/cmpsq): this host emulates the guest an
 * instruction (and a string-instruction iteration) at a time, so steps are what cost.
 */
#include <stdint.h>
#include <inmate/string.h>

#define STRING_QWORD_MIN 32   /* below this, byte steps are as cheap as the set-up */

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	size_t q = n >= STRING_QWORD_MIN ? n / 8 : 0, rest = n - q * 8;

	__asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(q) : : "memory");
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(rest) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	size_t q = n >= STRING_QWORD_MIN ? n / 8 : 0, rest = n - q * 8;
	uint64_t v = (uint8_t)c * 0x0101010101010101ull;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(q) : "a"(v) : "memory");
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(rest) : "a"(v) : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	if ((uintptr_t)dst <= (uintptr_t)src || (uintptr_t)dst >= (uintptr_t)src + n)
		return memcpy(dst, src, n);
	/* Overlapping with dst above src: copy from the end, backwards. */
	const char *s = (const char *)src + n - 1;
	char *d = (char *)dst + n - 1;

	__asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	size_t words = n / 8;

	/* Skip the equal leading quadwords in one string instruction; the first unequal
	 * one (if any) is then compared bytewise to get the sign right. */
	if (words) {
		size_t left = words;

		__asm__ volatile("repe cmpsq"
				 : "+S"(p), "+D"(q), "+c"(left) : : "memory", "cc");
		if (p != (const unsigned char *)a + 8 * words ||
		    ((const uint64_t *)p)[-1] != ((const uint64_t *)q)[-1]) {
			p -= 8;
			q -= 8;
			n = 8;
		} else {
			n -= 8 * words;
		}
	}
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return p - s;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return 0;
	}
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* Parses the magnitude; *neg reports a leading '-'. Returns the first unused char. */
static const char *parse_unsigned(const char *s, int base, unsigned long *out, int *neg,
				  int *overflow)
{
	const char *start;
	unsigned long v = 0;
	int d;

	*neg = 0;
	*overflow = 0;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '-' || *s == '+')
		*neg = (*s++ == '-');
	if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	    digit_value(s[2]) < 16) {
		s += 2;
		base = 16;
	} else if (base == 0) {
		base = (s[0] == '0') ? 8 : 10;
	}
	start = s;
	for (; (d = digit_value(*s)) < base; s++) {
		if (v > (~0UL - d) / base)
			*overflow = 1;
		v = v * base + d;
	}
	*out = *overflow ? ~0UL : v;
	return s == start ? 0 : s;
}

unsigned long strtoul(const char *s, char **end, int base)
{
	unsigned long v;
	int neg, overflow;
	const char *e = parse_unsigned(s, base, &v, &neg, &overflow);

	if (end)
		*end = (char *)(e ? e : s);
	if (!e)
		return 0;
	return neg && !overflow ? -v : v;
}

long strtol(const char *s, char **end, int base)
{
	unsigned long v;
	int neg, overflow;
	const char *e = parse_unsigned(s, base, &v, &neg, &overflow);
	const unsigned long limit = neg ? (unsigned long)INT64_MAX + 1 : (unsigned long)INT64_MAX;

	if (end)
		*end = (char *)(e ? e : s);
	if (!e)
		return 0;
	if (overflow || v > limit)
		v = limit;
	return neg ? (long)(0 - v) : (long)v;
}
