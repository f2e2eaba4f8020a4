/* Unit tests for src/monitor/x86/acpi.c: the ACPI tables a Linux guest reads to find its
 * CPUs, the IOAPIC, the PCI root bridge and how to power off. Follows the pointers as a
 * guest would (RSDP, XSDT/RSDT, FADT, FACS, DSDT, MADT), checks every checksum and
 * length, the MADT entry by entry, and walks the DSDT's AML package lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "monitor/x86/acpi.h"

#define GPA 0xe0000u
#define BUF 0x10000u

static uint8_t buf[BUF];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const struct acpi_config cfg = {
	.ncpus = 2, .lapic_addr = 0xfee00000u, .ioapic_addr = 0xfec00000u, .ioapic_id = 2,
	.ioapic_pins = 24, .pci_pin_base = 16, .sci_irq = 9, .rtc_century = 0x32,
	.pm1a_evt = 0x620, .pm1a_cnt = 0x624, .reset_port = 0x626, .reset_value = 1,
	.pci_mmio_base = 0xc0000000u, .pci_mmio_end = 0xfebfffffu,
};

/* A table at guest-physical address gpa, inside what was built: its signature, its
 * length within bounds, its checksum. */
static const uint8_t *table(uint64_t gpa, size_t used, const char *sig)
{
	const uint8_t *t;

	assert_true(gpa >= GPA && gpa + ACPI_HEADER_SIZE <= GPA + used);
	t = buf + (gpa - GPA);
	assert_memory_equal(t, sig, 4);
	assert_true(gpa + get32(t + 4) <= GPA + used);
	assert_int_equal(sum(t, get32(t + 4)), 0);
	return t;
}

/* Decodes an AML PkgLength at p: the length it gives (itself included), and its size. */
static size_t pkglen(const uint8_t *p, unsigned *n)
{
	unsigned follow = p[0] >> 6;
	size_t len;

	*n = follow + 1;
	if (!follow)
		return p[0] & 0x3f;
	len = p[0] & 0x0f;
	for (unsigned i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	return len;
}

static const uint8_t *find(const uint8_t *p, size_t len, const char *what, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(p + i, what, n))
			return p + i;
	return NULL;
}

static void test_rsdp_and_root_tables(void **state)
{
	size_t used = acpi_build(buf, sizeof(buf), GPA, &cfg);
	const uint8_t *x, *r;

	(void)state;
	assert_true(used > 0 && used < BUF);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(buf[15], 2);
	assert_int_equal(get32(buf + 20), ACPI_RSDP_SIZE);
	assert_int_equal(sum(buf, ACPI_RSDP_SIZE), 0);
	x = table(get64(buf + 24), used, "XSDT");
	r = table(get32(buf + 16), used, "RSDT");
	/* The same two tables, FADT and MADT, in both. */
	assert_int_equal(get32(x + 4), ACPI_HEADER_SIZE + 2 * 8);
	assert_int_equal(get32(r + 4), ACPI_HEADER_SIZE + 2 * 4);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(get64(x + ACPI_HEADER_SIZE + 8 * i),
				 get32(r + ACPI_HEADER_SIZE + 4 * i));
		table(get64(x + ACPI_HEADER_SIZE + 8 * i), used, i ? "APIC" : "FACP");
	}
}

static const uint8_t *fadt_of(size_t used)
{
	const uint8_t *x = table(get64(buf + 24), used, "XSDT");

	return table(get64(x + ACPI_HEADER_SIZE), used, "FACP");
}

static void test_fadt(void **state)
{
	size_t used = acpi_build(buf, sizeof(buf), GPA, &cfg);
	const uint8_t *f = fadt_of(used), *facs;

	(void)state;
	assert_int_equal(get32(f + 4), ACPI_FADT_SIZE);
	assert_int_equal(f[8], 6);
	/* The FACS: 64-byte aligned, below 4 GiB, so X_FIRMWARE_CTRL stays 0. */
	assert_int_equal(get32(f + 36) % 64, 0);
	assert_int_equal(get64(f + 132), 0);
	facs = buf + (get32(f + 36) - GPA);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(get32(facs + 4), ACPI_FACS_SIZE);
	/* DSDT in both fields. */
	table(get32(f + 40), used, "DSDT");
	assert_int_equal(get64(f + 140), get32(f + 40));
	assert_int_equal(get16(f + 46), 9);                 /* SCI */
	assert_int_equal(get32(f + 48), 0);                 /* no SMI_CMD: always ACPI mode */
	assert_int_equal(get32(f + 56), 0x620);             /* PM1a event block */
	assert_int_equal(get32(f + 64), 0x624);             /* PM1a control block */
	assert_int_equal(get32(f + 76), 0);                 /* no PM timer */
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[108], 0x32);                     /* CMOS century */
	assert_int_equal(get16(f + 109) & 0x2, 0);          /* no 8042 */
	assert_int_equal(get16(f + 109) & 0x8, 0);          /* MSI allowed */
	assert_int_equal(get32(f + 112) & (1u << 20), 0);   /* not hardware-reduced */
	/* The 64-bit PM1 blocks: system I/O, as wide as the blocks, at the same ports. */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(get64(f + 152), 0x620);
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(get64(f + 176), 0x624);
	/* The reset register: supported, one byte at port 0x626, byte access, value 1. */
	assert_int_equal(get32(f + 112) & (1u << 10), 1u << 10);
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(f[119], 1);
	assert_int_equal(get64(f + 120), 0x626);
	assert_int_equal(f[128], 1);
}

