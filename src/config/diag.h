/*
 * Diagnostics for a system file: every error and warning, with the line and column it
 * concerns, collected first and printed together as FILE:LINE:COL: error: MESSAGE.
 */
#ifndef BH_DIAG_H
#define BH_DIAG_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

/* Where a value was in the file; line 0 means "not given". */
struct bh_loc {
	uint32_t line, col;
};

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag_item {
	enum diag_severity severity;
	struct bh_loc loc;
	size_t seq;       /* order of reporting, to keep the sort stable */
	char *msg;
};

struct diag {
	const char *file;
	struct diag_item *items;
	size_t n, cap;
	size_t errors, warnings;
	bool truncated;    /* more than DIAG_MAX items were reported */
};

#define DIAG_MAX 1000

void diag_init(struct diag *d, const char *file);
void diag_free(struct diag *d);
void diag_error(struct diag *d, struct bh_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void diag_warning(struct diag *d, struct bh_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* True when an error was already reported at exactly loc (a value the schema refused). */
bool diag_has_error_at(const struct diag *d, struct bh_loc loc);
/* Prints every item sorted by position (stable), one per line. */
void diag_print(struct diag *d, FILE *out);

#endif
