/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry: what a
 * bzImage's setup header says, where its parts go in a partition's RAM, and the zero
 * page (struct boot_params) the kernel finds in RSI. Pure computation on buffers, so it
 * is unit-tested without a VM; the monitor copies the results into guest memory.
 */
#ifndef BH_MON_LINUX_BOOT_H
#define BH_MON_LINUX_BOOT_H

#include <stddef.h>
#include <stdint.h>

#define LB_ZERO_PAGE_SIZE   4096
#define LB_MIN_VERSION      0x020c      /* 2.12: xloadflags, the 64-bit entry */
#define LB_E820_MAX         128         /* entries the zero page holds */

enum lb_e820_type { LB_E820_RAM = 1, LB_E820_RESERVED = 2 };

struct lb_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* What the setup header says. */
struct lb_kernel {
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;                 /* memory the kernel needs from its load address */
	uint32_t initrd_addr_max;           /* highest address the initrd's last byte may have */
	uint32_t cmdline_size;              /* longest command line, without its NUL */
	size_t header_end;                  /* offset of the first byte after the header */
	size_t payload_offset;              /* the protected-mode kernel in the file */
	size_t payload_len;
};

/* Where things go, guest-physical. */
struct lb_layout {
	uint64_t kernel;                    /* the protected-mode kernel's load address */
	uint64_t entry;                     /* its 64-bit entry point */
	uint64_t zero_page, cmdline;
	uint64_t initrd;                    /* 0 without an initrd */
};

/* Reads and checks a bzImage's setup header. Returns 0, or -EINVAL with *why saying
 * what is wrong (not a bzImage, protocol too old, no 64-bit entry, truncated). */
int lb_parse(const uint8_t *img, size_t len, struct lb_kernel *k, const char **why);

/* Places the kernel, the command line and the initrd in low RAM [0, low_end), with the
 * zero page and command line at the fixed addresses given. Returns 0, or -ENOSPC /
 * -E2BIG with *why. */
int lb_place(const struct lb_kernel *k, uint64_t low_end, uint64_t zero_page, uint64_t cmdline,
	     size_t cmdline_len, uint64_t initrd_size, struct lb_layout *l, const char **why);

/* Fills the zero page: the image's setup header, the loader's fields, the e820 map. */
void lb_zero_page(uint8_t *zp, const uint8_t *img, const struct lb_kernel *k,
		  const struct lb_layout *l, uint64_t initrd_size, const struct lb_e820 *map,
		  unsigned nmap);

#endif
