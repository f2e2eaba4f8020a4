/*
 * JSON string quoting without allocation (see json_quote.h).
 */
#include <string.h>

#include "common/json_quote.h"

int json_quote(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (size < 3)
		return -1;
	out[n++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (n + 8 > size)        /* the longest escape, the closing quote and the NUL */
			return -1;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[c >> 4];
			out[n + 5] = hex[c & 15];
			n += 6;
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	out[n] = 0;
	return (int)n;
}
