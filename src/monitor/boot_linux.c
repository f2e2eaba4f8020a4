/*
 * Boot of a Linux kernel (--kernel, --initrd): the 64-bit boot protocol. The bzImage's
 * protected-mode part goes where its header asks, the initrd as high as it may, then
 * the command line, the zero page (with an e820 map of the partition's memory), and in
 * the BIOS area, where Linux looks for its CPUs and interrupt lines, ACPI tables and an
 * MP table (for kernels built with MP-table support but without ACPI). The computations
 * are in x86/linux_boot.c, x86/acpi.c and x86/mptable.c; this file puts their results
 * into guest memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"
#include "monitor/x86/acpi.h"
#include "monitor/x86/linux_boot.h"
#include "monitor/x86/mptable.h"

/* In the boot area, clear of the GDT, page tables and stack (platform.h). */
#define LINUX_ZERO_PAGE   0x50000UL
#define LINUX_CMDLINE     0x51000UL
#define LINUX_CMDLINE_MAX 0x8000UL
/* The legacy BIOS area: reserved in the e820 map, searched for the ACPI RSDP (on 16-byte
 * boundaries from 0xE0000) and the MP table's floating pointer (0xF0000 and up). */
#define LINUX_EBDA        0x9fc00UL
#define LINUX_BIOS_AREA   0xe0000UL
#define LINUX_ACPI_AREA   0xe0000UL
#define LINUX_MPTABLE_AREA 0xf0000UL
#define LINUX_BIOS_END    0x100000UL
#define LINUX_PCI_PIN_BASE 16          /* INTA# of slot s: IOAPIC pin 16 + s % 8 */
#define LINUX_IOAPIC_PINS 24
#define LINUX_RTC_CENTURY 0x32         /* rtc.c keeps the century there */

static unsigned e820_map(const struct mon *m, struct lb_e820 *map)
{
	unsigned n = 0;

	map[n++] = (struct lb_e820){ 0, LINUX_EBDA, LB_E820_RAM };
	map[n++] = (struct lb_e820){ LINUX_EBDA, 0xa0000 - LINUX_EBDA, LB_E820_RESERVED };
	map[n++] = (struct lb_e820){ LINUX_BIOS_AREA, LINUX_BIOS_END - LINUX_BIOS_AREA,
				     LB_E820_RESERVED };
	map[n++] = (struct lb_e820){ LINUX_BIOS_END, m->low_size - LINUX_BIOS_END, LB_E820_RAM };
	if (m->high_size)
		map[n++] = (struct lb_e820){ BH_HIGH_RAM_BASE, m->high_size, LB_E820_RAM };
	/* Shared regions and channels are not RAM for the kernel to allocate from. */
	for (unsigned i = 0; i < m->opt->nregions && n < LB_E820_MAX; i++)
		map[n++] = (struct lb_e820){ m->opt->regions[i].gpa, m->opt->regions[i].size,
					     LB_E820_RESERVED };
	return n;
}

static int place_mptable(struct mon *m)
{
	struct mpt_config c = {
		.ncpus = m->nvcpus, .lapic_addr = BH_LAPIC_ADDR, .ioapic_addr = BH_IOAPIC_ADDR,
		.ioapic_pins = LINUX_IOAPIC_PINS, .pci_pin_base = LINUX_PCI_PIN_BASE,
	};
	size_t len = LINUX_BIOS_END - LINUX_MPTABLE_AREA;
	uint8_t *buf = mon_gpa(m, LINUX_MPTABLE_AREA, len);

	for (unsigned i = 0; i < m->opt->ndevices; i++)
		c.pci_slots |= 1u << m->opt->devices[i].slot;
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, len);
	return mpt_build(buf, len, LINUX_MPTABLE_AREA, &c) ? 0 : -E2BIG;
}

/* The ACPI tables a kernel without MP-table support (Debian's cloud kernel) needs for
 * the IOAPIC, the PCI root bridge's interrupt routing and power-off. */
