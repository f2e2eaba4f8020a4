/*
 * The vCPU run loops: KVM_RUN until the guest exits, resets or faults. Port-I/O and MMIO
 * exits go through the dispatch tables, one vCPU at a time; anything unclaimed, and
 * every exit a partition should never cause, stops the partition with a fault event
 * (the Jailhouse model). vCPU 0 runs on the main thread, every other one on a thread
 * of its own; whichever vCPU stops the partition takes the others out of KVM_RUN.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "monitor/mon.h"

int mon_irq_line(struct mon *m, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	return ioctl(m->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static enum mon_stop mon_stopped(struct mon *m)
{
	return __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
}

/* Stop the partition: the first caller decides how (and the status); every vCPU is
 * taken out of KVM_RUN (immediate_exit for one about to enter it, the signal for one
 * inside). Returns true for the first caller, which reports the stop. */
bool mon_stop(struct mon *m, enum mon_stop why, uint32_t status)
{
	bool first;

	pthread_mutex_lock(&m->stop_lock);
	first = m->stop == MON_RUNNING;
	if (first) {
		m->exit_status = status;
		__atomic_store_n(&m->stop, why, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < m->nvcpus; i++) {
			struct mon_vcpu *v = &m->vcpu[i];

			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
			if (v->started && !pthread_equal(v->thread, pthread_self()))
				pthread_kill(v->thread, MON_KICK_SIGNAL);
		}
	}
	pthread_mutex_unlock(&m->stop_lock);
	return first;
}

uint64_t mon_vcpu_rip(struct mon_vcpu *v)
{
	struct kvm_regs r;

	return ioctl(v->fd, KVM_GET_REGS, &r) < 0 ? 0 : r.rip;
}

static void vcpu_fault_msg(struct mon_vcpu *v, const char *what, uint64_t rip)
{
	struct mon *m = v->m;

	if (m->nvcpus > 1)
		fprintf(stderr, "bulkhead monitor: %s: vCPU %u: %s (rip 0x%" PRIx64 ")\n",
			m->opt->name, v->index, what, rip);
	else
		fprintf(stderr, "bulkhead monitor: %s: %s (rip 0x%" PRIx64 ")\n", m->opt->name,
			what, rip);
}

/* Reports an access to nothing the partition was given. Returns true when the
 * partition stops; with --on-violation ignore it goes on (reads see all-ones, writes
 * vanish) and only the first VCPU_IGNORED_REPORTS are reported, so a guest cannot
 * flood the event log. */
static bool vcpu_violation(struct mon_vcpu *v, const char *access, uint64_t addr,
			   unsigned size, bool write, uint8_t *data)
{
	struct mon *m = v->m;
	uint64_t rip = mon_vcpu_rip(v);
	char value[40] = "", msg[128];

	if (m->opt->ignore_violations) {
		if (!write && data)
			memset(data, 0xff, size);
		if (__atomic_add_fetch(&m->ignored_violations, 1, __ATOMIC_RELAXED) >
		    VCPU_IGNORED_REPORTS)
			return false;
	} else if (!mon_stop(m, MON_STOP_FAULT, 0)) {
		return true;        /* another vCPU stopped the partition first */
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
	vcpu_fault_msg(v, msg, rip);
	return true;
}

/* Port I/O, including `rep ins/outs` (count > 1): each element is dispatched; the
 * first one refused stops the partition. */
static int vcpu_dispatch(struct mon *m, struct io_table *t, uint64_t addr, uint8_t *data,
			 unsigned size, bool write)
{
	int ret;

	pthread_mutex_lock(&m->io_lock);
	ret = io_dispatch(t, addr, data, size, write);
	pthread_mutex_unlock(&m->io_lock);
	return ret;
}

static void vcpu_pio(struct mon_vcpu *v)
{
	struct mon *m = v->m;
	struct kvm_run *run = v->run;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;
	uint64_t span = (uint64_t)run->io.count * size;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.data_offset > m->run_size || span > m->run_size - run->io.data_offset) {
		vcpu_violation(v, "port", run->io.port, size, write, NULL);
		mon_stop(m, MON_STOP_FAULT, 0);  /* KVM handed us nonsense: never go on */
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		if (vcpu_dispatch(m, &m->io.port, run->io.port, data, size, write) &&
		    vcpu_violation(v, "port", run->io.port, size, write, data))
			return;
}

static void vcpu_mmio(struct mon_vcpu *v)
{
	struct mon *m = v->m;
	struct kvm_run *run = v->run;
	unsigned size = run->mmio.len;
	bool write = run->mmio.is_write;

	if (size > sizeof(run->mmio.data)) {
		vcpu_violation(v, "mmio", run->mmio.phys_addr, size, write, NULL);
		mon_stop(m, MON_STOP_FAULT, 0);
		return;
	}
	if (vcpu_dispatch(m, &m->io.mmio, run->mmio.phys_addr, run->mmio.data, size, write))
		vcpu_violation(v, "mmio", run->mmio.phys_addr, size, write, run->mmio.data);
}

static void vcpu_fatal_exit(struct mon_vcpu *v)
{
	struct mon *m = v->m;
	struct kvm_run *run = v->run;
	uint64_t rip = mon_vcpu_rip(v);
	char msg[96];

	if (!mon_stop(m, MON_STOP_FAULT, 0))
		return;             /* another vCPU stopped the partition first */

	switch (run->exit_reason) {
	case KVM_EXIT_SHUTDOWN:
		ev_emit(m, "fault", "\"kind\":\"triple_fault\",\"rip\":\"0x%" PRIx64 "\"", rip);
		vcpu_fault_msg(v, "triple fault (vCPU shut down)", rip);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		ev_emit(m, "fault", "\"kind\":\"internal_error\",\"suberror\":%u,\"rip\":\"0x%"
			PRIx64 "\"", run->internal.suberror, rip);
		snprintf(msg, sizeof(msg), "KVM internal error, suberror %u",
			 run->internal.suberror);
		vcpu_fault_msg(v, msg, rip);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		ev_emit(m, "fault", "\"kind\":\"fail_entry\",\"reason\":\"0x%llx\",\"rip\":\"0x%"
			PRIx64 "\"", run->fail_entry.hardware_entry_failure_reason, rip);
		snprintf(msg, sizeof(msg), "vCPU entry failed, hardware reason 0x%llx",
			 run->fail_entry.hardware_entry_failure_reason);
		vcpu_fault_msg(v, msg, rip);
		break;
	default:
		ev_emit(m, "fault", "\"kind\":\"unexpected_exit\",\"exit_reason\":%u,\"rip\":\"0x%"
			PRIx64 "\"", run->exit_reason, rip);
		snprintf(msg, sizeof(msg), "unexpected KVM exit %u", run->exit_reason);
		vcpu_fault_msg(v, msg, rip);
		break;
	}
}

/* Run one vCPU until the partition stops. KVM_RUN failing is a monitor error (exit code
 * 2), not a guest fault; EINTR is the kick of mon_stop, or another signal. */
static void vcpu_loop(struct mon_vcpu *v)
{
	struct mon *m = v->m;

	while (mon_stopped(m) == MON_RUNNING) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			v->err = -errno;
			mon_stop(m, MON_STOP_ERROR, 0);
			return;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			vcpu_pio(v);
			break;
		case KVM_EXIT_MMIO:
			vcpu_mmio(v);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			x86_msr_exit(v);
			break;
		default:
			vcpu_fatal_exit(v);
			break;
		}
	}
}