static void test_madt(void **state)
{
	size_t used = acpi_build(buf, sizeof(buf), GPA, &cfg);
	const uint8_t *x = table(get64(buf + 24), used, "XSDT");
	const uint8_t *m = table(get64(x + ACPI_HEADER_SIZE + 8), used, "APIC");
	const uint8_t *e = m + 44, *end = m + get32(m + 4);
	unsigned cpus = 0, ioapics = 0, isos = 0, nmis = 0;

	(void)state;
	assert_int_equal(get32(m + 36), 0xfee00000u);
	assert_int_equal(get32(m + 40) & 1, 1);             /* PCAT_COMPAT */
	while (e < end) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], cpus);       /* UID */
			assert_int_equal(e[3], cpus);       /* APIC ID */
			assert_int_equal(get32(e + 4) & 1, 1);
			cpus++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 2);
			assert_int_equal(get32(e + 4), 0xfec00000u);
			assert_int_equal(get32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			/* Only the SCI: the PIT's IRQ 0 is GSI 0 under KVM's routing. */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[3], 9);
			assert_int_equal(get32(e + 4), 9);
			assert_int_equal(get16(e + 8), 0xd);   /* active high, level */
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);             /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		e += e[1];
	}
	assert_ptr_equal(e, end);
	assert_int_equal(cpus, 2);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
}

/* The DSDT: Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _UID, _CRS, _PRT } }, then
 * Name (_S5_, Package {5, 5, 0, 0}); the package lengths are followed exactly. */
static void test_dsdt(void **state)
{
	size_t used = acpi_build(buf, sizeof(buf), GPA, &cfg);
	const uint8_t *f = fadt_of(used);
	const uint8_t *d = table(get32(f + 40), used, "DSDT");
	const uint8_t *p = d + ACPI_HEADER_SIZE, *end = d + get32(d + 4), *dev, *dev_end, *q;
	unsigned n;
	size_t len;

	(void)state;
	assert_int_equal(p[0], 0x10);                       /* ScopeOp */
	len = pkglen(p + 1, &n);
	assert_memory_equal(p + 1 + n, "\\_SB_", 5);
	q = p + 1 + len;                                    /* after the scope */
	dev = p + 1 + n + 5;
	assert_int_equal(dev[0], 0x5b);
	assert_int_equal(dev[1], 0x82);                     /* DeviceOp */
	len = pkglen(dev + 2, &n);
	dev_end = dev + 2 + len;
	assert_ptr_equal(dev_end, q);                       /* the device fills the scope */
	assert_memory_equal(dev + 2 + n, "PCI0", 4);
	assert_memory_equal(dev + 2 + n + 4, "\x08_HID\x0c\x41\xd0\x0a\x03", 10);

	/* _CRS: a buffer of resource descriptors ending in an end tag, with the memory
	 * window as configured. */
	q = find(dev, (size_t)(dev_end - dev), "\x08_CRS\x11", 6);
	assert_non_null(q);
	len = pkglen(q + 6, &n);
	{
		const uint8_t *b = q + 6 + n, *res;
		size_t blen;

		assert_int_equal(b[0], 0x0a);               /* BytePrefix: buffer size */
		blen = b[1];
		res = b + 2;
		assert_int_equal(6 + len, (size_t)(res + blen - q));
		assert_int_equal(res[blen - 2], 0x79);
		q = find(res, blen, "\x87\x17\x00\x00", 4);  /* DWord memory */
		assert_non_null(q);
		assert_int_equal(get32(q + 10), 0xc0000000u);
		assert_int_equal(get32(q + 14), 0xfebfffffu);
		assert_int_equal(get32(q + 22), 0xfebfffffu - 0xc0000000u + 1);
	}

	/* _PRT: 31 packages, slot s's INTA# on GSI 16 + s % 8. */
	q = find(dev, (size_t)(dev_end - dev), "\x08_PRT\x12", 6);
	assert_non_null(q);
	len = pkglen(q + 6, &n);
	assert_true(n == 2);                                /* longer than 63 bytes */
	assert_ptr_equal(q + 6 + len, dev_end);             /* the last thing in PCI0 */
	{
		const uint8_t *e = q + 6 + n + 1;

		assert_int_equal(q[6 + n], 31);
		for (unsigned s = 1; s < 32; s++) {
			size_t elen;
			unsigned en;

			assert_int_equal(e[0], 0x12);
			elen = pkglen(e + 1, &en);
			assert_int_equal(e[1 + en], 4);
			assert_int_equal(e[2 + en], 0x0c);      /* DWordPrefix */
			assert_int_equal(get32(e + 3 + en), s << 16 | 0xffff);
			assert_int_equal(e[7 + en], 0x00);      /* INTA# */
			assert_int_equal(e[8 + en], 0x00);      /* source: a GSI */
			assert_int_equal(e[9 + en], 0x0a);
			assert_int_equal(e[10 + en], 16 + s % 8);
			e += 1 + elen;
		}
		assert_ptr_equal(e, dev_end);
	}

	/* _S5_ right after the scope, and the table ends with it. */
	q = p + 1 + pkglen(p + 1, &n);
	assert_memory_equal(q, "\x08_S5_\x12", 6);
	len = pkglen(q + 6, &n);
	assert_memory_equal(q + 6 + n, "\x04\x0a\x05\x0a\x05\x00\x00", 7);
	assert_ptr_equal(q + 6 + len, end);
}

