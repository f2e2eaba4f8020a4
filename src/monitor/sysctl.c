/*
 * The system-control device at BH_SYSCTL_PORT: the guest reports its exit status, asks
 * for a reset, or kicks its watchdog. Registers are 32-bit and write-only; any other
 * access is refused (an isolation violation).
 */
#include <errno.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"

#define SYSCTL_REG_EXIT     (BH_SYSCTL_EXIT - BH_SYSCTL_PORT)
#define SYSCTL_REG_RESET    (BH_SYSCTL_RESET - BH_SYSCTL_PORT)
#define SYSCTL_REG_WATCHDOG (BH_SYSCTL_WATCHDOG - BH_SYSCTL_PORT)

static int sysctl_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon *m = opaque;

	if (!write || size != 4)
		return -EINVAL;
	switch (off) {
	case SYSCTL_REG_EXIT:
		mon_stop(m, MON_STOP_EXIT, (uint32_t)*val);
		return 0;
	case SYSCTL_REG_RESET:
		mon_stop(m, MON_STOP_RESET, 0);
		return 0;
	case SYSCTL_REG_WATCHDOG:
		wd_kick(m);     /* counted always; enforced with --watchdog (watchdog.c) */
		return 0;
	default:
		return -EINVAL;     /* not aligned on a register */
	}
}

int sysctl_register(struct mon *m)
{
	return io_register(&m->io.port, BH_SYSCTL_PORT, BH_SYSCTL_SIZE, "sysctl", sysctl_io, m);
}
