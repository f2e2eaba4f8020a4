/*
 * The vCPU run loop: KVM_RUN until the guest exits, resets or faults. Port-I/O and MMIO
 * exits go through the dispatch tables; anything unclaimed, and every exit a partition
 * should never cause, stops the partition with a fault event (the Jailhouse model).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "monitor/mon.h"

int mon_irq_line(struct mon *m, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	return ioctl(m->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static uint64_t vcpu_rip(struct mon *m)
{
	struct kvm_regs r;

	return ioctl(m->vcpu_fd, KVM_GET_REGS, &r) < 0 ? 0 : r.rip;
}

static void vcpu_fault_msg(struct mon *m, const char *what, uint64_t rip)
{
	fprintf(stderr, "bulkhead monitor: %s: %s (rip 0x%" PRIx64 ")\n", m->opt->name, what, rip);
	m->stop = MON_STOP_FAULT;
}

/* Reports an access to nothing the partition was given. Returns true when the
 * partition stops; with --on-violation ignore it goes on (reads see all-ones, writes
 * vanish) and only the first VCPU_IGNORED_REPORTS are reported, so a guest cannot
 * flood the event log. */
static bool vcpu_violation(struct mon *m, const char *access, uint64_t addr, unsigned size,
			   bool write, uint8_t *data)
{
	uint64_t rip = vcpu_rip(m);
	char value[40] = "", msg[128];

	if (m->opt->ignore_violations) {
		if (!write && data)
			memset(data, 0xff, size);
		if (++m->ignored_violations > VCPU_IGNORED_REPORTS)
			return false;
	}

	if (write && data) {
		uint64_t val = 0;

		memcpy(&val, data, size < sizeof(val) ? size : sizeof(val));
		snprintf(value, sizeof(value), ",\"value\":\"0x%" PRIx64 "\"", val);
	}
	ev_emit(m, "fault", "\"kind\":\"violation\",\"access\":\"%s\",\"address\":\"0x%" PRIx64
		"\",\"size\":%u,\"direction\":\"%s\"%s,\"rip\":\"0x%" PRIx64 "\",\"action\":\"%s\"",
		access, addr, size, write ? "write" : "read", value, rip,
		m->opt->ignore_violations ? "ignored" : "stop");
	if (m->opt->ignore_violations)
		return false;
	snprintf(msg, sizeof(msg), "isolation violation: %s %s of %u byte(s) at 0x%" PRIx64,
		 access, write ? "write" : "read", size, addr);
	vcpu_fault_msg(m, msg, rip);
	return true;
}

/* Port I/O, including `rep ins/outs` (count > 1): each element is dispatched; the
 * first one refused stops the partition. */
static void vcpu_pio(struct mon *m)
{
	struct kvm_run *run = m->run;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;
	uint64_t span = (uint64_t)run->io.count * size;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.data_offset > m->run_size || span > m->run_size - run->io.data_offset) {
		vcpu_violation(m, "port", run->io.port, size, write, NULL);
		m->stop = MON_STOP_FAULT;       /* KVM handed us nonsense: never go on */
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		if (io_dispatch(&m->io.port, run->io.port, data, size, write) &&
		    vcpu_violation(m, "port", run->io.port, size, write, data))
			return;
}

static void vcpu_mmio(struct mon *m)
{
	struct kvm_run *run = m->run;
	unsigned size = run->mmio.len;
	bool write = run->mmio.is_write;

	if (size > sizeof(run->mmio.data)) {
		vcpu_violation(m, "mmio", run->mmio.phys_addr, size, write, NULL);
		m->stop = MON_STOP_FAULT;
		return;
	}
	if (io_dispatch(&m->io.mmio, run->mmio.phys_addr, run->mmio.data, size, write))
		vcpu_violation(m, "mmio", run->mmio.phys_addr, size, write, run->mmio.data);
}

static void vcpu_fatal_exit(struct mon *m)
{
	struct kvm_run *run = m->run;
	uint64_t rip = vcpu_rip(m);
	char msg[96];

	switch (run->exit_reason) {
	case KVM_EXIT_SHUTDOWN:
		ev_emit(m, "fault", "\"kind\":\"triple_fault\",\"rip\":\"0x%" PRIx64 "\"", rip);
		vcpu_fault_msg(m, "triple fault (vCPU shut down)", rip);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		ev_emit(m, "fault", "\"kind\":\"internal_error\",\"suberror\":%u,\"rip\":\"0x%"
			PRIx64 "\"", run->internal.suberror, rip);
		snprintf(msg, sizeof(msg), "KVM internal error, suberror %u",
			 run->internal.suberror);
		vcpu_fault_msg(m, msg, rip);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		ev_emit(m, "fault", "\"kind\":\"fail_entry\",\"reason\":\"0x%llx\",\"rip\":\"0x%"
			PRIx64 "\"", run->fail_entry.hardware_entry_failure_reason, rip);
		snprintf(msg, sizeof(msg), "vCPU entry failed, hardware reason 0x%llx",
			 run->fail_entry.hardware_entry_failure_reason);
		vcpu_fault_msg(m, msg, rip);
		break;
	default:
		ev_emit(m, "fault", "\"kind\":\"unexpected_exit\",\"exit_reason\":%u,\"rip\":\"0x%"
			PRIx64 "\"", run->exit_reason, rip);
		snprintf(msg, sizeof(msg), "unexpected KVM exit %u", run->exit_reason);
		vcpu_fault_msg(m, msg, rip);
		break;
	}
}

/* Run until the partition stops; the outcome is in m->stop. Returns 0, or -errno when
 * KVM_RUN itself failed (a monitor error, not a guest fault). */
int mon_vcpu_run(struct mon *m)
{
	while (m->stop == MON_RUNNING) {
		if (ioctl(m->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			m->stop = MON_STOP_ERROR;
			return -errno;
		}
		switch (m->run->exit_reason) {
		case KVM_EXIT_IO:
			vcpu_pio(m);
			break;
		case KVM_EXIT_MMIO:
			vcpu_mmio(m);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			vcpu_fatal_exit(m);
			break;
		}
	}
	return 0;
}
