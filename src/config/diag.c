/*
 * Collects diagnostics so `bulkhead check` reports every problem in one run, in file
 * order, instead of stopping at the first.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/diag.h"

void diag_init(struct diag *d, const char *file)
{
	memset(d, 0, sizeof(*d));
	d->file = file;
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->items[i].msg);
	free(d->items);
	d->items = NULL;
	d->n = d->cap = 0;
}

static void add(struct diag *d, enum diag_severity sev, struct bh_loc loc,
		const char *fmt, va_list ap)
{
	char *msg;

	if (sev == DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
	if (d->n >= DIAG_MAX) {
		d->truncated = true;
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag_item *items = realloc(d->items, cap * sizeof(*items));
		if (!items)
			abort();
		d->items = items;
		d->cap = cap;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	d->items[d->n] = (struct diag_item){ .severity = sev, .loc = loc, .seq = d->n, .msg = msg };
	d->n++;
}

void diag_error(struct diag *d, struct bh_loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(d, DIAG_ERROR, loc, fmt, ap);
	va_end(ap);
}

void diag_warning(struct diag *d, struct bh_loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(d, DIAG_WARNING, loc, fmt, ap);
	va_end(ap);
}

bool diag_has_error_at(const struct diag *d, struct bh_loc loc)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].severity == DIAG_ERROR && d->items[i].loc.line == loc.line &&
		    d->items[i].loc.col == loc.col)
			return true;
	return false;
}

static int by_position(const void *a, const void *b)
{
	const struct diag_item *x = a, *y = b;
	if (x->loc.line != y->loc.line)
		return x->loc.line < y->loc.line ? -1 : 1;
	if (x->loc.col != y->loc.col)
		return x->loc.col < y->loc.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void diag_print(struct diag *d, FILE *out)
{
	if (d->n)               /* items is NULL when nothing was reported */
		qsort(d->items, d->n, sizeof(*d->items), by_position);
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_item *it = &d->items[i];
		fprintf(out, "%s:%u:%u: %s: %s\n", d->file, it->loc.line ? it->loc.line : 1,
			it->loc.col ? it->loc.col : 1,
			it->severity == DIAG_ERROR ? "error" : "warning", it->msg);
	}
	if (d->truncated)
		fprintf(out, "%s: note: only the first %d problems are shown\n", d->file, DIAG_MAX);
}
