/*
 * cpuinfo: checks the CPUID and MSRs a partition sees against what the monitor promises
 * (src/monitor/x86/cpuid.h, msr.c): a hypervisor, one package of as many cores as the
 * partition has vCPUs, no PMU, no nested virtualisation, the LAPIC where the platform
 * puts it. Prints what it read; the status is the number of failed checks.
 */
#include <stdbool.h>
#include <inmate/inmate.h>

#define LEAF1_ECX_VMX          (1u << 5)
#define LEAF1_ECX_PDCM         (1u << 15)
#define LEAF1_ECX_HYPERVISOR   (1u << 31)
#define EXT1_ECX_SVM           (1u << 2)
#define EXT1_ECX_PERFCTR_CORE  (1u << 23)
#define MSR_APIC_BASE          0x1b
#define APIC_BASE_BSP          (1u << 8)
#define APIC_BASE_ENABLE       (1u << 11)
#define APIC_BASE_ADDR         0xfee00000u

int main(int argc, char **argv)
{
	const struct bh_bootinfo *bi = bh_bootinfo();
	uint32_t r[4], max, ext_max;
	uint64_t apic_base;
	char vendor[13];

	(void)argc;
	(void)argv;

	cpu_cpuid(0, 0, r);
	max = r[0];
	memcpy(vendor, &r[1], 4);
	memcpy(vendor + 4, &r[3], 4);
	memcpy(vendor + 8, &r[2], 4);
	vendor[12] = 0;
	cpu_cpuid(0x80000000, 0, r);
	ext_max = r[0];
	printf("cpuinfo: vendor %s, basic leaves to 0x%x, extended to 0x%x\n", vendor, max,
	       ext_max);

	cpu_cpuid(1, 0, r);
	printf("cpuinfo: leaf 1: apic id %u, logical %u, ecx 0x%08x, edx 0x%08x\n", r[1] >> 24,
	       r[1] >> 16 & 0xff, r[2], r[3]);
	EXPECT_TRUE(r[2] & LEAF1_ECX_HYPERVISOR);
	EXPECT_FALSE(r[2] & LEAF1_ECX_VMX);
	EXPECT_FALSE(r[2] & LEAF1_ECX_PDCM);
	EXPECT_EQ(r[1] >> 24, 0);                              /* the bootstrap vCPU */
	EXPECT_EQ(r[1] >> 16 & 0xff, bi->nr_vcpus);
	if (max >= 0xa) {
		cpu_cpuid(0xa, 0, r);
		printf("cpuinfo: leaf 0xa (PMU): eax 0x%x\n", r[0]);
		EXPECT_EQ(r[0], 0);
	}
	if (max >= 0xb) {
		cpu_cpuid(0xb, 1, r);
		printf("cpuinfo: leaf 0xb.1: %u cores, level type %u\n", r[1] & 0xffff,
		       r[2] >> 8 & 0xff);
		EXPECT_EQ(r[1] & 0xffff, bi->nr_vcpus);
	}
	if (ext_max >= 0x80000001) {
		cpu_cpuid(0x80000001, 0, r);
		printf("cpuinfo: leaf 0x80000001: ecx 0x%08x\n", r[2]);
		EXPECT_FALSE(r[2] & EXT1_ECX_SVM);
		EXPECT_FALSE(r[2] & EXT1_ECX_PERFCTR_CORE);
	}

	/* An MSR KVM implements still reads as usual with unknown ones sent to the monitor. */
	apic_base = cpu_rdmsr(MSR_APIC_BASE);
	printf("cpuinfo: APIC base MSR 0x%lx\n", apic_base);
	EXPECT_EQ(apic_base & ~0xfffull, APIC_BASE_ADDR);
	EXPECT_TRUE(apic_base & APIC_BASE_BSP);
	EXPECT_TRUE(apic_base & APIC_BASE_ENABLE);
	return test_summary();
}
