/*
 * The monitor's seccomp sandbox, entered after set-up and before the first KVM_RUN:
 * an allowlist of what the vCPU threads and the I/O thread need. No open, no exec, no new
 * processes or threads, no new sockets, no signal but the vCPUs' kick; ioctl only with
 * the few KVM requests the loop and the virtio devices issue. Anything else kills the
 * process.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "monitor/mon.h"

/* System calls the run loop, stdio on unbuffered stderr, and malloc may make;
 * sigaltstack is the sanitizer runtime's, on _exit. The virtio devices add the I/O
 * thread's epoll, vhost-user messages on the already-connected server sockets
 * (sendmsg, recvmsg and recv, which is recvfrom; close for descriptors a server
 * sends unasked). A restarted server's connection arrives on the control socket
 * (recvmsg) and gets fresh eventfds (eventfd2) and the socket timeouts (setsockopt,
 * those two options only). The watchdog re-arms its timerfd (timerfd_settime). The
 * vCPU threads exist before the sandbox; stopping them is pthread_kill (getpid, and
 * tgkill with the kick signal only, below) and pthread_join (futex). */
static const int sandbox_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(recvfrom), SCMP_SYS(close),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(futex), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall), SCMP_SYS(clock_gettime), SCMP_SYS(sigaltstack),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(eventfd2),
	SCMP_SYS(timerfd_settime), SCMP_SYS(getpid),
};

/* setsockopt(fd, SOL_SOCKET, one of these, ...) on a reconnected server socket. */
static const int sandbox_sockopts[] = {
	SO_RCVTIMEO, SO_SNDTIMEO,
#if defined(SO_RCVTIMEO_NEW) && SO_RCVTIMEO_NEW != SO_RCVTIMEO
	SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW,
#endif
};

/* KVM requests allowed after set-up, on whichever KVM fd. The virtio devices move
 * ioeventfds and irqfds when the guest reprograms BARs and MSI-X, rewrite the GSI
 * routing and inject MSIs the monitor delivers itself. */
static const unsigned long sandbox_ioctls[] = {
	KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS,
	KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI,
};

int sandbox_enter(struct mon *m)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	/* Apply to every thread of the process, not just the caller. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !ret && i < sizeof(sandbox_syscalls) / sizeof(sandbox_syscalls[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_syscalls[i], 0);
	for (size_t i = 0; !ret && i < sizeof(sandbox_ioctls) / sizeof(sandbox_ioctls[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_EQ, sandbox_ioctls[i]));
	for (size_t i = 0; !ret && i < sizeof(sandbox_sockopts) / sizeof(sandbox_sockopts[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
				       SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET),
				       SCMP_A2(SCMP_CMP_EQ, sandbox_sockopts[i]));
	/* malloc may map anonymous memory, never executable memory. */
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* A vCPU that stops the partition kicks the others out of KVM_RUN (vcpu.c). */
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				       SCMP_A2(SCMP_CMP_EQ, MON_KICK_SIGNAL));
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}
