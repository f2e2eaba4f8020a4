/*
 * The inmate's view of its partition: boot information, arguments and the
 * system-control device (exit, reset, watchdog). Program entry is the usual
 * `int main(int argc, char **argv)`; its return value becomes the exit status.
 */
#ifndef INMATE_RUNTIME_H
#define INMATE_RUNTIME_H

#include <stdint.h>
#include <bulkhead/bootinfo.h>
#include <bulkhead/platform.h>

/* Exit statuses the runtime itself reports (chosen above anything a test harness or a
 * program normally returns, and below 256 so they survive as a process exit code). */
#define INMATE_STATUS_EXCEPTION_BASE  0xE0  /* + vector (0..31): unhandled CPU exception */

#define INMATE_MAX_ARGS               64

/* The boot information, copied at start-up. Never NULL: when the monitor passed no
 * valid block (bad magic), a zeroed one is returned and bh_bootinfo_valid() says so. */
const struct bh_bootinfo *bh_bootinfo(void);
int bh_bootinfo_valid(void);

/* Report `status` to the monitor and stop this partition. */
__attribute__((noreturn)) void bh_exit(uint32_t status);

/* Ask the monitor for a reset. Returns only if the monitor ignored the request. */
void bh_reset_request(void);

/* Tell the monitor's watchdog this partition is alive. */
void bh_watchdog_kick(void);

int main(int argc, char **argv);

#endif
