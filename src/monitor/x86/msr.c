/*
 * Model-specific registers KVM does not implement. By default KVM answers a guest's
 * access to one with #GP, or with 0 when the host loaded kvm with ignore_msrs: the
 * host's module parameter, not the system file, would decide what a partition sees.
 * Here such accesses come to the monitor instead, which always answers #GP (what a CPU
 * without the register does; Linux probes with rdmsr_safe and copes) and reports the
 * first MSR_REPORTS of them as "msr" events, so a guest that depends on one is visible
 * without a guest flooding the event log.
 *
 * The virtual PMU is switched off where KVM can (KVM_CAP_PMU_CAPABILITY); cpuid.c hides
 * it in either case: counters that sample the host's perf subsystem are shared state a
 * partition has no business with.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "monitor/mon.h"

#define MSR_REPORTS 16

int x86_msr_setup(struct mon *m)
{
	struct kvm_enable_cap usr = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN,
	};
	struct kvm_enable_cap pmu = {
		.cap = KVM_CAP_PMU_CAPABILITY,
		.args[0] = KVM_PMU_CAP_DISABLE,
	};

	if (ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PMU_CAPABILITY) > 0 &&
	    ioctl(m->vm_fd, KVM_ENABLE_CAP, &pmu) < 0)
		return -errno;
	/* Without the capability (before Linux 5.10) KVM's own #GP is the answer. */
	if (ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0)
		return 0;
	return ioctl(m->vm_fd, KVM_ENABLE_CAP, &usr) < 0 ? -errno : 0;
}

void x86_msr_exit(struct mon_vcpu *v)
{
	struct mon *m = v->m;
	struct kvm_run *run = v->run;
	bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
	uint64_t n = __atomic_add_fetch(&m->unknown_msrs, 1, __ATOMIC_RELAXED);
	char value[40] = "";

	run->msr.error = 1;                       /* KVM injects #GP on re-entry */
	if (n > MSR_REPORTS)
		return;
	if (write)
		snprintf(value, sizeof(value), ",\"value\":\"0x%" PRIx64 "\"",
			 (uint64_t)run->msr.data);
	ev_emit(m, "msr", "\"vcpu\":%u,\"index\":\"0x%" PRIx32 "\",\"direction\":\"%s\"%s,"
		"\"rip\":\"0x%" PRIx64 "\",\"action\":\"gp\"%s", v->index, run->msr.index,
		write ? "write" : "read", value, mon_vcpu_rip(v),
		n == MSR_REPORTS ? ",\"last_report\":true" : "");
}
