/*
 * The system-control device (BH_SYSCTL_*): how an inmate reports its exit status,
 * requests a reset, or kicks the watchdog. Registers are 32-bit, write-only.
 */
#include <inmate/cpu.h>
#include <inmate/io.h>
#include <inmate/runtime.h>

void bh_exit(uint32_t status)
{
	outl(BH_SYSCTL_EXIT, status);
	/* The monitor stops the vCPU on the write above; halting is only a fallback. */
	cpu_halt_forever();
}

void bh_reset_request(void)
{
	outl(BH_SYSCTL_RESET, 1);
}

void bh_watchdog_kick(void)
{
	outl(BH_SYSCTL_WATCHDOG, 1);
}
