/*
 * What every process the supervisor starts (monitor, I/O server, QEMU) does between
 * fork and exec: die with the supervisor, take its signals back, and receive its
 * descriptors at fixed numbers without one placement clobbering another.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "supervisor/sup.h"

void sup_child_init(void)
{
	sigset_t none;

	/* The child must not outlive the supervisor, whatever happens to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int sup_child_lift(int fd, int above)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, above);
}
