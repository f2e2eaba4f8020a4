/*
 * Firmware tables written into guest memory, byte by byte, little-endian, bounds
 * checked once: the MP table (mptable.c) and the ACPI tables (acpi.c). A write past
 * the buffer clears ok and writes nothing more; the caller checks ok at the end.
 */
#ifndef BH_MONITOR_X86_TABLE_WRITER_H
#define BH_MONITOR_X86_TABLE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct tbl_writer {
	uint8_t *p;
	size_t len, off;
	bool ok;
};

static inline void tbl_put(struct tbl_writer *w, const void *src, size_t n)
{
	if (!w->ok || w->off + n > w->len) {
		w->ok = false;
		return;
	}
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

static inline void tbl_put8(struct tbl_writer *w, uint8_t v)
{
	tbl_put(w, &v, 1);
}

static inline void tbl_put16(struct tbl_writer *w, uint16_t v)
{
	tbl_put8(w, (uint8_t)v);
	tbl_put8(w, (uint8_t)(v >> 8));
}

static inline void tbl_put32(struct tbl_writer *w, uint32_t v)
{
	tbl_put16(w, (uint16_t)v);
	tbl_put16(w, (uint16_t)(v >> 16));
}

static inline void tbl_put64(struct tbl_writer *w, uint64_t v)
{
	tbl_put32(w, (uint32_t)v);
	tbl_put32(w, (uint32_t)(v >> 32));
}

/* A field filled in later (a length, a count), at p. */
static inline void tbl_set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void tbl_set32(uint8_t *p, uint32_t v)
{
	tbl_set16(p, (uint16_t)v);
	tbl_set16(p + 2, (uint16_t)(v >> 16));
}

static inline void tbl_set64(uint8_t *p, uint64_t v)
{
	tbl_set32(p, (uint32_t)v);
	tbl_set32(p + 4, (uint32_t)(v >> 32));
}

/* The byte that makes n bytes (itself included, as 0 when computed) sum to zero. */
static inline uint8_t tbl_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

#endif
