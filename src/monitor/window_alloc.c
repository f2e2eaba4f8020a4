/*
 * Window buffer allocator: binary buddies over power-of-two size classes with a free
 * list per class and a bitmap of non-empty lists. Allocation and free take a bounded
 * number of steps (at most one split or merge per class), never a search of the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/window_alloc.h"

#define WALLOC_NIL   UINT32_MAX
enum { WALLOC_NONE = 0, WALLOC_FREE, WALLOC_USED };

static void list_push(struct walloc *a, unsigned c, uint32_t u)
{
	a->prev[u] = WALLOC_NIL;
	a->next[u] = a->head[c];
	if (a->head[c] != WALLOC_NIL)
		a->prev[a->head[c]] = u;
	a->head[c] = u;
	a->nonempty |= 1u << c;
	a->cls[u] = c;
	a->state[u] = WALLOC_FREE;
}

static void list_remove(struct walloc *a, unsigned c, uint32_t u)
{
	if (a->prev[u] != WALLOC_NIL)
		a->next[a->prev[u]] = a->next[u];
	else
		a->head[c] = a->next[u];
	if (a->next[u] != WALLOC_NIL)
		a->prev[a->next[u]] = a->prev[u];
	if (a->head[c] == WALLOC_NIL)
		a->nonempty &= ~(1u << c);
	a->state[u] = WALLOC_NONE;
}

void walloc_reset(struct walloc *a)
{
	unsigned top = a->nclasses - 1;
	uint32_t step = 1u << top;

	memset(a->state, WALLOC_NONE, a->units);
	for (unsigned c = 0; c < a->nclasses; c++)
		a->head[c] = WALLOC_NIL;
	a->nonempty = 0;
	a->used = 0;
	/* Push from the end so the first allocations come from the start of the pool. */
	for (uint32_t u = a->units; u >= step; u -= step)
		list_push(a, top, u - step);
}

int walloc_init(struct walloc *a, uint64_t pool_size, unsigned min_shift, unsigned max_shift)
{
	uint64_t units;

	memset(a, 0, sizeof(*a));
	if (min_shift > max_shift || max_shift >= 40 ||
	    max_shift - min_shift + 1 > WALLOC_MAX_CLASSES || !pool_size ||
	    pool_size % (1ULL << max_shift))
		return -EINVAL;
	units = pool_size >> min_shift;
	if (units >= WALLOC_NIL)
		return -EINVAL;
	a->min_shift = min_shift;
	a->nclasses = max_shift - min_shift + 1;
	a->units = units;
	a->next = calloc(units, sizeof(*a->next));
	a->prev = calloc(units, sizeof(*a->prev));
	a->cls = calloc(units, 1);
	a->state = calloc(units, 1);
	if (!a->next || !a->prev || !a->cls || !a->state) {
		walloc_destroy(a);
		return -ENOMEM;
	}
	walloc_reset(a);
	return 0;
}

void walloc_destroy(struct walloc *a)
{
	free(a->next);
	free(a->prev);
	free(a->cls);
	free(a->state);
	memset(a, 0, sizeof(*a));
}

/* The class index for size bytes, or nclasses when too large. */
static unsigned walloc_class(const struct walloc *a, uint64_t size)
{
	unsigned c = 0;

	while (c < a->nclasses && (1ULL << (a->min_shift + c)) < size)
		c++;
	return c;
}

uint64_t walloc_block_size(const struct walloc *a, uint64_t size)
{
	unsigned c = walloc_class(a, size);

	return c < a->nclasses ? 1ULL << (a->min_shift + c) : 0;
}

uint64_t walloc_max_block(const struct walloc *a)
{
	return 1ULL << (a->min_shift + a->nclasses - 1);
}

int walloc_alloc(struct walloc *a, uint64_t size, uint64_t *off)
{
	unsigned c = walloc_class(a, size), k;
	uint32_t avail, u;

	if (c >= a->nclasses)
		return -E2BIG;
	avail = a->nonempty & ~((1u << c) - 1);
	if (!avail)
		return -ENOMEM;
	k = __builtin_ctz(avail);
	u = a->head[k];
	list_remove(a, k, u);
	while (k > c) {               /* split: the upper halves go to the smaller lists */
		k--;
		list_push(a, k, u + (1u << k));
	}
	a->cls[u] = c;
	a->state[u] = WALLOC_USED;
	a->used += 1ULL << (a->min_shift + c);
	*off = (uint64_t)u << a->min_shift;
	return 0;
}

int walloc_free(struct walloc *a, uint64_t off)
{
	uint64_t unit = off >> a->min_shift;
	unsigned c;
	uint32_t u;

	if (off & ((1ULL << a->min_shift) - 1) || unit >= a->units ||
	    a->state[unit] != WALLOC_USED)
		return -EINVAL;
	u = unit;
	c = a->cls[u];
	a->state[u] = WALLOC_NONE;
	a->used -= 1ULL << (a->min_shift + c);
	while (c + 1 < a->nclasses) {  /* merge with a free buddy of the same class */
		uint32_t buddy = u ^ (1u << c);

		if (a->state[buddy] != WALLOC_FREE || a->cls[buddy] != c)
			break;
		list_remove(a, c, buddy);
		if (buddy < u)
			u = buddy;
		c++;
	}
	list_push(a, c, u);
	return 0;
}
