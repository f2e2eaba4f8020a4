/*
 * The I/O server's seccomp allowlist, entered once every fd it will use is open: what the
 * loop needs and nothing else. No open, no exec, no new processes, no executable mmap;
 * a memfd only for inflight regions; accept4, socket timeouts and one unlinkat only when
 * standalone.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "ioserver/ioserver.h"

/* The loop, vhost-user messages, eventfds, io_uring, getrandom, stdio on unbuffered
 * stderr, malloc, and net's timerfd; sigaltstack is the sanitizer runtime's. */
static const int ios_sandbox_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(close), SCMP_SYS(dup), SCMP_SYS(fstat), SCMP_SYS(munmap),
	SCMP_SYS(io_uring_enter), SCMP_SYS(getrandom), SCMP_SYS(fdatasync),
	SCMP_SYS(fallocate),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(futex), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall), SCMP_SYS(clock_gettime), SCMP_SYS(sigaltstack),
	SCMP_SYS(brk), SCMP_SYS(madvise),
	SCMP_SYS(timerfd_settime),        /* net: held frames and counter reports */
};

static int ios_sandbox_rules(struct ios *s, scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < sizeof(ios_sandbox_syscalls) / sizeof(ios_sandbox_syscalls[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, ios_sandbox_syscalls[i], 0);
	/* Guest memory and malloc: never executable. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Inflight regions (GET_INFLIGHT_FD): a sealable memfd, sized with fallocate, and
	 * sealed; nothing else of fcntl. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(memfd_create), 1,
				      SCMP_A1(SCMP_CMP_EQ, MFD_CLOEXEC | MFD_ALLOW_SEALING));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				      SCMP_A1(SCMP_CMP_EQ, F_ADD_SEALS));
	/* fstat() is newfstatat(fd, "", AT_EMPTY_PATH) in glibc: only that form. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
				      SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	/* New connections after start-up (accepted, or from the control channel) get
	 * their timeouts; the control channel's sockets are checked for their kind. */
	for (int i = 0; !rc && (s->listen_fd >= 0 || s->ctl_fd >= 0) && i < 2; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
				      SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET),
				      SCMP_A2(SCMP_CMP_EQ, i ? SO_SNDTIMEO : SO_RCVTIMEO));
	for (int i = 0; !rc && s->ctl_fd >= 0 && i < 2; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getsockopt), 2,
				      SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET),
				      SCMP_A2(SCMP_CMP_EQ, i ? SO_TYPE : SO_DOMAIN));
	if (!rc && s->listen_fd >= 0) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(accept4), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)s->listen_fd));
		if (!rc)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unlinkat), 1,
					      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)s->sock_dir_fd));
	}
	return rc;
}

int ios_sandbox_enter(struct ios *s)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc;

	if (!ctx)
		return -ENOMEM;
	rc = ios_sandbox_rules(s, ctx);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}