/* With a panic port: Device (PEVT) { _HID "QEMU0001", _CRS { IO 0x505, 1 byte } } follows
 * PCI0 inside \_SB, and the scope's length covers it exactly. */
static void test_dsdt_pvpanic(void **state)
{
	static const uint8_t pevt[] = {
		'P', 'E', 'V', 'T',
		0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0,
		0x08, '_', 'C', 'R', 'S', 0x11, 13, 0x0a, 10,
		0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00,
	};
	struct acpi_config c = cfg;
	size_t used, len, dlen;
	const uint8_t *d, *p, *dev, *pe;
	unsigned n, dn;

	(void)state;
	c.pvpanic_port = 0x505;
	used = acpi_build(buf, sizeof(buf), GPA, &c);
	assert_true(used > 0);
	d = table(get32(fadt_of(used) + 40), used, "DSDT");
	p = d + ACPI_HEADER_SIZE;
	assert_int_equal(p[0], 0x10);
	len = pkglen(p + 1, &n);
	dev = p + 1 + n + 5;                                /* PCI0 */
	dlen = pkglen(dev + 2, &dn);
	pe = dev + 2 + dlen;                                /* the next device */
	assert_int_equal(pe[0], 0x5b);
	assert_int_equal(pe[1], 0x82);
	assert_int_equal(pkglen(pe + 2, &dn), 1 + sizeof(pevt));
	assert_int_equal(dn, 1);
	assert_memory_equal(pe + 3, pevt, sizeof(pevt));
	assert_ptr_equal(pe + 3 + sizeof(pevt), p + 1 + len);   /* the scope's end */
	/* Without one, no PEVT anywhere. */
	used = acpi_build(buf, sizeof(buf), GPA, &cfg);
	d = table(get32(fadt_of(used) + 40), used, "DSDT");
	assert_null(find(d, get32(d + 4), "PEVT", 4));
}

static void test_one_cpu_and_bad_configs(void **state)
{
	struct acpi_config c = cfg;
	size_t used;

	(void)state;
	c.ncpus = 1;
	used = acpi_build(buf, sizeof(buf), GPA, &c);
	assert_true(used > 0);
	/* Too small a buffer: nothing but a refusal, never a write past it. */
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(buf, used - 1, GPA, &c), 0);
	for (size_t i = used - 1; i < BUF; i++)
		assert_int_equal(buf[i], 0xa5);
	c.ncpus = 0;
	assert_int_equal(acpi_build(buf, sizeof(buf), GPA, &c), 0);
	c.ncpus = ACPI_MAX_CPUS + 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), GPA, &c), 0);
	c = cfg;
	c.pci_pin_base = 20;                                /* 20 + 7 > 23 */
	assert_int_equal(acpi_build(buf, sizeof(buf), GPA, &c), 0);
	c = cfg;
	assert_int_equal(acpi_build(buf, sizeof(buf), GPA + 8, &c), 0);   /* misaligned */
	c.ncpus = ACPI_MAX_CPUS;
	assert_true(acpi_build(buf, sizeof(buf), GPA, &c) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_and_root_tables),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_dsdt),
		cmocka_unit_test(test_dsdt_pvpanic),
		cmocka_unit_test(test_one_cpu_and_bad_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
