/*
 * A constant-time allocator for window buffers (the XtratuM design): power-of-two size
 * classes, one free list per class and a bitmap of the non-empty ones, so an allocation
 * is a find-first-set plus a bounded number of splits and a free a bounded number of
 * buddy merges (at most the number of classes). Its bookkeeping lives in the monitor's
 * private memory: an I/O server that scribbles over the window cannot corrupt it.
 */
#ifndef BH_MON_WINDOW_ALLOC_H
#define BH_MON_WINDOW_ALLOC_H

#include <stdint.h>

#define WALLOC_MAX_CLASSES 24

struct walloc {
	unsigned  min_shift;      /* smallest block: 1 << min_shift bytes */
	unsigned  nclasses;       /* classes min_shift .. min_shift + nclasses - 1 */
	uint32_t  units;          /* pool size in smallest blocks */
	uint32_t  nonempty;       /* bit c: free list c has a block */
	uint32_t  head[WALLOC_MAX_CLASSES];
	uint32_t *next, *prev;    /* free-list links, per unit (valid at free block heads) */
	uint8_t  *cls;            /* class of the block that starts at this unit */
	uint8_t  *state;          /* WALLOC_NONE, _FREE or _USED at block heads */
	uint64_t  used;           /* bytes in allocated blocks (statistics) */
};

/* A pool of pool_size bytes (a non-zero multiple of 1 << max_shift) cut into blocks of
 * 1 << min_shift .. 1 << max_shift bytes. Allocates the bookkeeping (at start-up).
 * Returns 0 or -EINVAL / -ENOMEM. */
int walloc_init(struct walloc *a, uint64_t pool_size, unsigned min_shift, unsigned max_shift);
void walloc_destroy(struct walloc *a);

/* Everything free again, as after walloc_init. */
void walloc_reset(struct walloc *a);

/* A block of at least size bytes, aligned to its own size, at *off in the pool.
 * Returns 0, -E2BIG (larger than the largest class; size 0 counts as the smallest) or
 * -ENOMEM (no block of that class or larger is free). */
int walloc_alloc(struct walloc *a, uint64_t size, uint64_t *off);

/* Gives back the block at off. Returns 0, or -EINVAL when off is not the start of an
 * allocated block (a double free, or a bad offset): nothing changes then. */
int walloc_free(struct walloc *a, uint64_t off);

/* The block size an allocation of size bytes takes, or 0 when it is too large. */
uint64_t walloc_block_size(const struct walloc *a, uint64_t size);
uint64_t walloc_max_block(const struct walloc *a);

#endif
