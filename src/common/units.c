/*
 * Sizes and durations in the system file. Strict: no fractions, no negative numbers,
 * no trailing garbage, overflow reported rather than wrapped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/units.h"

struct unit {
	const char *suffix;
	uint64_t scale;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
	{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
	{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
	{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
};

static const struct unit time_units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
};

/* Parses "<digits><suffix>" against a unit table; suffix must match exactly. */
static int parse_scaled(const char *s, const struct unit *units, size_t n, uint64_t *out)
{
	uint64_t value = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		value = value * 10 + digit;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		if (value > UINT64_MAX / units[i].scale)
			return -ERANGE;
		*out = value * units[i].scale;
		return 0;
	}
	return -EINVAL;
}

int units_parse_size(const char *s, uint64_t *bytes)
{
	return parse_scaled(s, size_units, sizeof(size_units) / sizeof(size_units[0]), bytes);
}

int units_parse_time(const char *s, uint64_t *ns)
{
	return parse_scaled(s, time_units, sizeof(time_units) / sizeof(time_units[0]), ns);
}

static const char *format_scaled(uint64_t v, const char *const *names, const uint64_t *scales,
				 int n, char buf[24])
{
	for (int i = n - 1; i > 0; i--) {
		if (v && v % scales[i] == 0) {
			snprintf(buf, 24, "%llu%s", (unsigned long long)(v / scales[i]), names[i]);
			return buf;
		}
	}
	snprintf(buf, 24, "%llu%s", (unsigned long long)v, names[0]);
	return buf;
}

const char *units_format_size(uint64_t bytes, char buf[24])
{
	static const char *const names[] = { "", "K", "M", "G", "T" };
	static const uint64_t scales[] = { 1, 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40 };
	return format_scaled(bytes, names, scales, 5, buf);
}

const char *units_format_time(uint64_t ns, char buf[24])
{
	static const char *const names[] = { "ns", "us", "ms", "s" };
	static const uint64_t scales[] = { 1, 1000, 1000000, 1000000000 };
	return format_scaled(ns, names, scales, 4, buf);
}