static int place_acpi(struct mon *m)
{
	struct acpi_config c = {
		.ncpus = m->nvcpus, .lapic_addr = BH_LAPIC_ADDR, .ioapic_addr = BH_IOAPIC_ADDR,
		/* the next APIC ID after the vCPUs' (0..n-1), as in the MP table */
		.ioapic_id = (uint8_t)m->nvcpus, .ioapic_pins = LINUX_IOAPIC_PINS,
		.pci_pin_base = LINUX_PCI_PIN_BASE, .sci_irq = BH_ACPI_SCI_IRQ,
		.rtc_century = LINUX_RTC_CENTURY,
		.pm1a_evt = BH_ACPI_PM1A_EVT, .pm1a_cnt = BH_ACPI_PM1A_CNT,
		.reset_port = BH_ACPI_RESET, .reset_value = BH_ACPI_RESET_VALUE,
		.pci_mmio_base = BH_PCI_MMIO_BASE, .pci_mmio_end = BH_PCI_MMIO_END - 1,
		.pvpanic_port = BH_PVPANIC_PORT,
	};
	size_t len = LINUX_MPTABLE_AREA - LINUX_ACPI_AREA;
	uint8_t *buf = mon_gpa(m, LINUX_ACPI_AREA, len);

	if (!buf)
		return -ENOMEM;
	memset(buf, 0, len);
	return acpi_build(buf, len, LINUX_ACPI_AREA, &c) ? 0 : -E2BIG;
}

/* The kernel's command line: --cmdline, then where the system-control device is. The
 * guest image's init writes its command's exit status there (docs/guest.md); Linux
 * itself cannot power a PC without ACPI off. Firecracker names its virtio-mmio devices
 * to the kernel the same way. */
static char *linux_cmdline(const struct mon *m)
{
	const char *user = m->opt->cmdline ? m->opt->cmdline : "";
	char *s = NULL;

	if (asprintf(&s, "%s%sbh.sysctl=0x%x", user, *user ? " " : "", BH_SYSCTL_PORT) < 0)
		return NULL;
	return s;
}

static int boot_linux_place(struct mon *m, const char *cmdline, const char **why)
{
	size_t cmdline_len = strlen(cmdline);
	struct lb_e820 map[LB_E820_MAX];
	struct lb_kernel k;
	struct lb_layout l;
	uint8_t *zp, *dst;
	int ret;

	ret = lb_parse(m->img, m->img_len, &k, why);
	if (!ret && cmdline_len >= LINUX_CMDLINE_MAX) {
		*why = "command line too long";
		ret = -E2BIG;
	}
	if (!ret)
		ret = lb_place(&k, m->low_size, LINUX_ZERO_PAGE, LINUX_CMDLINE, cmdline_len,
			       m->initrd_len, &l, why);
	if (ret)
		return ret;
	dst = mon_gpa(m, l.kernel, k.payload_len);
	zp = mon_gpa(m, l.zero_page, LB_ZERO_PAGE_SIZE);
	if (!dst || !zp || !mon_gpa(m, l.cmdline, cmdline_len + 1) ||
	    (m->initrd_len && !mon_gpa(m, l.initrd, m->initrd_len))) {
		*why = "kernel, command line or initrd outside guest RAM";
		return -ENOSPC;
	}
	memcpy(dst, m->img + k.payload_offset, k.payload_len);
	memcpy(mon_gpa(m, l.cmdline, cmdline_len + 1), cmdline, cmdline_len + 1);
	if (m->initrd_len)
		memcpy(mon_gpa(m, l.initrd, m->initrd_len), m->initrd, m->initrd_len);
	lb_zero_page(zp, m->img, &k, &l, m->initrd_len, map, e820_map(m, map));
	m->entry = l.entry;
	m->boot_params = l.zero_page;
	ret = place_mptable(m);
	if (ret) {
		*why = "the MP table does not fit the BIOS area";
		return ret;
	}
	ret = place_acpi(m);
	if (ret)
		*why = "the ACPI tables do not fit the BIOS area";
	return ret;
}

int mon_boot_linux_load(struct mon *m, const char **why)
{
	char *cmdline = linux_cmdline(m);
	int ret;

	if (!cmdline)
		return -ENOMEM;
	ret = boot_linux_place(m, cmdline, why);
	free(cmdline);
	return ret;
}
