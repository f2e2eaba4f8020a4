/*
 * ELF64 x86-64 executables for bare-metal partitions: validation (used by the system
 * file checker) and loading into guest RAM (used by the monitor). One parser serves
 * both, so `bulkhead check` refuses exactly the images the monitor would refuse.
 */
#ifndef BH_ELF_H
#define BH_ELF_H

#include <stddef.h>
#include <stdint.h>

/* Check that img[0..len) is a well-formed ELF64 little-endian x86-64 executable whose
 * program headers lie inside the file and that has at least one PT_LOAD segment.
 * Returns 0, or -EINVAL with *why set to a static message naming the defect. */
int elf_validate(const uint8_t *img, size_t len, const char **why);

/* Validate, then copy every PT_LOAD segment into ram[0..ram_size) (zero-filling
 * p_memsz beyond p_filesz). Every segment must lie within [reserved_end, ram_size).
 * On success *entry is the entry point (which must lie inside a loaded segment).
 * Returns 0, or -EINVAL with *why set; ram may be partly written on failure. */
int elf_load(const uint8_t *img, size_t len, uint8_t *ram, uint64_t ram_size,
	     uint64_t reserved_end, uint64_t *entry, const char **why);

#endif
