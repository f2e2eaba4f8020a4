/* Unit tests for src/monitor/x86/linux_boot.c: reading a bzImage's setup header,
 * placing the kernel, command line and initrd, and the zero page handed to the kernel.
 * Images are built here, field by field, so every refusal has its own case. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "monitor/x86/linux_boot.h"

#define MIB (1u << 20)
#define IMG_LEN (64 * 1024)

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

static uint32_t get32(const uint8_t *p, size_t off)
{
	return (uint32_t)(p[off] | p[off + 1] << 8 | p[off + 2] << 16 | (uint32_t)p[off + 3] << 24);
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

/* A minimal 64-bit bzImage of protocol 2.15, as a Debian kernel has: 27 setup sectors,
 * relocatable, 2 MiB aligned, preferred at 16 MiB, needing 48 MiB. */
static uint8_t *image(void)
{
	uint8_t *img = calloc(1, IMG_LEN);

	img[0x1f1] = 27;                      /* setup_sects */
	put16(img, 0x1fe, 0xaa55);
	img[0x200] = 0xeb;                    /* jmp short: header ends at 0x202 + 0x6a */
	img[0x201] = 0x6a;
	put32(img, 0x202, 0x53726448);        /* "HdrS" */
	put16(img, 0x206, 0x020f);
	img[0x211] = 0x01;                    /* LOADED_HIGH */
	put32(img, 0x22c, 0x7fffffff);        /* initrd_addr_max */
	put32(img, 0x230, 2 * MIB);           /* kernel_alignment */
	img[0x234] = 1;                       /* relocatable */
	put16(img, 0x236, 0x7f);              /* xloadflags: KERNEL_64 and more */
	put32(img, 0x238, 2047);              /* cmdline_size */
	put32(img, 0x258, 16 * MIB);          /* pref_address */
	put32(img, 0x260, 48 * MIB);          /* init_size */
	return img;
}

static void parses_a_64bit_bzimage(void **state)
{
	uint8_t *img = image();
	struct lb_kernel k;
	const char *why = NULL;

	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(k.version, 0x020f);
	assert_int_equal(k.header_end, 0x26c);
	assert_int_equal(k.payload_offset, 28 * 512);
	assert_int_equal(k.payload_len, IMG_LEN - 28 * 512);
	assert_int_equal(k.kernel_alignment, 2 * MIB);
	assert_int_equal(k.pref_address, 16 * MIB);
	assert_int_equal(k.init_size, 48 * MIB);
	assert_int_equal(k.cmdline_size, 2047);
	/* setup_sects 0 means 4 */
	img[0x1f1] = 0;
	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(k.payload_offset, 5 * 512);
	free(img);
}

static void expect_refused(uint8_t *img, size_t len, const char *text)
{
	struct lb_kernel k;
	const char *why = NULL;

	assert_int_equal(lb_parse(img, len, &k, &why), -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why, text));
}

static void refuses_what_cannot_boot(void **state)
{
	uint8_t *img = image();

	expect_refused(img, 0x100, "not a bzImage");              /* too short */
	img[0x202] = 'X';
	expect_refused(img, IMG_LEN, "not a bzImage");            /* no HdrS */
	free(img);
	img = image();
	put16(img, 0x1fe, 0);
	expect_refused(img, IMG_LEN, "not a bzImage");            /* no boot flag */
	free(img);
	img = image();
	put16(img, 0x206, 0x020b);
	expect_refused(img, IMG_LEN, "older than 2.12");
	free(img);
	img = image();
	img[0x211] = 0;
	expect_refused(img, IMG_LEN, "zImage");
	free(img);
	img = image();
	put16(img, 0x236, 0x7e);
	expect_refused(img, IMG_LEN, "not a 64-bit kernel");
	free(img);
	img = image();
	img[0x201] = 0;                                           /* header ends before init_size */
	expect_refused(img, IMG_LEN, "header length");
	free(img);
	img = image();
	expect_refused(img, 28 * 512, "truncated");               /* setup only */
	put32(img, 0x230, 3 * MIB);
	expect_refused(img, IMG_LEN, "power of two");
	free(img);
}

