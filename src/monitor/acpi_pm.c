/*
 * ACPI fixed hardware for --kernel partitions: the PM1 event block (status and enable)
 * and the PM1 control block the FADT names (x86/acpi.c). The platform is always in ACPI
 * mode (SCI_EN reads 1) and raises no ACPI events; writing SLP_EN with the _S5 sleep
 * type is the guest powering off, which ends the partition as an exit with status 0.
 * The FADT's reset register: writing the reset value is a reset request, as the
 * system-control device's (exit code 3), how Linux reboots and ends a panic=-1 panic.
 * Any width inside a block is accepted, as ACPI lets a register be accessed bytewise.
 * The panic notification device the DSDT describes (QEMU0001, QEMU's pvpanic): the
 * guest's kernel writes PANICKED from its panic notifier, before it reboots or hangs,
 * and the monitor stops the partition with a fault, so the supervisor applies
 * health.on_fault (a reboot is a reset request; a panic is not).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"
#include "monitor/x86/acpi.h"

#define PM1_EN_OFF   2      /* PM1 enable follows PM1 status in the event block */

static uint64_t bytes_get(const uint8_t *r, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)r[off + i] << (8 * i);
	return v;
}

static void bytes_set(uint8_t *r, uint64_t off, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		r[off + i] = (uint8_t)(v >> (8 * i));
}

/* Status bits are write-1-to-clear and none is ever set: status reads 0. Enable bits
 * read back what was written. */
static int pm1_evt_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon *m = opaque;
	uint8_t reg[ACPI_PM1_EVT_LEN] = { 0 };

	if (off + size > ACPI_PM1_EVT_LEN)
		return -EINVAL;
	bytes_set(reg, PM1_EN_OFF, 2, m->acpi_pm.pm1_en);
	if (!write) {
		*val = bytes_get(reg, off, size);
		return 0;
	}
	bytes_set(reg, off, size, *val);
	m->acpi_pm.pm1_en = (uint16_t)bytes_get(reg, PM1_EN_OFF, 2);
	return 0;
}

static int pm1_cnt_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon *m = opaque;
	uint8_t reg[ACPI_PM1_CNT_LEN];
	uint16_t cnt;

	if (off + size > ACPI_PM1_CNT_LEN)
		return -EINVAL;
	bytes_set(reg, 0, 2, m->acpi_pm.pm1_cnt | ACPI_PM1_CNT_SCI_EN);
	if (!write) {
		*val = bytes_get(reg, off, size);
		return 0;
	}
	bytes_set(reg, off, size, *val);
	cnt = (uint16_t)bytes_get(reg, 0, 2);
	/* SLP_EN is write-only: it starts the sleep and is not kept. */
	m->acpi_pm.pm1_cnt = cnt & (uint16_t)~ACPI_PM1_CNT_SLP_EN;
	if ((cnt & ACPI_PM1_CNT_SLP_EN) &&
	    (cnt & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT == ACPI_S5_SLP_TYP) {
		mon_stop(m, MON_STOP_EXIT, 0);
	}
	return 0;
}

/* Reads 0; a write of BH_ACPI_RESET_VALUE resets, other values are ignored. */
static int reset_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon *m = opaque;

	if (off + size > ACPI_RESET_LEN)
		return -EINVAL;
	if (!write)
		*val = 0;
	else if ((*val & 0xff) == BH_ACPI_RESET_VALUE)
		mon_stop(m, MON_STOP_RESET, 0);
	return 0;
}

/* Reads the events the device reports (PANICKED only: no crash kernel is ever
 * loaded); a write with PANICKED set is the panic; other bits are ignored, as QEMU
 * does. */
static int pvpanic_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon *m = opaque;

	if (off || size != 1)
		return -EINVAL;
	if (!write) {
		*val = BH_PVPANIC_PANICKED;
		return 0;
	}
	if ((*val & BH_PVPANIC_PANICKED) && mon_stop(m, MON_STOP_FAULT, 0)) {
		ev_emit(m, "fault", "\"kind\":\"panic\",\"value\":\"0x%" PRIx64 "\"",
			*val & 0xff);
		fprintf(stderr, "bulkhead monitor: %s: the guest's kernel panicked (pvpanic)\n",
			m->opt->name);
	}
	return 0;
}

int acpi_pm_register(struct mon *m)
{
	int ret = io_register(&m->io.port, BH_ACPI_PM1A_EVT, ACPI_PM1_EVT_LEN, "acpi-pm1-evt",
			      pm1_evt_io, m);

	if (!ret)
		ret = io_register(&m->io.port, BH_ACPI_PM1A_CNT, ACPI_PM1_CNT_LEN,
				  "acpi-pm1-cnt", pm1_cnt_io, m);
	if (!ret)
		ret = io_register(&m->io.port, BH_ACPI_RESET, ACPI_RESET_LEN, "acpi-reset",
				  reset_io, m);
	if (!ret)
		ret = io_register(&m->io.port, BH_PVPANIC_PORT, 1, "pvpanic", pvpanic_io, m);
	return ret;
}
