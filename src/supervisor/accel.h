/*
 * Which accelerator an `engine: qemu` partition's QEMU gets: KVM where this host's KVM
 * can boot an unmodified Linux kernel, TCG elsewhere; BH_QEMU_ACCEL overrides. The
 * probe looks at the host and starts no guest (docs/guest.md, "The accelerator").
 */
#ifndef BH_SUP_ACCEL_H
#define BH_SUP_ACCEL_H

#include <stdbool.h>

#define SUP_ACCEL_ENV "BH_QEMU_ACCEL"

/* What the probe found on the host. */
struct sup_accel_host {
	int kvm_err;            /* 0: /dev/kvm opened read-write; else the errno */
	bool pvm;               /* /sys/module/kvm_pvm: the host's KVM is PVM */
	bool hw_virt;           /* svm or vmx among /proc/cpuinfo's flags */
};

/* The choice: QEMU's -accel and -cpu, and why, for the partition's `start` event. */
struct sup_accel {
	const char *accel;      /* "kvm" or "tcg" */
	const char *cpu;        /* "host" or "max" */
	char reason[128];
};

/* Looks at ROOT/dev/kvm, ROOT/sys/module/kvm_pvm and ROOT/proc/cpuinfo (ROOT is "" on
 * a host; tests point it at a directory of their own). */
void sup_accel_probe(const char *root, struct sup_accel_host *h);

/* Chooses from the override (BH_QEMU_ACCEL's value: NULL, "" or "auto" for the probe,
 * "kvm" or "tcg") and the host. Returns 0, or -EINVAL for any other override. */
int sup_accel_choose(const char *override, const struct sup_accel_host *h,
		     struct sup_accel *out);

#endif
