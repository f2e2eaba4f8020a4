/*
 * Port-I/O and MMIO dispatch tables: a fixed array per address space, filled at
 * start-up and searched on every exit. Only PCI BARs come and go while the guest runs
 * (when the guest programs them), always on the vCPU thread.
 */
#include <errno.h>
#include <string.h>

#include "monitor/io.h"

int io_register(struct io_table *t, uint64_t base, uint64_t len, const char *name,
		io_handler_fn fn, void *opaque)
{
	if (!len || base + len < base || !fn)
		return -EINVAL;
	for (unsigned i = 0; i < t->n; i++) {
		const struct io_region *r = &t->r[i];

		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
	}
	if (t->n == IO_REGIONS_MAX)
		return -ENOSPC;
	t->r[t->n++] = (struct io_region){ base, len, name, fn, opaque };
	return 0;
}

int io_unregister(struct io_table *t, uint64_t base, void *opaque)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->r[i].base == base && t->r[i].opaque == opaque) {
			t->r[i] = t->r[--t->n];
			return 0;
		}
	return -ENOENT;
}

static const struct io_region *io_find(const struct io_table *t, uint64_t addr, unsigned size)
{
	for (unsigned i = 0; i < t->n; i++) {
		const struct io_region *r = &t->r[i];

		if (addr >= r->base && addr - r->base < r->len && size <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

int io_dispatch(const struct io_table *t, uint64_t addr, uint8_t *data, unsigned size,
		bool write)
{
	const struct io_region *r;
	uint64_t val = 0;
	int ret;

	if (size != 1 && size != 2 && size != 4 && size != 8)
		return -EINVAL;
	r = io_find(t, addr, size);
	if (!r)
		return -ENOENT;
	if (write)
		memcpy(&val, data, size);   /* x86 is little-endian, like the access */
	ret = r->fn(r->opaque, addr - r->base, &val, size, write);
	if (!ret && !write)
		memcpy(data, &val, size);
	return ret;
}
