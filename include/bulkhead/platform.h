/*
 * The virtual platform a bulkhead partition sees: guest-physical layout, I/O ports and
 * the system-control device. Shared by the monitor (which builds it) and the inmate
 * runtime (which uses it), so both sides agree on every address.
 */
#ifndef BULKHEAD_PLATFORM_H
#define BULKHEAD_PLATFORM_H

/* Guest-physical layout. RAM starts at 0; the first megabyte holds the boot structures
 * the monitor writes (GDT, page tables, boot information, initial stack) and is off
 * limits to images. Images are linked at BH_IMAGE_BASE or above. */
#define BH_GDT_ADDR          0x1000UL   /* flat GDT: null, code64 (0x08), data (0x10) */
#define BH_BOOTINFO_ADDR     0x2000UL   /* struct bh_bootinfo, one 4 KiB page */
#define BH_PML4_ADDR         0x3000UL
#define BH_PDPT_ADDR         0x4000UL   /* PDPT covering 0..512 GiB */
#define BH_PD_POOL_ADDR      0x5000UL   /* page directories, one per mapped GiB */
#define BH_PD_POOL_END       0x45000UL  /* 64 page directories at most */
#define BH_STACK_TOP         0x80000UL  /* initial RSP; the runtime may switch stacks */
#define BH_BOOT_AREA_END     0x100000UL /* images may not load below this */
#define BH_IMAGE_BASE        0x100000UL

/* Above RAM: the 32-bit MMIO hole, where PCI BARs, the IOAPIC and the LAPIC live.
 * RAM never extends into it (partitions are limited to BH_RAM_LOW_MAX below 4 GiB;
 * anything beyond continues at 4 GiB). Shared regions and channels are mapped from
 * BH_REGION_BASE upwards, 2 MiB aligned, after any high RAM. */
#define BH_MMIO_HOLE_START   0xC0000000UL
#define BH_RAM_LOW_MAX       BH_MMIO_HOLE_START
#define BH_PCI_MMIO_BASE     0xC0000000UL   /* BARs are allocated from here */
#define BH_PCI_MMIO_END      0xFEC00000UL
#define BH_IOAPIC_ADDR       0xFEC00000UL
#define BH_LAPIC_ADDR        0xFEE00000UL
#define BH_HIGH_RAM_BASE     0x100000000UL
#define BH_REGION_BASE       0x100000000UL
#define BH_REGION_ALIGN      0x200000UL
#define BH_GPA_LIMIT         (64ULL << 30)  /* the page-directory pool maps 64 GiB */

/* I/O ports. Anything not listed (and not handled by KVM's in-kernel PIC/PIT) is
 * unassigned: touching it is an isolation violation. */
#define BH_UART_PORT         0x3F8      /* 8250, 8 registers, IRQ 4 */
#define BH_UART_IRQ          4
#define BH_PCI_CONFIG_ADDR   0xCF8      /* configuration mechanism #1 */
#define BH_PCI_CONFIG_DATA   0xCFC

/* System-control device: a partition reports its exit status or asks for a reset.
 * All registers are 32-bit, write-only. */
#define BH_SYSCTL_PORT       0x600
#define BH_SYSCTL_EXIT       (BH_SYSCTL_PORT + 0)   /* write: exit with this status */
#define BH_SYSCTL_RESET      (BH_SYSCTL_PORT + 4)   /* write any value: reset request */
#define BH_SYSCTL_WATCHDOG   (BH_SYSCTL_PORT + 8)   /* write any value: watchdog kick */
#define BH_SYSCTL_SIZE       12

/* Linux kernels (--kernel) only: the ACPI PM1 event and control blocks the FADT names
 * (power off through _S5), and its reset register (reboot, and a panic with panic=-1). */
#define BH_ACPI_PM1A_EVT     0x620      /* PM1 status, PM1 enable: 2 bytes each */
#define BH_ACPI_PM1A_CNT     0x624      /* PM1 control: 2 bytes */
#define BH_ACPI_RESET        0x626      /* reset register: 1 byte */
#define BH_ACPI_RESET_VALUE  0x01       /* what the guest writes there to reset */
#define BH_ACPI_SCI_IRQ      9
/* The panic notification port (QEMU's pvpanic ISA device, ACPI id QEMU0001, where
 * QEMU puts it): reads the events it reports, a write of BH_PVPANIC_PANICKED is the
 * guest's kernel telling the monitor it panicked. */
#define BH_PVPANIC_PORT      0x505
#define BH_PVPANIC_PANICKED  0x01

#endif
