/*
 * Unit tests for src/common/elf.c: a valid image loads, and every defect the loader
 * must refuse is refused with its own message. Test images are built in memory.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/elf.h"

#define RAM_SIZE     (4u << 20)
#define RESERVED_END 0x100000u
#define LOAD_ADDR    0x100000u
#define TEXT_OFF     0x200u
#define TEXT_SIZE    16u
#define BSS_SIZE     0x100u
#define IMG_SIZE     (TEXT_OFF + TEXT_SIZE)

/* An image with one PT_LOAD (16 bytes of text + bss) and one PT_NOTE, entry at its
 * start. Each test breaks one thing in it. */
struct image {
	uint8_t    bytes[IMG_SIZE];
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
};

static void image_build(struct image *im)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_entry = LOAD_ADDR;
	im->eh.e_phoff = sizeof(Elf64_Ehdr);
	im->eh.e_ehsize = sizeof(Elf64_Ehdr);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 2;
	im->ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = TEXT_OFF, .p_filesz = 4 };
	im->ph[1] = (Elf64_Phdr){
		.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = TEXT_OFF,
		.p_vaddr = LOAD_ADDR, .p_paddr = LOAD_ADDR, .p_filesz = TEXT_SIZE,
		.p_memsz = TEXT_SIZE + BSS_SIZE, .p_align = 0x1000,
	};
	for (unsigned i = 0; i < TEXT_SIZE; i++)
		im->bytes[TEXT_OFF + i] = 0xa0 + i;
}

/* Serialise the headers into bytes[] (after a test changed them); program headers a
 * test moved past the end of the file are not written anywhere. */
static const uint8_t *image_bytes(struct image *im)
{
	memcpy(im->bytes, &im->eh, sizeof(im->eh));
	if (im->eh.e_phoff <= IMG_SIZE - sizeof(im->ph))
		memcpy(im->bytes + im->eh.e_phoff, im->ph, sizeof(im->ph));
	return im->bytes;
}

static uint8_t *ram_new(void)
{
	uint8_t *ram = malloc(RAM_SIZE);

	assert_non_null(ram);
	memset(ram, 0x5a, RAM_SIZE);
	return ram;
}

/* Load im (len bytes of it) and expect it refused with a message containing `msg`;
 * RAM must be untouched (every check precedes the copy). */
static void expect_refused_len(struct image *im, size_t len, const char *msg)
{
	const uint8_t *img = image_bytes(im);
	uint8_t *ram = ram_new();
	const char *why = NULL;
	uint64_t entry = 0;

	assert_int_equal(elf_load(img, len, ram, RAM_SIZE, RESERVED_END, &entry, &why), -EINVAL);
	assert_non_null(why);
	if (!strstr(why, msg))
		fail_msg("message '%s' does not contain '%s'", why, msg);
	assert_int_equal(ram[LOAD_ADDR], 0x5a);
	assert_int_equal(ram[LOAD_ADDR + TEXT_SIZE], 0x5a);
	free(ram);
}

static void expect_refused(struct image *im, const char *msg)
{
	expect_refused_len(im, IMG_SIZE, msg);
}

/* Validation alone (what `bulkhead check` runs) must agree on file-level defects. */
static void expect_invalid(struct image *im, const char *msg)
{
	const char *why = NULL;

	assert_int_equal(elf_validate(image_bytes(im), IMG_SIZE, &why), -EINVAL);
	assert_non_null(why);
	if (!strstr(why, msg))
		fail_msg("message '%s' does not contain '%s'", why, msg);
	expect_refused(im, msg);
}

static void test_valid_loads(void **state)
{
	struct image im;
	uint8_t *ram = ram_new();
	const char *why = "unset";
	uint64_t entry = 0;

	image_build(&im);
	assert_int_equal(elf_validate(image_bytes(&im), IMG_SIZE, &why), 0);
	assert_int_equal(elf_load(im.bytes, IMG_SIZE, ram, RAM_SIZE, RESERVED_END, &entry, &why), 0);
	assert_int_equal(entry, LOAD_ADDR);
	assert_memory_equal(ram + LOAD_ADDR, im.bytes + TEXT_OFF, TEXT_SIZE);
	for (unsigned i = 0; i < BSS_SIZE; i++)
		assert_int_equal(ram[LOAD_ADDR + TEXT_SIZE + i], 0);     /* bss zeroed */
	assert_int_equal(ram[LOAD_ADDR + TEXT_SIZE + BSS_SIZE], 0x5a);   /* and no more */
	assert_int_equal(ram[LOAD_ADDR - 1], 0x5a);
	free(ram);
}

/* The image is untrusted: it may sit at any alignment in memory. */
static void test_valid_unaligned_buffer(void **state)
{
	struct image im;
	uint8_t *buf = malloc(IMG_SIZE + 1), *ram = ram_new();
	const char *why = NULL;
	uint64_t entry = 0;

	assert_non_null(buf);
	image_build(&im);
	memcpy(buf + 1, image_bytes(&im), IMG_SIZE);
	assert_int_equal(elf_load(buf + 1, IMG_SIZE, ram, RAM_SIZE, RESERVED_END, &entry, &why), 0);
	assert_int_equal(entry, LOAD_ADDR);
	free(buf);
	free(ram);
}

