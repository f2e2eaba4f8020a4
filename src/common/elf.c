/*
 * ELF64 x86-64 executables for bare-metal partitions: one parser for `bulkhead check`
 * and the monitor. The image is untrusted input: every header is copied out before use
 * (no unaligned access) and every offset, size and address is checked without overflow.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "common/elf.h"

/* Does [off, off + size) lie within [0, limit)? Overflow-safe. */
static int elf_range_ok(uint64_t off, uint64_t size, uint64_t limit)
{
	return off <= limit && size <= limit - off;
}

static int elf_fail(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EINVAL;
}

/* Copy program header i out of the image; elf_check_header has bounded the table. */
static void elf_phdr(const uint8_t *img, const Elf64_Ehdr *eh, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, img + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

static int elf_check_header(const uint8_t *img, size_t len, Elf64_Ehdr *eh, const char **why)
{
	if (!img || len < sizeof(*eh))
		return elf_fail(why, "truncated ELF header");
	memcpy(eh, img, sizeof(*eh));
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return elf_fail(why, "not an ELF file (bad magic)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return elf_fail(why, "not a 64-bit ELF file (ELFCLASS64 required)");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return elf_fail(why, "not a little-endian ELF file");
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return elf_fail(why, "unknown ELF version");
	if (eh->e_machine != EM_X86_64)
		return elf_fail(why, "not an x86-64 ELF file (e_machine)");
	if (eh->e_type != ET_EXEC)
		return elf_fail(why, "not an executable (ET_EXEC required; PIE and objects are refused)");
	if (eh->e_phnum == 0)
		return elf_fail(why, "no program headers");
	if (eh->e_phnum == PN_XNUM)
		return elf_fail(why, "too many program headers (PN_XNUM)");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return elf_fail(why, "bad program header size (e_phentsize)");
	if (!elf_range_ok(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len))
		return elf_fail(why, "program headers lie outside the file");
	return 0;
}

/* File-level checks of one PT_LOAD segment. */
static int elf_check_segment(const Elf64_Phdr *ph, size_t len, const char **why)
{
	if (ph->p_filesz > ph->p_memsz)
		return elf_fail(why, "segment file size exceeds its memory size");
	if (!elf_range_ok(ph->p_offset, ph->p_filesz, len))
		return elf_fail(why, "segment data lies outside the file");
	if (ph->p_memsz > UINT64_MAX - ph->p_paddr || ph->p_memsz > UINT64_MAX - ph->p_vaddr)
		return elf_fail(why, "segment address range overflows");
	if (ph->p_vaddr != ph->p_paddr)
		return elf_fail(why, "segment virtual and physical addresses differ "
				"(partitions run identity-mapped)");
	return 0;
}

static int elf_entry_inside(uint64_t entry, const Elf64_Phdr *ph)
{
	return ph->p_memsz && entry >= ph->p_paddr && entry - ph->p_paddr < ph->p_memsz;
}

int elf_validate(const uint8_t *img, size_t len, const char **why)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int loads = 0, entry_ok = 0;
	int ret = elf_check_header(img, len, &eh, why);

	if (ret)
		return ret;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		elf_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		ret = elf_check_segment(&ph, len, why);
		if (ret)
			return ret;
		loads++;
		entry_ok |= elf_entry_inside(eh.e_entry, &ph);
	}
	if (!loads)
		return elf_fail(why, "no PT_LOAD segment");
	if (!entry_ok)
		return elf_fail(why, "entry point lies outside every loaded segment");
	return 0;
}

int elf_load(const uint8_t *img, size_t len, uint8_t *ram, uint64_t ram_size,
	     uint64_t reserved_end, uint64_t *entry, const char **why)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int ret = elf_validate(img, len, why);

	if (ret)
		return ret;
	memcpy(&eh, img, sizeof(eh));
	/* Check every segment against RAM before writing any of them. */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		elf_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_paddr < reserved_end)
			return elf_fail(why, "segment overlaps the reserved boot area");
		if (!elf_range_ok(ph.p_paddr, ph.p_memsz, ram_size))
			return elf_fail(why, "segment lies outside guest RAM");
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		elf_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		memcpy(ram + ph.p_paddr, img + ph.p_offset, ph.p_filesz);
		memset(ram + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	if (entry)
		*entry = eh.e_entry;
	return 0;
}
