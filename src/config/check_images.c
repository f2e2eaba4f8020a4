/*
 * What each partition boots: exactly one of a bare-metal ELF image or a Linux kernel,
 * on an engine that can run it, with every file present and (for images) loadable by
 * the same ELF parser the monitor uses.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/bootinfo.h"
#include "common/elf.h"
#include "config/compile.h"

/* Returns the file's size, or -1 after reporting why it cannot be used. */
static long long check_readable(struct diag *d, struct bh_loc at, const char *what,
				const char *pname, const char *path)
{
	struct stat st;

	if (stat(path, &st)) {
		diag_error(d, at, "partition '%s': %s '%s' does not exist", pname, what, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(d, at, "partition '%s': %s '%s' is not a regular file", pname, what, path);
		return -1;
	}
	if (access(path, R_OK)) {
		diag_error(d, at, "partition '%s': %s '%s' is not readable", pname, what, path);
		return -1;
	}
	return (long long)st.st_size;
}

static void check_elf(const struct bh_partition *p, struct diag *d)
{
	long long size = check_readable(d, p->image_at, "image", p->name, p->image);
	const char *why = NULL;
	void *map;
	int fd;

	if (size < 0)
		return;
	if (p->memory && (unsigned long long)size > p->memory) {
		diag_error(d, p->image_at, "partition '%s': image '%s' (%lld bytes) is larger than "
			   "the partition's memory", p->name, p->image, size);
		return;
	}
	fd = open(p->image, O_RDONLY | O_CLOEXEC);
	map = size && fd >= 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	if (fd >= 0)
		close(fd);
	if (map == MAP_FAILED) {
		diag_error(d, p->image_at, "partition '%s': image '%s' is empty or unreadable",
			   p->name, p->image);
		return;
	}
	if (elf_validate(map, (size_t)size, &why))
		diag_error(d, p->image_at, "partition '%s': image '%s' is not an ELF64 x86-64 "
			   "executable: %s", p->name, p->image, why);
	munmap(map, (size_t)size);
}

static void check_partition(const struct bh_partition *p, struct diag *d)
{
	if (!p->name)
		return;
	if (p->image && p->kernel)
		diag_error(d, p->kernel_at, "partition '%s' has both 'image' and 'kernel'; give "
			   "exactly one", p->name);
	else if (!p->image && !p->kernel)
		diag_error(d, p->at, "partition '%s' needs an 'image' (bare-metal ELF) or a 'kernel' "
			   "(Linux)", p->name);
	if (p->engine == BH_ENGINE_QEMU && !p->kernel)
		diag_error(d, p->engine_at, "partition '%s': 'engine: qemu' runs Linux and needs a "
			   "'kernel'", p->name);
	if (p->engine == BH_ENGINE_QEMU && p->isolation == BH_ISOLATION_WINDOW)
		diag_error(d, p->isolation_at, "partition '%s': 'isolation: window' needs bulkhead's "
			   "own monitor; with 'engine: qemu' the only choice is 'shared'", p->name);
	if (p->initrd && !p->kernel)
		diag_error(d, p->initrd_at, "partition '%s': 'initrd' is only used with a 'kernel'",
			   p->name);
	if (p->image)
		check_elf(p, d);
	if (p->kernel)
		check_readable(d, p->kernel_at, "kernel", p->name, p->kernel);
	if (p->initrd)
		check_readable(d, p->initrd_at, "initrd", p->name, p->initrd);
	if (p->cmdline && strlen(p->cmdline) >= BH_CMDLINE_MAX)
		diag_error(d, p->cmdline_at, "partition '%s': cmdline is longer than %d characters",
			   p->name, BH_CMDLINE_MAX - 1);
	if (cfg_valid_at(d, p->health.watchdog_at) && p->health.watchdog_ns < 1000000)
		diag_error(d, p->health.watchdog_at, "partition '%s': watchdog period must be at "
			   "least 1ms", p->name);
	if (p->health.max_restarts_at.line && p->health.on_fault != BH_FAULT_RESTART)
		diag_warning(d, p->health.max_restarts_at, "partition '%s': 'max_restarts' has no "
			     "effect unless 'on_fault: restart'", p->name);
}

void cfg_check_images(struct bh_system *sys, struct diag *d)
{
	for (unsigned i = 0; i < sys->npartitions; i++)
		check_partition(&sys->partitions[i], d);
}