static void *vcpu_thread(void *arg)
{
	vcpu_loop(arg);
	return NULL;
}

/* Only interrupts KVM_RUN (which returns EINTR, SA_RESTART or not: other calls are
 * restarted); the stop itself is in m->stop. */
static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

/* Before the sandbox: the kick signal's handler, vCPU 0 pinned to its CPU (the main
 * thread; the I/O thread, started before, keeps the whole --cpus set), and a thread for
 * every other vCPU, pinned to its own CPU. They enter KVM_RUN at once and sleep there
 * in the wait-for-SIPI state until the guest starts them. */
int mon_vcpus_start(struct mon *m)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler, .sa_flags = SA_RESTART };
	const struct mon_options *o = m->opt;
	int ret;

	sigemptyset(&sa.sa_mask);
	if (sigaction(MON_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	m->vcpu[0].thread = pthread_self();
	m->vcpu[0].started = true;
	if (m->nvcpus > 1 && o->vcpu_host[0] >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o->vcpu_host[0], &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			return -errno;
	}
	for (unsigned i = 1; i < m->nvcpus; i++) {
		struct mon_vcpu *v = &m->vcpu[i];
		pthread_attr_t attr;
		cpu_set_t set;

		pthread_attr_init(&attr);
		if (o->vcpu_host[i] >= 0) {
			CPU_ZERO(&set);
			CPU_SET(o->vcpu_host[i], &set);
			pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		pthread_mutex_lock(&m->stop_lock);
		ret = pthread_create(&v->thread, &attr, vcpu_thread, v);
		v->started = !ret;
		pthread_mutex_unlock(&m->stop_lock);
		pthread_attr_destroy(&attr);
		if (ret) {
			mon_stop(m, MON_STOP_ERROR, 0);
			mon_vcpus_join(m);
			return -ret;
		}
	}
	return 0;
}

/* Every vCPU thread but the caller's has ended (call only once the partition stopped). */
void mon_vcpus_join(struct mon *m)
{
	for (unsigned i = 1; i < m->nvcpus; i++)
		if (m->vcpu[i].started) {
			pthread_join(m->vcpu[i].thread, NULL);
			m->vcpu[i].started = false;
		}
}

/* Run vCPU 0 on this thread until the partition stops, then wait for the others. How
 * it stopped is in m->stop (for MON_STOP_ERROR, KVM_RUN's error in m->run_error). */
void mon_vcpus_run(struct mon *m)
{
	vcpu_loop(&m->vcpu[0]);
	mon_vcpus_join(m);
	for (unsigned i = 0; i < m->nvcpus && !m->run_error; i++)
		m->run_error = m->vcpu[i].err;
}