static void test_segment_at_ram_end_loads(void **state)
{
	struct image im;
	uint8_t *ram = ram_new();
	const char *why = NULL;
	uint64_t entry = 0;

	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = RAM_SIZE - im.ph[1].p_memsz;
	im.eh.e_entry = im.ph[1].p_paddr;
	assert_int_equal(elf_load(image_bytes(&im), IMG_SIZE, ram, RAM_SIZE, RESERVED_END,
				  &entry, &why), 0);
	assert_int_equal(ram[RAM_SIZE - 1], 0);
	free(ram);
}

static void test_truncated_header(void **state)
{
	struct image im;
	const char *why = NULL;

	image_build(&im);
	expect_refused_len(&im, sizeof(Elf64_Ehdr) - 1, "truncated");
	assert_int_equal(elf_validate(image_bytes(&im), 0, &why), -EINVAL);
	assert_int_equal(elf_validate(NULL, 0, &why), -EINVAL);
}

static void test_bad_magic(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_ident[EI_MAG1] = 'X';
	expect_invalid(&im, "bad magic");
}

static void test_elf32(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_invalid(&im, "64-bit");
}

static void test_big_endian(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_invalid(&im, "little-endian");
}

static void test_wrong_machine(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_machine = EM_AARCH64;
	expect_invalid(&im, "x86-64");
}

static void test_not_exec(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_type = ET_DYN;
	expect_invalid(&im, "ET_EXEC");
	im.eh.e_type = ET_REL;
	expect_invalid(&im, "ET_EXEC");
}

static void test_phdrs_outside_file(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_phoff = IMG_SIZE - sizeof(Elf64_Phdr);   /* second header past the end */
	expect_refused(&im, "program headers");
	image_build(&im);
	im.eh.e_phoff = UINT64_MAX - 8;                   /* offset + size wraps */
	expect_invalid(&im, "program headers");
	image_build(&im);
	im.eh.e_phnum = 0;
	expect_invalid(&im, "no program headers");
	image_build(&im);
	im.eh.e_phentsize = sizeof(Elf64_Phdr) - 8;
	expect_invalid(&im, "e_phentsize");
}

static void test_segment_outside_ram(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = RAM_SIZE - TEXT_SIZE;   /* bss crosses the end */
	im.eh.e_entry = im.ph[1].p_paddr;
	expect_refused(&im, "outside guest RAM");
	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = 0xc0000000u;            /* in the MMIO hole */
	im.eh.e_entry = im.ph[1].p_paddr;
	expect_refused(&im, "outside guest RAM");
}

static void test_segment_in_boot_area(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = RESERVED_END - 0x1000;
	im.eh.e_entry = im.ph[1].p_paddr;
	expect_refused(&im, "boot area");
	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = 0;
	im.eh.e_entry = 0;
	expect_refused(&im, "boot area");
}

static void test_filesz_over_memsz(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_memsz = TEXT_SIZE - 1;
	expect_invalid(&im, "file size exceeds");
}

static void test_data_beyond_file(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_filesz = TEXT_SIZE + 1;
	im.ph[1].p_memsz = TEXT_SIZE + 1;
	expect_invalid(&im, "outside the file");
	image_build(&im);
	im.ph[1].p_offset = UINT64_MAX - 4;     /* offset + filesz wraps */
	expect_invalid(&im, "outside the file");
}

static void test_address_overflow(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_paddr = im.ph[1].p_vaddr = UINT64_MAX - 0x10;
	im.eh.e_entry = im.ph[1].p_paddr;
	expect_invalid(&im, "overflows");
	/* A huge p_memsz that stays within 64 bits is still refused against RAM. */
	image_build(&im);
	im.ph[1].p_memsz = UINT64_MAX - LOAD_ADDR;
	expect_refused(&im, "outside guest RAM");
}

static void test_vaddr_differs(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_vaddr = 0xffffffff80000000ull;
	expect_invalid(&im, "identity");
}

static void test_entry_outside_segments(void **state)
{
	struct image im;

	image_build(&im);
	im.eh.e_entry = LOAD_ADDR + TEXT_SIZE + BSS_SIZE;   /* one past the end */
	expect_invalid(&im, "entry point");
	image_build(&im);
	im.eh.e_entry = LOAD_ADDR - 1;
	expect_invalid(&im, "entry point");
}

static void test_no_pt_load(void **state)
{
	struct image im;

	image_build(&im);
	im.ph[1].p_type = PT_NOTE;
	expect_invalid(&im, "no PT_LOAD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_loads),
		cmocka_unit_test(test_valid_unaligned_buffer),
		cmocka_unit_test(test_segment_at_ram_end_loads),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_elf32),
		cmocka_unit_test(test_big_endian),
		cmocka_unit_test(test_wrong_machine),
		cmocka_unit_test(test_not_exec),
		cmocka_unit_test(test_phdrs_outside_file),
		cmocka_unit_test(test_segment_outside_ram),
		cmocka_unit_test(test_segment_in_boot_area),
		cmocka_unit_test(test_filesz_over_memsz),
		cmocka_unit_test(test_data_beyond_file),
		cmocka_unit_test(test_address_overflow),
		cmocka_unit_test(test_vaddr_differs),
		cmocka_unit_test(test_entry_outside_segments),
		cmocka_unit_test(test_no_pt_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
