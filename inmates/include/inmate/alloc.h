/*
 * Memory for device rings and buffers: a bump allocator over the RAM the image does not
 * use (from the end of the image to the end of low RAM). Everything is allocated at
 * start-up and never freed, as the partition's resources are.
 */
#ifndef INMATE_ALLOC_H
#define INMATE_ALLOC_H

#include <stddef.h>

#define ALLOC_PAGE 4096u

/* `size` zeroed bytes aligned to `align` (a power of two; 0 means 16), or NULL when the
 * partition's RAM is exhausted. The address is also the guest-physical address (the
 * runtime runs on the monitor's identity map), so it can be handed to a device. */
void *mem_alloc(size_t size, size_t align);
/* Bytes still free (before alignment). */
size_t mem_free_bytes(void);

#endif
