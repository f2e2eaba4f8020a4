/*
 * Port-I/O and MMIO dispatch: devices register an address range and a handler; the
 * vCPU loop looks every exit up here. An address no device claims is unassigned, and
 * touching it is an isolation violation.
 */
#ifndef BH_MON_IO_H
#define BH_MON_IO_H

#include <stdbool.h>
#include <stdint.h>

#define IO_REGIONS_MAX 32

/* Handle one access at `offset` into the region. For a write *val holds the value; for
 * a read the handler stores it. Return 0, or -EINVAL when the device refuses the access
 * (wrong size, read of a write-only register): the monitor treats that as a violation. */
typedef int (*io_handler_fn)(void *opaque, uint64_t offset, uint64_t *val, unsigned size,
			     bool write);

struct io_region {
	uint64_t      base, len;
	const char   *name;
	io_handler_fn fn;
	void         *opaque;
};

struct io_table {
	unsigned         n;
	struct io_region r[IO_REGIONS_MAX];
};

struct io_space {
	struct io_table port;
	struct io_table mmio;
};

/* Claim [base, base + len). Returns 0, -EINVAL (empty or wrapping range), -EEXIST
 * (overlaps another region) or -ENOSPC (table full). */
int io_register(struct io_table *t, uint64_t base, uint64_t len, const char *name,
		io_handler_fn fn, void *opaque);

/* Release the region at base registered with opaque (a BAR the guest moved or turned
 * off). Returns 0 or -ENOENT. Only the vCPU thread registers and dispatches. */
int io_unregister(struct io_table *t, uint64_t base, void *opaque);

/* Dispatch an access of `size` (1, 2, 4 or 8) bytes little-endian in data[]. Returns 0,
 * -ENOENT (no region covers the whole access) or the handler's error. */
int io_dispatch(const struct io_table *t, uint64_t addr, uint8_t *data, unsigned size,
		bool write);

#endif
