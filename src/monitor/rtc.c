/*
 * The MC146818 real-time clock at ports 0x70 (index) and 0x71 (data), for --kernel
 * partitions: the host's UTC time, read-only, never in an update cycle, no interrupts.
 * Linux probes this clock on every PC (without ACPI nothing can tell it there is none);
 * with the ports floating (all-ones) its driver waits for an update that never ends,
 * ~18 s of a ~40 s boot in the rig.
 */
#include <errno.h>
#include <time.h>

#include "monitor/mon.h"

#define RTC_PORT_INDEX   0x70
#define RTC_PORT_DATA    0x71
#define RTC_INDEX_MASK   0x7f      /* bit 7 of the index is the NMI mask: ignored */

#define RTC_SECONDS      0x00
#define RTC_MINUTES      0x02
#define RTC_HOURS        0x04
#define RTC_WEEKDAY      0x06
#define RTC_MDAY         0x07
#define RTC_MONTH        0x08
#define RTC_YEAR         0x09
#define RTC_REG_A        0x0a
#define RTC_REG_B        0x0b
#define RTC_REG_C        0x0c
#define RTC_REG_D        0x0d
#define RTC_CENTURY      0x32      /* the usual CMOS place (ACPI FADT's default) */

#define RTC_A_UIP        0x80      /* update in progress: never */
#define RTC_A_DEFAULT    0x26      /* 32.768 kHz base, 1024 Hz rate */
#define RTC_B_SET        0x80
#define RTC_B_BINARY     0x04      /* DM: binary, not BCD */
#define RTC_B_24H        0x02
#define RTC_B_DEFAULT    RTC_B_24H
#define RTC_D_VRT        0x80      /* valid RAM and time */
#define RTC_HOURS_PM     0x80      /* 12-hour mode */

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian; eras of 400 years
 * of 146097 days, years starting on March 1 so that leap days come last). Not
 * gmtime_r: glibc's reads the time-zone files on first use, which the sandbox forbids. */
static void rtc_civil(int64_t days, int *year, int *month, int *mday)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(yoe + era * 400 + (*month <= 2));
}

static uint8_t rtc_encode(const struct mon_rtc *r, unsigned v)
{
	return (r->cmos[RTC_REG_B] & RTC_B_BINARY) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

/* A time register now, in the mode register B asks for. */
static uint8_t rtc_time_reg(const struct mon_rtc *r, unsigned reg)
{
	struct timespec ts;
	int64_t secs, days, rem;
	int year, month, mday;
	unsigned hour;

	clock_gettime(CLOCK_REALTIME, &ts);
	secs = ts.tv_sec;
	days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	rem = secs - days * 86400;
	switch (reg) {
	case RTC_SECONDS:
		return rtc_encode(r, (unsigned)(rem % 60));
	case RTC_MINUTES:
		return rtc_encode(r, (unsigned)(rem / 60 % 60));
	case RTC_HOURS:
		hour = (unsigned)(rem / 3600);
		if (r->cmos[RTC_REG_B] & RTC_B_24H)
			return rtc_encode(r, hour);
		return (uint8_t)(rtc_encode(r, hour % 12 ? hour % 12 : 12) |
				 (hour >= 12 ? RTC_HOURS_PM : 0));
	case RTC_WEEKDAY:
		return rtc_encode(r, (unsigned)((days % 7 + 11) % 7 + 1));   /* 1 = Sunday */
	}
	rtc_civil(days, &year, &month, &mday);
	switch (reg) {
	case RTC_MDAY:
		return rtc_encode(r, (unsigned)mday);
	case RTC_MONTH:
		return rtc_encode(r, (unsigned)month);
	case RTC_YEAR:
		return rtc_encode(r, (unsigned)(year % 100));
	default:
		return rtc_encode(r, (unsigned)(year / 100));
	}
}

static uint8_t rtc_read(struct mon_rtc *r, unsigned reg)
{
	switch (reg) {
	case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS: case RTC_WEEKDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		return rtc_time_reg(r, reg);
	case RTC_REG_C:
		return 0;          /* no interrupt flags: the clock raises none */
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return r->cmos[reg];   /* register A (UIP never set), B, alarms, CMOS RAM */
	}
}

static void rtc_write(struct mon_rtc *r, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS: case RTC_WEEKDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
	case RTC_REG_C: case RTC_REG_D:
		return;            /* the time is the host's: setting it is ignored */
	case RTC_REG_A:
		r->cmos[reg] = v & (uint8_t)~RTC_A_UIP;
		return;
	case RTC_REG_B:
		r->cmos[reg] = v & (uint8_t)~RTC_B_SET;
		return;
	default:
		r->cmos[reg] = v;
	}
}

static int rtc_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct mon_rtc *r = opaque;

	if (size != 1)
		return -EINVAL;
	if (off == RTC_PORT_INDEX - RTC_PORT_INDEX) {
		if (write)
			r->index = (uint8_t)(*val & RTC_INDEX_MASK);
		else
			*val = 0xff;   /* write-only on a PC */
		return 0;
	}
	if (write)
		rtc_write(r, r->index, (uint8_t)*val);
	else
		*val = rtc_read(r, r->index);
	return 0;
}

int rtc_register(struct mon *m)
{
	m->rtc.cmos[RTC_REG_A] = RTC_A_DEFAULT;
	m->rtc.cmos[RTC_REG_B] = RTC_B_DEFAULT;
	return io_register(&m->io.port, RTC_PORT_INDEX, RTC_PORT_DATA - RTC_PORT_INDEX + 1,
			   "rtc", rtc_io, &m->rtc);
}
