/* Unit tests for src/monitor/x86/cpuid.c: what a vCPU's CPUID says once the monitor has
 * filtered KVM's supported table. The input is a host-like table (Intel and AMD leaves
 * together) with every filtered feature present, so each bit's removal is seen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "monitor/x86/cpuid.h"

#define ALL 0xffffffffu

enum { L1, L4_CACHE, L4_END, L7, LA, LB0, LB1, LB2, L1F1, L8_1, L8_8, L8_A, L8_1E, L8_22, N };

static void host_table(struct kvm_cpuid_entry2 *e)
{
	static const struct { uint32_t fn, idx; } ids[N] = {
		[L1] = { 1, 0 }, [L4_CACHE] = { 4, 0 }, [L4_END] = { 4, 4 }, [L7] = { 7, 0 },
		[LA] = { 0xa, 0 }, [LB0] = { 0xb, 0 }, [LB1] = { 0xb, 1 }, [LB2] = { 0xb, 2 },
		[L1F1] = { 0x1f, 1 }, [L8_1] = { 0x80000001, 0 }, [L8_8] = { 0x80000008, 0 },
		[L8_A] = { 0x8000000a, 0 }, [L8_1E] = { 0x8000001e, 0 },
		[L8_22] = { 0x80000022, 0 },
	};

	memset(e, 0, N * sizeof(*e));
	for (unsigned i = 0; i < N; i++) {
		e[i].function = ids[i].fn;
		e[i].index = ids[i].idx;
		e[i].eax = e[i].ebx = e[i].ecx = e[i].edx = ALL;
	}
	e[L4_CACHE].eax = 0x1c004121;       /* an L1 data cache shared by 8 cores */
	e[L4_END].eax = 0;                  /* no more cache levels */
}

static void one_of_four(void **state)
{
	struct kvm_cpuid_entry2 e[N];

	(void)state;
	host_table(e);
	assert_int_equal(x86_cpuid_filter(e, N, N, 2, 4), N);
	/* Leaf 1: APIC id 2, 4 logical processors, hypervisor; no VMX, no PDCM. */
	assert_int_equal(e[L1].ebx >> 24, 2);
	assert_int_equal(e[L1].ebx >> 16 & 0xff, 4);
	assert_int_equal(e[L1].ebx & 0xffff, 0xffff);             /* the rest kept */
	assert_true(e[L1].ecx & CPUID_1_ECX_HYPERVISOR);
	assert_false(e[L1].ecx & (CPUID_1_ECX_VMX | CPUID_1_ECX_PDCM));
	assert_true(e[L1].edx & CPUID_1_EDX_HTT);
	/* Leaf 4: 4 cores per package where a cache is described, nothing invented. */
	assert_int_equal(e[L4_CACHE].eax >> 26, 3);
	assert_int_equal(e[L4_CACHE].eax & 0x03ffffff, 0x0004121);
	assert_int_equal(e[L4_END].eax, 0);
	assert_false(e[L7].ebx & (CPUID_7_EBX_PQM | CPUID_7_EBX_PQE));
	/* No PMU, no SVM leaf. */
	for (unsigned i = 0; i < N; i++)
		if (i == LA || i == L8_22 || i == L8_A)
			assert_true(!e[i].eax && !e[i].ebx && !e[i].ecx && !e[i].edx);
	/* Leaf 0xb: thread level (1 per core), core level (4, ids in 2 bits), then end. */
	assert_int_equal(e[LB0].eax, 0);
	assert_int_equal(e[LB0].ebx, 1);
	assert_int_equal(e[LB0].ecx, CPUID_TOPO_SMT << 8 | 0);
	assert_int_equal(e[LB1].eax, 2);
	assert_int_equal(e[LB1].ebx, 4);
	assert_int_equal(e[LB1].ecx, CPUID_TOPO_CORE << 8 | 1);
	assert_int_equal(e[LB2].ebx, 0);
	assert_int_equal(e[LB2].ecx >> 8 & 0xff, 0);              /* invalid level: end */
	for (unsigned i = LB0; i <= LB2; i++)
		assert_int_equal(e[i].edx, 2);                    /* x2APIC id */
	assert_int_equal(e[L1F1].ebx, 4);
	assert_int_equal(e[L1F1].edx, 2);
	/* AMD: no SVM, no core/NB/LLC counters, CmpLegacy; NC 3, 2 id bits; ext. APIC id. */
	assert_false(e[L8_1].ecx & (CPUID_80000001_ECX_SVM | CPUID_80000001_ECX_PERFCTR_CORE |
				    CPUID_80000001_ECX_PERFCTR_NB |
				    CPUID_80000001_ECX_PERFCTR_LLC));
	assert_true(e[L8_1].ecx & CPUID_80000001_ECX_CMP_LEGACY);
	assert_int_equal(e[L8_8].ecx & CPUID_80000008_ECX_NC, 3);
	assert_int_equal((e[L8_8].ecx & CPUID_80000008_ECX_APIC_SIZE) >> 12, 2);
	assert_int_equal(e[L8_8].ecx | CPUID_80000008_ECX_NC | CPUID_80000008_ECX_APIC_SIZE,
			 ALL);
	assert_int_equal(e[L8_1E].eax, 2);
	assert_int_equal(e[L8_1E].ebx, 2);                        /* one thread per core */
	assert_int_equal(e[L8_1E].ecx, 0);
}

