/*
 * The Linux x86 boot protocol, 64-bit entry (see linux_boot.h). Offsets are those of
 * struct boot_params and its setup header at 0x1f1, which the file and the zero page
 * share.
 */
#include <errno.h>
#include <string.h>

#include "monitor/x86/linux_boot.h"

#define HDR_SETUP_SECTS     0x1f1
#define HDR_VID_MODE        0x1fa
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGN    0x230
#define HDR_RELOCATABLE     0x234
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define HDR_MIN_END         0x264       /* a 2.12 header reaches at least init_size */

#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_E820_ENTRY_SIZE   20

#define HDRS_MAGIC          0x53726448u /* "HdrS" */
#define BOOT_FLAG           0xaa55u
#define LOADED_HIGH         0x01u
#define XLF_KERNEL_64       0x0001u
#define LOADER_UNDEFINED    0xffu
#define VID_MODE_NORMAL     0xffffu
#define ENTRY64_OFFSET      0x200u      /* startup_64, from the load address */
#define SECTOR              512u
#define PAGE                4096u

static uint16_t get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return get16(p, off) | (uint32_t)get16(p, off + 2) << 16;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

static int fail(const char **why, const char *what)
{
	*why = what;
	return -EINVAL;
}

int lb_parse(const uint8_t *img, size_t len, struct lb_kernel *k, const char **why)
{
	unsigned setup_sects;

	memset(k, 0, sizeof(*k));
	if (len < HDR_MIN_END || get32(img, HDR_MAGIC) != HDRS_MAGIC ||
	    get16(img, HDR_BOOT_FLAG) != BOOT_FLAG)
		return fail(why, "not a bzImage (no 'HdrS' setup header)");
	k->version = get16(img, HDR_VERSION);
	if (k->version < LB_MIN_VERSION)
		return fail(why, "boot protocol older than 2.12: no 64-bit entry point");
	k->loadflags = img[HDR_LOADFLAGS];
	k->xloadflags = get16(img, HDR_XLOADFLAGS);
	if (!(k->loadflags & LOADED_HIGH))
		return fail(why, "not a bzImage (a zImage loads low)");
	if (!(k->xloadflags & XLF_KERNEL_64))
		return fail(why, "not a 64-bit kernel (no 64-bit entry point)");
	k->header_end = HDR_JUMP + 2 + img[HDR_JUMP + 1];
	if (k->header_end < HDR_MIN_END || k->header_end > len)
		return fail(why, "setup header length is out of range");
	setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	k->payload_offset = (size_t)(setup_sects + 1) * SECTOR;
	if (k->payload_offset >= len)
		return fail(why, "image is truncated: no protected-mode kernel after the setup");
	k->payload_len = len - k->payload_offset;
	k->kernel_alignment = get32(img, HDR_KERNEL_ALIGN);
	if (!img[HDR_RELOCATABLE])
		k->kernel_alignment = 0;
	else if (!k->kernel_alignment || (k->kernel_alignment & (k->kernel_alignment - 1)))
		return fail(why, "kernel_alignment is not a power of two");
	k->pref_address = get64(img, HDR_PREF_ADDRESS);
	k->init_size = get32(img, HDR_INIT_SIZE);
	k->initrd_addr_max = get32(img, HDR_INITRD_ADDR_MAX);
	k->cmdline_size = get32(img, HDR_CMDLINE_SIZE);
	if (k->init_size < k->payload_len)
		k->init_size = (uint32_t)k->payload_len;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a ? (v + a - 1) & ~(a - 1) : v;
}

int lb_place(const struct lb_kernel *k, uint64_t low_end, uint64_t zero_page, uint64_t cmdline,
	     size_t cmdline_len, uint64_t initrd_size, struct lb_layout *l, const char **why)
{
	uint64_t top;

	memset(l, 0, sizeof(*l));
	if (cmdline_len > k->cmdline_size) {
		*why = "command line is longer than the kernel accepts (cmdline_size)";
		return -E2BIG;
	}
	/* A relocatable kernel goes at its preferred address rounded to its alignment;
	 * a fixed one exactly there. */
	l->kernel = align_up(k->pref_address, k->kernel_alignment);
	l->entry = l->kernel + ENTRY64_OFFSET;
	l->zero_page = zero_page;
	l->cmdline = cmdline;
	if (l->kernel + k->init_size > low_end || l->kernel + k->init_size < l->kernel) {
		*why = "too little memory below 3 GiB for the kernel (init_size from its load address)";
		return -ENOSPC;
	}
	if (!initrd_size)
		return 0;
	/* The initrd goes as high as it may: its last byte at or below initrd_addr_max and
	 * below the end of low RAM, page aligned, above the kernel's memory. */
	top = low_end;
	if ((uint64_t)k->initrd_addr_max + 1 < top)
		top = (uint64_t)k->initrd_addr_max + 1;
	if (initrd_size > top || (top - initrd_size) / PAGE * PAGE < l->kernel + k->init_size) {
		*why = "too little memory for the initrd above the kernel and below initrd_addr_max";
		return -ENOSPC;
	}
	l->initrd = (top - initrd_size) / PAGE * PAGE;
	return 0;
}

void lb_zero_page(uint8_t *zp, const uint8_t *img, const struct lb_kernel *k,
		  const struct lb_layout *l, uint64_t initrd_size, const struct lb_e820 *map,
		  unsigned nmap)
{
	memset(zp, 0, LB_ZERO_PAGE_SIZE);
	memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, k->header_end - HDR_SETUP_SECTS);
	put16(zp, HDR_VID_MODE, VID_MODE_NORMAL);
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put32(zp, HDR_CMD_LINE_PTR, (uint32_t)l->cmdline);
	put32(zp, BP_EXT_CMD_LINE_PTR, (uint32_t)(l->cmdline >> 32));
	put32(zp, HDR_RAMDISK_IMAGE, (uint32_t)l->initrd);
	put32(zp, HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(zp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(l->initrd >> 32));
	put32(zp, BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	if (nmap > LB_E820_MAX)
		nmap = LB_E820_MAX;
	zp[BP_E820_ENTRIES] = (uint8_t)nmap;
	for (unsigned i = 0; i < nmap; i++) {
		size_t off = BP_E820_TABLE + (size_t)i * BP_E820_ENTRY_SIZE;

		put64(zp, off, map[i].addr);
		put64(zp, off + 8, map[i].size);
		put32(zp, off + 16, map[i].type);
	}
}
