/*
 * x86-64 entry state: a flat GDT, identity page tables with 2 MiB pages (1 GiB pages
 * triple-fault on this project's KVM), and the vCPU registers for a direct start in
 * 64-bit long mode at the image's entry point (vCPU 0; the others wait for a SIPI).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"

#define X86_CR0_PE     (1u << 0)
#define X86_CR0_MP     (1u << 1)
#define X86_CR0_ET     (1u << 4)
#define X86_CR0_NE     (1u << 5)
#define X86_CR0_PG     (1u << 31)
#define X86_CR4_PAE    (1u << 5)
#define X86_EFER_LME   (1u << 8)
#define X86_EFER_LMA   (1u << 10)
#define X86_RFLAGS_RESERVED 0x2u

#define PTE_P          (1ull << 0)
#define PTE_RW         (1ull << 1)
#define PTE_PWT        (1ull << 3)
#define PTE_PCD        (1ull << 4)
#define PTE_PS         (1ull << 7)     /* 2 MiB page in a PD entry */

#define GIB            (1ull << 30)
#define PAGE_2M        (1ull << 21)
#define PT_ENTRIES     512
#define PT_PAGE        4096

#define SEL_CODE64     0x08
#define SEL_DATA       0x10
#define SEG_TYPE_CODE  0xb             /* execute/read, accessed */
#define SEG_TYPE_DATA  0x3             /* read/write, accessed */
#define SEG_TYPE_TSS64 0xb             /* busy 64-bit TSS */
#define SEG_TYPE_LDT   0x2

#define DESC_CODE64    0x00af9b000000ffffull  /* G, L, P, DPL 0, code execute/read accessed */
#define DESC_DATA      0x00cf93000000ffffull  /* G, D/B, P, DPL 0, data read/write accessed */

/* GDT descriptors matching the segment registers below: null, code64, data. */
static const uint64_t x86_gdt[] = { 0, DESC_CODE64, DESC_DATA };

/* Linux's 64-bit boot protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18. */
#define SEL_LINUX_CODE 0x10
#define SEL_LINUX_DATA 0x18
static const uint64_t x86_linux_gdt[] = { 0, 0, DESC_CODE64, DESC_DATA };

/* GiBs mapped: all of 0..4 GiB (RAM, then the MMIO hole, so a stray access exits to
 * the monitor rather than page-faulting), then as many as high RAM and regions need. */
static unsigned x86_mapped_gibs(const struct mon *m)
{
	uint64_t ram = 4 + (m->high_size + GIB - 1) / GIB;
	uint64_t regions = (mon_regions_end(m) + GIB - 1) / GIB;

	return (unsigned)(ram > regions ? ram : regions);
}

static int x86_page_tables(struct mon *m)
{
	unsigned gibs = x86_mapped_gibs(m);
	uint64_t *pml4 = mon_gpa(m, BH_PML4_ADDR, PT_PAGE);
	uint64_t *pdpt = mon_gpa(m, BH_PDPT_ADDR, PT_PAGE);
	uint64_t *pd = mon_gpa(m, BH_PD_POOL_ADDR, (uint64_t)gibs * PT_PAGE);

	if (gibs > (BH_PD_POOL_END - BH_PD_POOL_ADDR) / PT_PAGE || !pml4 || !pdpt || !pd)
		return -E2BIG;
	memset(pml4, 0, PT_PAGE);
	memset(pdpt, 0, PT_PAGE);
	pml4[0] = BH_PDPT_ADDR | PTE_P | PTE_RW;
	for (unsigned g = 0; g < gibs; g++) {
		uint64_t attr = PTE_P | PTE_RW | PTE_PS;

		if (g == BH_MMIO_HOLE_START / GIB)
			attr |= PTE_PCD | PTE_PWT;     /* device memory: uncached */
		pdpt[g] = (BH_PD_POOL_ADDR + (uint64_t)g * PT_PAGE) | PTE_P | PTE_RW;
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			pd[g * PT_ENTRIES + i] = ((uint64_t)g * GIB + (uint64_t)i * PAGE_2M) | attr;
	}
	return 0;
}

static void x86_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .s = 1, .g = 1,
		.l = code, .db = !code,
	};
}

static int x86_sregs(struct mon *m)
{
	struct kvm_sregs sr;

	if (ioctl(m->vcpu[0].fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	bool lx = m->boot_params != 0;

	x86_segment(&sr.cs, lx ? SEL_LINUX_CODE : SEL_CODE64, SEG_TYPE_CODE, 1);
	x86_segment(&sr.ds, lx ? SEL_LINUX_DATA : SEL_DATA, SEG_TYPE_DATA, 0);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.tr = (struct kvm_segment){ .limit = 0x67, .type = SEG_TYPE_TSS64, .present = 1 };
	sr.ldt = (struct kvm_segment){ .type = SEG_TYPE_LDT, .present = 1, .unusable = 1 };
	sr.gdt.base = BH_GDT_ADDR;
	sr.gdt.limit = (lx ? sizeof(x86_linux_gdt) : sizeof(x86_gdt)) - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;       /* no IDT until the guest loads one: an exception triple-faults */
	sr.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	sr.cr3 = BH_PML4_ADDR;
	sr.cr4 = X86_CR4_PAE;
	sr.efer = X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(m->vcpu[0].fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	return 0;
}

static int x86_regs(struct mon *m)
{
	/* A bare-metal image finds its boot information in RDI, Linux its zero page in
	 * RSI; both start with interrupts off. */
	struct kvm_regs r = {
		.rip = m->entry,
		.rsp = BH_STACK_TOP,
		.rdi = m->boot_params ? 0 : BH_BOOTINFO_ADDR,
		.rsi = m->boot_params,
		.rflags = X86_RFLAGS_RESERVED,
	};

	return ioctl(m->vcpu[0].fd, KVM_SET_REGS, &r) < 0 ? -errno : 0;
}

/* The other vCPUs wait for the guest's INIT and start-up IPIs through the in-kernel
 * LAPIC (KVM resets their registers for the INIT): KVM already creates them so, said
 * again here rather than relied upon. */
static int x86_aps_wait_for_sipi(struct mon *m)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };

	for (unsigned i = 1; i < m->nvcpus; i++)
		if (ioctl(m->vcpu[i].fd, KVM_SET_MP_STATE, &mp) < 0)
			return -errno;
	return 0;
}

int x86_longmode_setup(struct mon *m)
{
	const void *table = m->boot_params ? x86_linux_gdt : x86_gdt;
	size_t len = m->boot_params ? sizeof(x86_linux_gdt) : sizeof(x86_gdt);
	void *gdt = mon_gpa(m, BH_GDT_ADDR, len);
	int ret;

	if (!gdt)
		return -ENOMEM;
	memcpy(gdt, table, len);
	ret = x86_page_tables(m);
	if (!ret)
		ret = x86_sregs(m);
	if (!ret)
		ret = x86_regs(m);
	if (!ret)
		ret = x86_aps_wait_for_sipi(m);
	return ret;
}
