/*
 * The CPUID a partition's vCPUs see: what KVM supports on this host, less what the
 * monitor does not give a partition (a PMU, nested virtualisation), with a topology that
 * matches the partition (one package of NVCPUS cores, one thread each) instead of the
 * host's. Pure, so tests/unit/test_cpuid.c can check it without KVM.
 */
#ifndef BH_MON_X86_CPUID_H
#define BH_MON_X86_CPUID_H

#include <linux/kvm.h>

#define CPUID_1_ECX_VMX          (1u << 5)
#define CPUID_1_ECX_PDCM         (1u << 15)   /* perf capabilities MSR */
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_1_EDX_HTT          (1u << 28)
#define CPUID_1_EBX_APIC_ID      0xff000000u
#define CPUID_1_EBX_NLOGICAL     0x00ff0000u
#define CPUID_4_EAX_CORES        0xfc000000u  /* cores per package - 1, bits 31:26 */
#define CPUID_7_EBX_PQM          (1u << 12)   /* resource monitoring (host-wide) */
#define CPUID_7_EBX_PQE          (1u << 15)   /* resource allocation (host-wide) */
#define CPUID_TOPO_SMT           1            /* leaf 0xb/0x1f level types */
#define CPUID_TOPO_CORE          2
#define CPUID_80000001_ECX_CMP_LEGACY  (1u << 1)
#define CPUID_80000001_ECX_SVM         (1u << 2)
#define CPUID_80000001_ECX_PERFCTR_CORE (1u << 23)
#define CPUID_80000001_ECX_PERFCTR_NB  (1u << 24)
#define CPUID_80000001_ECX_PERFCTR_LLC (1u << 28)
#define CPUID_80000008_ECX_NC          0x000000ffu
#define CPUID_80000008_ECX_APIC_SIZE   0x0000f000u

#define CPUID_TOPO_SUBLEAVES     3            /* thread, core, end */

/* Rewrites the NENT entries of KVM_GET_SUPPORTED_CPUID in place for vCPU INDEX (its APIC
 * id) of NVCPUS (1..255), and adds the leaf 0xb subleaves KVM left out when leaf 0 says
 * 0xb exists (some hosts' KVM gives none): E has room for CAP entries. Returns the new
 * count, or 0 when CAP is too small. */
unsigned x86_cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned nent, unsigned cap,
			  unsigned index, unsigned nvcpus);

#endif
