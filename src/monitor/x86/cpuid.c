/*
 * CPUID of the partition's vCPUs: what KVM supports on this host, with each vCPU's
 * APIC id (its index) and the hypervisor bit set.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "monitor/mon.h"

#define CPUID_MAX_ENTRIES     1024
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EBX_APIC_ID   0xff000000u

static struct kvm_cpuid2 *cpuid_supported(int kvm_fd, int *err)
{
	for (unsigned n = 64; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

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
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & ~CPUID_1_EBX_APIC_ID) | v->index << 24;
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->index;                 /* x2APIC id */
			break;
		case 0x8000001e:
			e->eax = v->index;                 /* AMD extended APIC id */
			break;
		}
	}
	ret = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return ret;
}