static void places_kernel_and_initrd(void **state)
{
	uint8_t *img = image();
	struct lb_kernel k;
	struct lb_layout l;
	const char *why = NULL;

	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 100, 10 * MIB + 5, &l, &why), 0);
	assert_int_equal(l.kernel, 16 * MIB);
	assert_int_equal(l.entry, 16 * MIB + 0x200);
	assert_int_equal(l.zero_page, 0x50000);
	assert_int_equal(l.cmdline, 0x51000);
	/* as high as possible, page aligned, ending at or below the end of RAM */
	assert_int_equal(l.initrd, (256 * MIB - (10 * MIB + 5)) / 4096 * 4096);
	assert_true(l.initrd + 10 * MIB + 5 <= 256 * MIB);
	/* initrd_addr_max below the end of RAM caps it */
	put32(img, 0x22c, 128 * MIB - 1);
	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 0, 4096, &l, &why), 0);
	assert_int_equal(l.initrd, 128 * MIB - 4096);
	/* no initrd */
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 0, 0, &l, &why), 0);
	assert_int_equal(l.initrd, 0);
	/* an odd preferred address is rounded up to the alignment */
	put32(img, 0x258, 17 * MIB);
	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 0, 0, &l, &why), 0);
	assert_int_equal(l.kernel, 18 * MIB);
	free(img);
}

static void refuses_what_does_not_fit(void **state)
{
	uint8_t *img = image();
	struct lb_kernel k;
	struct lb_layout l;
	const char *why = NULL;

	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	/* 16 MiB + 48 MiB of init_size need 64 MiB */
	assert_int_equal(lb_place(&k, 63 * MIB, 0x50000, 0x51000, 0, 0, &l, &why), -ENOSPC);
	assert_non_null(strstr(why, "kernel"));
	assert_int_equal(lb_place(&k, 64 * MIB, 0x50000, 0x51000, 0, 0, &l, &why), 0);
	/* the initrd may not overlap the kernel's memory */
	assert_int_equal(lb_place(&k, 64 * MIB, 0x50000, 0x51000, 0, 4096, &l, &why), -ENOSPC);
	assert_non_null(strstr(why, "initrd"));
	assert_int_equal(lb_place(&k, 80 * MIB, 0x50000, 0x51000, 0, 16 * MIB, &l, &why), 0);
	assert_int_equal(l.initrd, 64 * MIB);
	assert_int_equal(lb_place(&k, 80 * MIB, 0x50000, 0x51000, 0, 16 * MIB + 1, &l, &why),
			 -ENOSPC);
	/* a command line longer than cmdline_size */
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 2048, 0, &l, &why), -E2BIG);
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 2047, 0, &l, &why), 0);
	free(img);
}

static void fills_the_zero_page(void **state)
{
	uint8_t *img = image(), zp[LB_ZERO_PAGE_SIZE];
	const struct lb_e820 map[] = {
		{ 0, 0x9fc00, LB_E820_RAM },
		{ 0xf0000, 0x10000, LB_E820_RESERVED },
		{ MIB, 255 * MIB, LB_E820_RAM },
		{ 1ull << 32, 1ull << 30, LB_E820_RAM },
	};
	struct lb_kernel k;
	struct lb_layout l;
	const char *why = NULL;

	img[0x250] = 0x5a;                    /* a byte inside the header, beyond the fields */
	assert_int_equal(lb_parse(img, IMG_LEN, &k, &why), 0);
	assert_int_equal(lb_place(&k, 256 * MIB, 0x50000, 0x51000, 10, 8 * MIB, &l, &why), 0);
	memset(zp, 0xee, sizeof(zp));
	lb_zero_page(zp, img, &k, &l, 8 * MIB, map, 4);
	/* the header is copied from 0x1f1 to its end; nothing after it */
	assert_int_equal(zp[0x1f1], 27);
	assert_int_equal(get32(zp, 0x202), 0x53726448);
	assert_int_equal(zp[0x250], 0x5a);
	assert_int_equal(zp[0x26c], 0);
	assert_int_equal(zp[0], 0);           /* the rest is zeroed */
	/* the loader's fields */
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(zp[0x1fa] | zp[0x1fb] << 8, 0xffff);
	assert_int_equal(get32(zp, 0x228), 0x51000);
	assert_int_equal(get32(zp, 0x0c8), 0);
	assert_int_equal(get32(zp, 0x218), l.initrd);
	assert_int_equal(get32(zp, 0x21c), 8 * MIB);
	assert_int_equal(get32(zp, 0x0c0), 0);
	/* e820 */
	assert_int_equal(zp[0x1e8], 4);
	assert_int_equal(get64(zp, 0x2d0 + 3 * 20), 1ull << 32);
	assert_int_equal(get64(zp, 0x2d0 + 3 * 20 + 8), 1ull << 30);
	assert_int_equal(get32(zp, 0x2d0 + 1 * 20 + 16), LB_E820_RESERVED);
	assert_int_equal(get32(zp, 0x2d0 + 2 * 20 + 16), LB_E820_RAM);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_a_64bit_bzimage),
		cmocka_unit_test(refuses_what_cannot_boot),
		cmocka_unit_test(places_kernel_and_initrd),
		cmocka_unit_test(refuses_what_does_not_fit),
		cmocka_unit_test(fills_the_zero_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
