/*
 * faults: commits one deliberate isolation violation (or exit/reset request) chosen by
 * its argument, announcing it first, so tests can check how the monitor reacts.
 * Reaching the end of a fault means the monitor let it pass: that is status 1.
 */
#include <stdbool.h>
#include <inmate/inmate.h>

#define FAULTS_RAM_ADDR      0xB0000000UL   /* beyond RAM, below the MMIO hole */
#define FAULTS_MMIO_ADDR     0xD0000000UL   /* inside the hole, no device there */
#define FAULTS_PORT          0x300          /* no device there */
#define FAULTS_UNMAPPED_ADDR 0x7F0000000000UL  /* canonical, but no page maps it */
#define FAULTS_POISON        0xDEADBEEFu
#define FAULTS_MSR           0xC0FFEE00u    /* no CPU or KVM has it */

#define FAULTS_STATUS_SURVIVED 1
#define FAULTS_STATUS_USAGE    2
#define FAULTS_STATUS_NO_RESET 3

static int usage(void)
{
	printf("usage: faults KIND [ARG]\n"
	       "  ram [ADDR]    write beyond RAM (default 0x%lx)\n"
	       "  mmio [ADDR]   write into the unassigned MMIO hole (default 0x%lx)\n"
	       "  port [PORT]   outb to an unassigned port (default 0x%x)\n"
	       "  triple        load an empty IDT, then ud2: triple fault\n"
	       "  ud            ud2 with the runtime's handlers: exception report\n"
	       "  pf            read an unmapped address: page-fault report\n"
	       "  rdmsr [MSR]   read an MSR KVM does not know (default 0x%x): #GP report\n"
	       "  wrmsr [MSR]   write one: #GP report\n"
	       "  exit N        exit with status N\n"
	       "  reset         ask the monitor for a reset\n"
	       "  hang          halt forever with interrupts off (a partition that never ends)\n",
	       FAULTS_RAM_ADDR, FAULTS_MMIO_ADDR, FAULTS_PORT, FAULTS_MSR);
	return FAULTS_STATUS_USAGE;
}

/* Optional numeric argument (any base strtoul accepts); -1 if present but malformed. */
static int arg_number(int argc, char **argv, unsigned long dflt, unsigned long *out)
{
	char *end;

	*out = dflt;
	if (argc < 3)
		return 0;
	*out = strtoul(argv[2], &end, 0);
	if (end == argv[2] || *end) {
		printf("faults: '%s' is not a number\n", argv[2]);
		return -1;
	}
	return 0;
}

static int survived(const char *what)
{
	printf("faults: still running after %s: the monitor did not stop the partition\n",
	       what);
	return FAULTS_STATUS_SURVIVED;
}

static int fault_ram(unsigned long addr)
{
	const struct bh_bootinfo *bi = bh_bootinfo();

	int inside = addr < bi->mem_size;

	if (inside)
		printf("faults: warning: 0x%lx is inside this partition's RAM (%lu bytes)\n",
		       addr, bi->mem_size);
	printf("faults: writing 0x%x to guest-physical 0x%lx (%s RAM)\n", FAULTS_POISON, addr,
	       inside ? "inside" : "beyond");
	mmio_write32(addr, FAULTS_POISON);
	return survived("the RAM write");
}

static int fault_mmio(unsigned long addr)
{
	printf("faults: writing 0x%x to guest-physical 0x%lx (unassigned MMIO)\n",
	       FAULTS_POISON, addr);
	mmio_write32(addr, FAULTS_POISON);
	return survived("the MMIO write");
}

static int fault_port(unsigned long port)
{
	printf("faults: outb to unassigned port 0x%lx\n", port);
	outb((uint16_t)port, (uint8_t)FAULTS_POISON);
	return survived("the port write");
}

static int fault_triple(void)
{
	printf("faults: loading an IDT with limit 0, then ud2 (expect a triple fault)\n");
	cpu_lidt(0, 0);
	cpu_ud2();
	return survived("the triple fault");
}

static int fault_ud(void)
{
	printf("faults: ud2 (expect an invalid-opcode report, status %u)\n",
	       INMATE_STATUS_EXCEPTION_BASE + IRQ_VEC_UD);
	cpu_ud2();
	return survived("ud2");
}

static int fault_pf(void)
{
	printf("faults: reading unmapped 0x%lx (expect a page-fault report, status %u)\n",
	       FAULTS_UNMAPPED_ADDR, INMATE_STATUS_EXCEPTION_BASE + IRQ_VEC_PF);
	(void)*(volatile uint32_t *)FAULTS_UNMAPPED_ADDR;
	return survived("the unmapped read");
}

static int fault_msr(unsigned long index, bool write)
{
	if (index > UINT32_MAX) {
		printf("faults: MSR 0x%lx is beyond the 32-bit MSR space\n", index);
		return FAULTS_STATUS_USAGE;
	}
	printf("faults: %s MSR 0x%lx (expect a general-protection report, status %u)\n",
	       write ? "writing" : "reading", index, INMATE_STATUS_EXCEPTION_BASE + IRQ_VEC_GP);
	if (write)
		cpu_wrmsr((uint32_t)index, FAULTS_POISON);
	else
		printf("faults: read 0x%lx\n", cpu_rdmsr((uint32_t)index));
	return survived(write ? "the MSR write" : "the MSR read");
}

static int fault_exit(int argc, char **argv)
{
	unsigned long status;
	char *end;

	if (argc < 3)
		return usage();
	status = strtoul(argv[2], &end, 0);
	if (end == argv[2] || *end || status > UINT32_MAX) {
		printf("faults: '%s' is not an exit status\n", argv[2]);
		return FAULTS_STATUS_USAGE;
	}
	printf("faults: exiting with status %lu\n", status);
	bh_exit((uint32_t)status);
}

static int fault_reset(void)
{
	printf("faults: requesting a reset\n");
	bh_reset_request();
	printf("faults: the monitor ignored the reset request\n");
	return FAULTS_STATUS_NO_RESET;
}

static __attribute__((noreturn)) int fault_hang(void)
{
	printf("faults: halting forever\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "";
	unsigned long n;

	if (!strcmp(kind, "hang"))
		return fault_hang();
	if (!strcmp(kind, "ram"))
		return arg_number(argc, argv, FAULTS_RAM_ADDR, &n) ? usage() : fault_ram(n);
	if (!strcmp(kind, "mmio"))
		return arg_number(argc, argv, FAULTS_MMIO_ADDR, &n) ? usage() : fault_mmio(n);
	if (!strcmp(kind, "port")) {
		if (arg_number(argc, argv, FAULTS_PORT, &n))
			return usage();
		if (n > UINT16_MAX) {
			printf("faults: port 0x%lx is beyond the 16-bit port space\n", n);
			return FAULTS_STATUS_USAGE;
		}
		return fault_port(n);
	}
	if (!strcmp(kind, "triple"))
		return fault_triple();
	if (!strcmp(kind, "ud"))
		return fault_ud();
	if (!strcmp(kind, "pf"))
		return fault_pf();
	if (!strcmp(kind, "rdmsr") || !strcmp(kind, "wrmsr"))
		return arg_number(argc, argv, FAULTS_MSR, &n) ? usage()
							      : fault_msr(n, kind[0] == 'w');
	if (!strcmp(kind, "exit"))
		return fault_exit(argc, argv);
	if (!strcmp(kind, "reset"))
		return fault_reset();
	if (*kind)
		printf("faults: unknown kind '%s'\n", kind);
	return usage();
}
