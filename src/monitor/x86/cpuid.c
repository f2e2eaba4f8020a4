/*
 * CPUID of the partition's vCPUs (cpuid.h says what is filtered and why); the topology
 * is the one the MADT and MP table describe: vCPU i has APIC id i, one package.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "monitor/mon.h"
#include "monitor/x86/cpuid.h"

#define CPUID_MAX_ENTRIES     1024

/* Bits an APIC id of a vCPU below NVCPUS needs: the shift to the next level's id. */
static unsigned cpuid_id_bits(unsigned nvcpus)
{
	unsigned bits = 0;

	while ((1u << bits) < nvcpus)
		bits++;
	return bits;
}

static uint32_t bit_if(uint32_t reg, uint32_t bit, bool on)
{
	return on ? reg | bit : reg & ~bit;
}

/* Leaves 0xb and 0x1f: subleaf 0 is the thread level (one per core), 1 the core level
 * (NVCPUS per package); any further subleaf is invalid, ending the enumeration. */
static void cpuid_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned index, unsigned nvcpus)
{
	unsigned sub = e->index;

	e->edx = index;                           /* x2APIC id */
	if (sub == 0) {
		e->eax = 0;
		e->ebx = 1;
		e->ecx = CPUID_TOPO_SMT << 8 | sub;
	} else if (sub == 1) {
		e->eax = cpuid_id_bits(nvcpus);
		e->ebx = nvcpus;
		e->ecx = CPUID_TOPO_CORE << 8 | sub;
	} else {
		e->eax = e->ebx = 0;
		e->ecx = sub;
	}
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *e, unsigned nent,
					    uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < nent; i++)
		if (e[i].function == function && e[i].index == index)
			return &e[i];
	return NULL;
}

/* Leaf 0xb's subleaves 0..CPUID_TOPO_SUBLEAVES-1, added where missing. */
static unsigned cpuid_add_topology(struct kvm_cpuid_entry2 *e, unsigned nent, unsigned cap)
{
	struct kvm_cpuid_entry2 *leaf0 = cpuid_find(e, nent, 0, 0);

	if (!leaf0 || leaf0->eax < 0xb)
		return nent;
	for (uint32_t sub = 0; sub < CPUID_TOPO_SUBLEAVES; sub++) {
		if (cpuid_find(e, nent, 0xb, sub))
			continue;
		if (nent == cap)
			return 0;
		e[nent++] = (struct kvm_cpuid_entry2){
			.function = 0xb, .index = sub, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		};
	}
	return nent;
}

unsigned x86_cpuid_filter(struct kvm_cpuid_entry2 *entries, unsigned nent, unsigned cap,
			  unsigned index, unsigned nvcpus)
{
	struct kvm_cpuid_entry2 *e = entries;

	nent = cpuid_add_topology(entries, nent, cap);
	for (unsigned i = 0; i < nent; i++, e++) {
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & ~(CPUID_1_EBX_APIC_ID | CPUID_1_EBX_NLOGICAL)) |
				 index << 24 | (nvcpus & 0xff) << 16;
			e->ecx &= ~(CPUID_1_ECX_VMX | CPUID_1_ECX_PDCM);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			e->edx = bit_if(e->edx, CPUID_1_EDX_HTT, nvcpus > 1);
			break;
		case 4:
			if (e->eax & 0x1f)            /* a cache level is described */
				e->eax = (e->eax & ~CPUID_4_EAX_CORES) | (nvcpus - 1) << 26;
			break;
		case 7:
			if (e->index == 0)
				e->ebx &= ~(CPUID_7_EBX_PQM | CPUID_7_EBX_PQE);
			break;
		case 0xa:                             /* architectural PMU: none */
		case 0xf:                             /* resource monitoring: none */
		case 0x10:                            /* resource allocation: none */
		case 0x80000022:                      /* AMD PMU v2: none */
		case 0x8000000a:                      /* SVM features: none without SVM */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			cpuid_topology_leaf(e, index, nvcpus);
			break;
		case 0x80000001:
			e->ecx &= ~(CPUID_80000001_ECX_SVM | CPUID_80000001_ECX_PERFCTR_CORE |
				    CPUID_80000001_ECX_PERFCTR_NB | CPUID_80000001_ECX_PERFCTR_LLC);
			e->ecx = bit_if(e->ecx, CPUID_80000001_ECX_CMP_LEGACY, nvcpus > 1);
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~(CPUID_80000008_ECX_NC | CPUID_80000008_ECX_APIC_SIZE)) |
				 (nvcpus - 1) | cpuid_id_bits(nvcpus) << 12;
			break;
		case 0x8000001e:
			e->eax = index;               /* extended APIC id */
			e->ebx = index & 0xff;        /* core id; one thread per core */
			e->ecx = 0;                   /* node 0, one node */
			break;
		}
	}
	return nent;
}

/* KVM's table, with room for CPUID_TOPO_SUBLEAVES more entries after it. */
static struct kvm_cpuid2 *cpuid_supported(int kvm_fd, int *err)
{
	for (unsigned n = 64; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (n + CPUID_TOPO_SUBLEAVES) *
						  sizeof(c->entries[0]));

		if (!c) {
			*err = -ENOMEM;
			return NULL;
		}
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		*err = -errno;
		free(c);
		if (*err != -E2BIG)
			return NULL;
	}
	return NULL;
}

int x86_cpuid_setup(struct mon *m, struct mon_vcpu *v)
{
	int ret = 0;
	struct kvm_cpuid2 *c = cpuid_supported(m->kvm_fd, &ret);

	if (!c)
		return ret;
	c->nent = x86_cpuid_filter(c->entries, c->nent, c->nent + CPUID_TOPO_SUBLEAVES,
				   v->index, m->nvcpus);
	ret = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return ret;
}