static void a_single_vcpu_is_not_multi_core(void **state)
{
	struct kvm_cpuid_entry2 e[N];

	(void)state;
	host_table(e);
	assert_int_equal(x86_cpuid_filter(e, N, N, 0, 1), N);
	assert_int_equal(e[L1].ebx >> 16 & 0xffff, 0x0001);
	assert_false(e[L1].edx & CPUID_1_EDX_HTT);
	assert_int_equal(e[L4_CACHE].eax >> 26, 0);
	assert_int_equal(e[LB1].eax, 0);
	assert_int_equal(e[LB1].ebx, 1);
	assert_false(e[L8_1].ecx & CPUID_80000001_ECX_CMP_LEGACY);
	assert_int_equal(e[L8_8].ecx & (CPUID_80000008_ECX_NC | CPUID_80000008_ECX_APIC_SIZE),
			 0);
}

static void id_bits_round_up(void **state)
{
	struct kvm_cpuid_entry2 e[N];

	(void)state;
	for (unsigned n = 1; n <= 64; n++) {
		unsigned bits = 0;

		while ((1u << bits) < n)
			bits++;
		host_table(e);
		assert_int_equal(x86_cpuid_filter(e, N, N, n - 1, n), N);
		assert_int_equal(e[LB1].eax, bits);
		assert_true((n - 1) >> e[LB1].eax == 0);  /* every id fits below the shift */
		assert_int_equal(e[L1].ebx >> 24, n - 1);
	}
}

/* Leaves the monitor has no opinion on pass through untouched. */
static void other_leaves_pass(void **state)
{
	struct kvm_cpuid_entry2 e = { .function = 0x40000001, .eax = 0x1234, .edx = 7 };

	(void)state;
	assert_int_equal(x86_cpuid_filter(&e, 1, 1, 1, 2), 1);
	assert_int_equal(e.eax, 0x1234);
	assert_int_equal(e.edx, 7);
}

/* A host whose KVM reports basic leaves up to 0x16 but no leaf 0xb (this machine's):
 * the monitor adds the topology subleaves, and says when there is no room for them. */
static void missing_topology_is_added(void **state)
{
	struct kvm_cpuid_entry2 e[2 + CPUID_TOPO_SUBLEAVES] = {
		{ .function = 0, .eax = 0x16 }, { .function = 1 },
	};
	struct kvm_cpuid_entry2 *core = NULL;

	(void)state;
	assert_int_equal(x86_cpuid_filter(e, 2, 2 + CPUID_TOPO_SUBLEAVES, 1, 2),
			 2 + CPUID_TOPO_SUBLEAVES);
	for (unsigned i = 2; i < 2 + CPUID_TOPO_SUBLEAVES; i++) {
		assert_int_equal(e[i].function, 0xb);
		assert_int_equal(e[i].index, i - 2);
		assert_true(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
		assert_int_equal(e[i].edx, 1);
		if (e[i].index == 1)
			core = &e[i];
	}
	assert_non_null(core);
	assert_int_equal(core->ebx, 2);
	assert_int_equal(core->ecx, CPUID_TOPO_CORE << 8 | 1);
	assert_int_equal(x86_cpuid_filter(e, 2, 3, 1, 2), 0);       /* no room */
	e[0].eax = 0xa;                                             /* no leaf 0xb at all */
	assert_int_equal(x86_cpuid_filter(e, 2, 2, 1, 2), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_of_four),
		cmocka_unit_test(a_single_vcpu_is_not_multi_core),
		cmocka_unit_test(id_bits_round_up),
		cmocka_unit_test(other_leaves_pass),
		cmocka_unit_test(missing_topology_is_added),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
