/*
 * Boot of a bare-metal image: read the ELF file, load its segments into low RAM above
 * the boot area, and fill the boot information page the guest finds through RDI. A
 * Linux kernel is read here too and loaded by boot_linux.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/bootinfo.h"
#include "bulkhead/platform.h"
#include "common/elf.h"
#include "monitor/mon.h"

#define BOOT_IMAGE_MAX (1ULL << 30)    /* an image or initrd larger than this is a mistake */

static int boot_read_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t done = 0;
	int err = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if ((uint64_t)st.st_size > BOOT_IMAGE_MAX)
		err = -EFBIG;
	else if (!(buf = malloc(st.st_size ? st.st_size : 1)))
		err = -ENOMEM;
	while (!err && done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			err = n < 0 ? -errno : -EIO;    /* the file shrank under us */
		else
			done += n;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*bufp = buf;
	*lenp = done;
	return 0;
}

/* Read the image and check it as `bulkhead check` would, before any KVM set-up.
 * Returns -errno for I/O errors (the caller names the file) or -EINVAL with *why set
 * for a refused image. */
int mon_boot_read(struct mon *m, const char **why)
{
	int ret;

	*why = NULL;
	ret = boot_read_file(m->opt->kernel ? m->opt->kernel : m->opt->image, &m->img,
			     &m->img_len);
	if (ret == -EINVAL)
		*why = "not a regular file";
	else if (!ret && !m->opt->kernel)
		ret = elf_validate(m->img, m->img_len, why);
	return ret;
}

int mon_boot_read_initrd(struct mon *m, const char **why)
{
	int ret;

	*why = NULL;
	if (!m->opt->initrd)
		return 0;
	ret = boot_read_file(m->opt->initrd, &m->initrd, &m->initrd_len);
	if (ret == -EINVAL)
		*why = "not a regular file";
	return ret;
}

void mon_boot_free(struct mon *m)
{
	free(m->img);
	free(m->initrd);
	m->img = m->initrd = NULL;
	m->img_len = m->initrd_len = 0;
}

/* Copy the segments into low RAM (they may not reach the boot area, the MMIO hole or
 * high RAM) and drop the file. */
int mon_boot_load(struct mon *m, const char **why)
{
	int ret = m->opt->kernel ? mon_boot_linux_load(m, why) :
		  elf_load(m->img, m->img_len, m->ram, m->low_size, BH_BOOT_AREA_END, &m->entry,
			   why);

	mon_boot_free(m);
	return ret;
}

int mon_boot_info(struct mon *m)
{
	struct bh_bootinfo *bi = mon_gpa(m, BH_BOOTINFO_ADDR, sizeof(*bi));

	if (!bi)
		return -ENOMEM;
	memset(bi, 0, sizeof(*bi));
	bi->magic = BH_BOOTINFO_MAGIC;
	bi->version = BH_BOOTINFO_VERSION;
	bi->size = sizeof(*bi);
	bi->partition_id = m->opt->id;
	bi->nr_vcpus = 1;
	bi->mem_size = m->mem_size;
	bi->tsc_khz = m->tsc_khz;
	strncpy(bi->name, m->opt->name, BH_NAME_MAX);
	if (m->opt->cmdline)
		strncpy(bi->cmdline, m->opt->cmdline, BH_CMDLINE_MAX - 1);
	mon_regions_bootinfo(m, bi);
	return 0;
}
