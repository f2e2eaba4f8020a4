/*
 * Parsing of the quantities a system file is written in: sizes with binary units
 * ("4K", "64M", "1G") and durations with units ("500us", "10ms", "2s").
 */
#ifndef BH_UNITS_H
#define BH_UNITS_H

#include <stdint.h>

/* "4096", "4K", "4KiB", "64M", "1G", "2T" → bytes. Returns 0 or -EINVAL / -ERANGE. */
int units_parse_size(const char *s, uint64_t *bytes);

/* "500us", "10ms", "2s", "100ns" → nanoseconds. A unit is required. 0, -EINVAL or -ERANGE. */
int units_parse_time(const char *s, uint64_t *ns);

/* Shortest exact rendering: 16777216 → "16M", 1536 → "1536". buf must hold 24 bytes. */
const char *units_format_size(uint64_t bytes, char buf[24]);

/* Shortest exact rendering: 10000000 → "10ms". buf must hold 24 bytes. */
const char *units_format_time(uint64_t ns, char buf[24]);

#endif
