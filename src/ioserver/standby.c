/*
 * The waiting half of a hot standby I/O server (`--standby-fd`): exec'd ahead of need,
 * it blocks on the supervisor's channel until told to become the server, then takes the
 * descriptors and the command line a fork + exec would have given it (the message is
 * described in include/bulkhead/control.h). Everything after that is the ordinary
 * supervised start-up, sandbox included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "ioserver/ioserver.h"

/* The descriptor numbers a plan may name: above stdin/stdout/stderr and the event fd,
 * and below what a process may have open. */
#define STANDBY_FIRST_FD  4
#define STANDBY_LAST_FD   65535
#define STANDBY_MAX_ARGS  4096

static int standby_fail(const char *why)
{
	fprintf(stderr, "bulkhead ioserver: standby: %s\n", why);
	return -1;
}

/* The received descriptors (which the kernel put at the lowest free numbers, maybe
 * where others must go) at their planned numbers, without one clobbering another. */
static int place(int *fds, const int32_t *dst, unsigned n)
{
	int above = STANDBY_FIRST_FD;

	for (unsigned i = 0; i < n; i++)
		if (dst[i] + 1 > above)
			above = dst[i] + 1;
	for (unsigned i = 0; i < n; i++) {
		int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, above);

		if (hi < 0)
			return -errno;
		close(fds[i]);
		fds[i] = hi;
	}
	for (unsigned i = 0; i < n; i++) {
		if (dup2(fds[i], dst[i]) < 0)
			return -errno;
		close(fds[i]);
	}
	return 0;
}

int ios_standby_wait(int chan, const char *class, char ***argv_out)
{
	static char buf[BH_STANDBY_MSG_MAX];
	static char control[CMSG_SPACE(sizeof(int) * BH_STANDBY_MAX_FDS)];
	static char *argv[STANDBY_MAX_ARGS + 1];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct bh_standby_msg h;
	int fds[BH_STANDBY_MAX_FDS], nfds = 0, rc;
	int32_t dst[BH_STANDBY_MAX_FDS];
	size_t off, len;
	ssize_t got;
	unsigned argc = 0;

	do
		got = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	if (got == 0)
		return 0;               /* not needed: the supervisor closed the channel */
	if (got < 0)
		return standby_fail(strerror(errno));
	close(chan);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)nfds);
		}
	len = (size_t)got;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || len < sizeof(h))
		return standby_fail("the supervisor's message is cut short");
	memcpy(&h, buf, sizeof(h));
	if (h.magic != BH_STANDBY_MAGIC || h.nfds != (unsigned)nfds ||
	    h.nfds > BH_STANDBY_MAX_FDS || h.argc > STANDBY_MAX_ARGS || len < sizeof(h) + h.nfds * sizeof(int32_t))
		return standby_fail("the supervisor's message is not a plan");
	memcpy(dst, buf + sizeof(h), h.nfds * sizeof(int32_t));
	for (unsigned i = 0; i < h.nfds; i++)
		if (dst[i] < STANDBY_FIRST_FD || dst[i] > STANDBY_LAST_FD)
			return standby_fail("a descriptor number is out of range");
	/* the arguments: argc strings, each ended by a NUL inside the message */
	for (off = sizeof(h) + h.nfds * sizeof(int32_t); off < len && argc < h.argc; argc++) {
		char *end = memchr(buf + off, '\0', len - off);

		if (!end)
			break;
		argv[argc] = buf + off;
		off = (size_t)(end - buf) + 1;
	}
	if (argc != h.argc || off != len || argc < 3 || strcmp(argv[1], "ioserver") ||
	    strcmp(argv[2], class))
		return standby_fail("the supervisor's command line is not for this server");
	rc = place(fds, dst, h.nfds);
	if (rc)
		return standby_fail(strerror(-rc));
	argv[argc] = NULL;
	*argv_out = argv + 1;       /* from "ioserver", as the command table calls us */
	return (int)argc - 1;
}
