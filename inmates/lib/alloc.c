/*
 * The bump allocator behind mem_alloc: RAM from the page after the image (.bss
 * included) up to the end of low RAM as the boot information gives it.
 */
#include <bulkhead/platform.h>
#include <inmate/alloc.h>
#include <inmate/runtime.h>
#include <inmate/string.h>

#define ALLOC_DEFAULT_ALIGN 16u

extern char __image_end[];

static uintptr_t alloc_next, alloc_end;

static void alloc_init(void)
{
	uint64_t ram = bh_bootinfo()->mem_size;

	if (alloc_end)
		return;
	if (ram > BH_RAM_LOW_MAX)
		ram = BH_RAM_LOW_MAX;
	alloc_next = ((uintptr_t)__image_end + ALLOC_PAGE - 1) & ~(uintptr_t)(ALLOC_PAGE - 1);
	alloc_end = ram > alloc_next ? ram : alloc_next;
}

void *mem_alloc(size_t size, size_t align)
{
	uintptr_t p;

	alloc_init();
	if (!align)
		align = ALLOC_DEFAULT_ALIGN;
	if (align & (align - 1))
		return NULL;
	p = (alloc_next + align - 1) & ~(uintptr_t)(align - 1);
	if (p < alloc_next || size > alloc_end - p)
		return NULL;
	alloc_next = p + size;
	/* Fresh RAM reads as zero, but after a reset request it may not be fresh. */
	memset((void *)p, 0, size);
	return (void *)p;
}

size_t mem_free_bytes(void)
{
	alloc_init();
	return alloc_end - alloc_next;
}
