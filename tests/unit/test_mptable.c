/* Unit tests for src/monitor/x86/mptable.c: the MP floating pointer and configuration
 * table a Linux guest reads to find its CPUs, IOAPIC and interrupt lines. Walks the
 * table as a guest would: checksums, lengths, entry by entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "monitor/x86/mptable.h"

#define GPA 0xf0000u

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static const struct mpt_config two_cpus = {
	.ncpus = 2, .lapic_addr = 0xfee00000u, .ioapic_addr = 0xfec00000u, .ioapic_pins = 24,
	.pci_slots = (1u << 1) | (1u << 3) | (1u << 9), .pci_pin_base = 16,
};

struct seen {
	unsigned cpus, bsp, buses, ioapics, ioints, lints, pci_ioints, extints;
	uint8_t ioapic_id, pin_of_isa[16], pin_of_slot[32];
};

static void walk(const uint8_t *buf, size_t len, struct seen *s)
{
	const uint8_t *t, *e, *end;
	uint16_t count;

	memset(s, 0, sizeof(*s));
	memset(s->pin_of_isa, 0xff, sizeof(s->pin_of_isa));
	memset(s->pin_of_slot, 0xff, sizeof(s->pin_of_slot));
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(sum(buf, 16), 0);
	assert_int_equal(get32(buf + 4), GPA + 16);
	t = buf + 16;
	assert_memory_equal(t, "PCMP", 4);
	assert_int_equal(16 + get16(t + 4), len);
	assert_int_equal(sum(t, get16(t + 4)), 0);
	assert_int_equal(get32(t + 36), 0xfee00000u);
	count = get16(t + 34);
	end = t + get16(t + 4);
	for (e = t + 44; e < end; count--) {
		switch (e[0]) {
		case 0:
			s->cpus++;
			assert_int_equal(e[3] & 1, 1);
			s->bsp += (e[3] & 2) != 0;
			if (e[3] & 2)
				assert_int_equal(e[1], 0);
			e += 20;
			continue;
		case 1:
			s->buses++;
			assert_true(!memcmp(e + 2, "PCI   ", 6) || !memcmp(e + 2, "ISA   ", 6));
			break;
		case 2:
			s->ioapics++;
			s->ioapic_id = e[1];
			assert_int_equal(get32(e + 4), 0xfec00000u);
			break;
		case 3:
			s->ioints++;
			assert_int_equal(e[6], s->ioapic_id);
			if (e[4] == 1 && e[1] == 0)
				s->pin_of_isa[e[5]] = e[7];
			if (e[1] == 3)
				s->extints++;
			if (e[4] == 0) {
				s->pci_ioints++;
				assert_int_equal(e[5] & 3, 0);              /* INTA# */
				assert_int_equal(get16(e + 2), 0xf);        /* active low, level */
				s->pin_of_slot[e[5] >> 2] = e[7];
			}
			break;
		case 4:
			s->lints++;
			break;
		default:
			fail_msg("unknown entry type %u", e[0]);
		}
		e += 8;
	}
	assert_ptr_equal(e, end);
	assert_int_equal(count, 0);
}

static void describes_cpus_ioapic_and_lines(void **state)
{
	uint8_t buf[1024];
	struct seen s;
	size_t n = mpt_build(buf, sizeof(buf), GPA, &two_cpus);

	assert_true(n > 0);
	walk(buf, n, &s);
	assert_int_equal(s.cpus, 2);
	assert_int_equal(s.bsp, 1);
	assert_int_equal(s.buses, 2);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.ioapic_id, 2);            /* after the CPUs' APIC IDs */
	assert_int_equal(s.lints, 2);
	/* ISA: IRQ n on pin n as KVM routes them (the timer on pin 0), IRQ 2 not listed,
	 * no IOAPIC pin for the PIC (its ExtINT goes to LINT0) */
	assert_int_equal(s.pin_of_isa[0], 0);
	assert_int_equal(s.extints, 0);
	assert_int_equal(s.pin_of_isa[4], 4);
	assert_int_equal(s.pin_of_isa[2], 0xff);
	/* PCI: one line per slot with a function, INTA# of slot s on pin 16 + s % 8 */
	assert_int_equal(s.pci_ioints, 3);
	assert_int_equal(s.pin_of_slot[1], 17);
	assert_int_equal(s.pin_of_slot[3], 19);
	assert_int_equal(s.pin_of_slot[9], 17);
	assert_int_equal(s.pin_of_slot[2], 0xff);
}

static void many_cpus_fit_and_too_small_a_buffer_does_not(void **state)
{
	struct mpt_config c = two_cpus;
	uint8_t buf[4096];
	struct seen s;
	size_t n;

	c.ncpus = MPT_MAX_CPUS;
	n = mpt_build(buf, sizeof(buf), GPA, &c);
	assert_true(n > 0);
	walk(buf, n, &s);
	assert_int_equal(s.cpus, MPT_MAX_CPUS);
	assert_int_equal(mpt_build(buf, n - 1, GPA, &c), 0);
	assert_int_equal(mpt_build(buf, 15, GPA, &c), 0);
}

static void refuses_impossible_configurations(void **state)
{
	struct mpt_config c = two_cpus;
	uint8_t buf[4096];

	c.ncpus = 0;
	assert_int_equal(mpt_build(buf, sizeof(buf), GPA, &c), 0);
	c.ncpus = MPT_MAX_CPUS + 1;
	assert_int_equal(mpt_build(buf, sizeof(buf), GPA, &c), 0);
	c = two_cpus;
	c.pci_pin_base = 20;                         /* 20 + 8 > 24 pins */
	assert_int_equal(mpt_build(buf, sizeof(buf), GPA, &c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(describes_cpus_ioapic_and_lines),
		cmocka_unit_test(many_cpus_fit_and_too_small_a_buffer_does_not),
		cmocka_unit_test(refuses_impossible_configurations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
