/*
 * Quoting a string for a hand-written JSON event line, in processes that must not
 * allocate after entering their sandbox (the monitor, the I/O servers).
 */
#ifndef BH_JSON_QUOTE_H
#define BH_JSON_QUOTE_H

#include <stddef.h>

/* Writes s as a quoted JSON string into out[0..size); bytes outside printable ASCII are
 * escaped, so the result is valid JSON whatever s holds. Returns the length, or -1 when
 * it does not fit. */
int json_quote(char *out, size_t size, const char *s);

#endif
