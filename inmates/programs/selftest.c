/*
 * selftest: checks the inmate runtime from inside a partition: formatting, string
 * helpers, argument parsing, exception hooks, PCI enumeration and BAR sizing, delays.
 * Exits with the number of failed checks (0 = all good).
 */
#include <inmate/inmate.h>

#define SELFTEST_BUF 64

static int fmt_is(const char *expect, const char *fmt, ...) INMATE_PRINTF(2, 3);

static int fmt_is(const char *expect, const char *fmt, ...)
{
	char buf[SELFTEST_BUF];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	EXPECT_EQ(n, (int)strlen(expect));
	return EXPECT_STREQ(buf, expect);
}

static void test_printf(void)
{
	char small[4];

	fmt_is("42 -7 7", "%d %i %u", 42, -7, 7u);
	fmt_is("ff FF 0xff 0377", "%x %X %#x %#o", 255, 255, 255, 255);
	fmt_is("ffffffffffffffff", "%lx", ~0UL);
	fmt_is("-9223372036854775808", "%lld", (long long)INT64_MIN);
	fmt_is("18446744073709551615", "%llu", ~0ULL);
	fmt_is("123456789012", "%zu", (size_t)123456789012ULL);
	fmt_is("0x1000", "%p", (void *)0x1000);
	fmt_is("[  ab] [ab  ] [a]", "[%4s] [%-4s] [%.1s]", "ab", "ab", "ab");
	fmt_is("00042 -0042    42 42   ", "%05d %05d %5d %-5d", 42, -42, 42, 42);
	fmt_is("0000beef", "%08x", 0xbeef);
	fmt_is("x 100% y", "%c %d%% %c", 'x', 100, 'y');
	fmt_is("  7 +7 -3", "%*d %+d %d", 3, 7, 7, -3);
	fmt_is("-128 255", "%hhd %hhu", 128, 255);
	EXPECT_EQ(snprintf(small, sizeof(small), "%s", "truncate"), 8);
	EXPECT_STREQ(small, "tru");
}

static void test_string(void)
{
	char buf[16] = "abcdefgh";
	char *end;

	memmove(buf + 2, buf, 6);          /* overlapping, backwards */
	EXPECT_STREQ(buf, "ababcdef");
	memmove(buf, buf + 2, 6);          /* overlapping, forwards */
	EXPECT_EQ(memcmp(buf, "abcdef", 6), 0);
	memset(buf, 'z', 3);
	EXPECT_EQ(memcmp(buf, "zzzdef", 6), 0);
	EXPECT_LT(memcmp("abc", "abd", 3), 0);
	EXPECT_EQ(strlen(""), 0);
	EXPECT_EQ(strnlen("abcdef", 3), 3);
	EXPECT_GT(strcmp("b", "a"), 0);
	EXPECT_EQ(strncmp("abcx", "abcy", 3), 0);
	EXPECT_TRUE(strchr("hello", 'l') != 0);
	EXPECT_EQ(strtoul("0x1F", &end, 0), 31);
	EXPECT_EQ(*end, '\0');
	EXPECT_EQ(strtoul("017", 0, 0), 15);
	EXPECT_EQ(strtoul("123abc", &end, 10), 123);
	EXPECT_STREQ(end, "abc");
	EXPECT_EQ(strtoul("99999999999999999999999", 0, 10), ~0UL);
	EXPECT_EQ(strtol("-42", 0, 0), -42);
	EXPECT_EQ(strtoul("xyz", &end, 0), 0);
	EXPECT_STREQ(end, "xyz");
}

static volatile int ud_seen;

/* Skips the two-byte ud2 and carries on: exceptions are recoverable when hooked. */
static void on_ud(struct irq_frame *f)
{
	ud_seen++;
	f->rip += 2;
}

static void test_exceptions(void)
{
	EXPECT_EQ(irq_register(IRQ_VEC_UD, on_ud), 0);
	cpu_ud2();
	EXPECT_EQ(ud_seen, 1);
	EXPECT_EQ(irq_register(IRQ_VEC_UD, 0), 0);
	EXPECT_EQ(irq_register(IRQ_NR_VECTORS, on_ud), -1);
	EXPECT_FALSE(cpu_read_rflags() & CPU_RFLAGS_IF);
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int check_device(const struct pci_dev *d, void *ctx)
{
	unsigned *count = ctx;
	struct pci_bar bar;

	(*count)++;
	printf("selftest: pci %02x:%02x.%x %04x:%04x class %02x.%02x.%02x\n", d->bus, d->slot,
	       d->func, d->vendor, d->device, d->class_code, d->subclass, d->prog_if);
	if (d->header_type != 0)
		return 0;
	for (int n = 0; n >= 0 && n < PCI_NR_BARS;) {
		int next = pci_bar_probe(d, n, &bar);

		if (bar.size) {
			printf("selftest:   BAR%d %s%s%s at 0x%lx, size 0x%lx\n", n,
			       bar.is_io ? "io" : "mem", bar.is_64bit ? " 64-bit" : "",
			       bar.prefetchable ? " prefetchable" : "", bar.addr, bar.size);
			EXPECT_TRUE(is_pow2(bar.size));
			EXPECT_EQ(bar.addr & (bar.size - 1), 0);
		}
		EXPECT_GT(next, n);
		n = next;
	}
	return 0;
}

static void test_pci(void)
{
	struct pci_dev host, d;
	unsigned count = 0;

	/* The monitor always provides a host bridge at 00:00.0; slot 31 is empty. */
	EXPECT_EQ(pci_probe(0, 0, 0, &host), 0);
	EXPECT_EQ(host.class_code, 0x06);
	EXPECT_EQ(host.subclass, 0x00);
	EXPECT_EQ(pci_probe(0, 31, 0, &d), -1);
	EXPECT_EQ(pci_find_class(0x06, 0x00, 0, &d), 0);
	EXPECT_EQ(d.slot, 0);
	EXPECT_EQ(pci_find_device(host.vendor, host.device, 0, &d), 0);
	EXPECT_EQ(pci_find_device(host.vendor, PCI_ANY_ID, 0, &d), 0);
	EXPECT_EQ(pci_find_device(PCI_VENDOR_NONE - 1, PCI_ANY_ID, 0, &d), -1);
	EXPECT_EQ(pci_foreach(check_device, &count), 0);
	EXPECT_GE(count, 1);
}

static void test_time(void)
{
	uint64_t t0, us;

	EXPECT_GT(tsc_khz(), 0);
	t0 = tsc_now();
	udelay(1000);
	us = tsc_to_us(tsc_now() - t0);
	EXPECT_GE(us, 1000);
	EXPECT_LT(us, 50000);   /* generous: a preempted vCPU may overshoot */
}

static void test_bootinfo(int argc, char **argv)
{
	const struct bh_bootinfo *bi = bh_bootinfo();

	EXPECT_TRUE(bh_bootinfo_valid());
	EXPECT_EQ(bi->magic, BH_BOOTINFO_MAGIC);
	EXPECT_GE(bi->mem_size, BH_BOOT_AREA_END);
	EXPECT_GE(bi->nr_vcpus, 1);
	EXPECT_STREQ(argv[0], bi->name[0] ? bi->name : "inmate");
	EXPECT_EQ(argv[argc], (char *)0);
}

int main(int argc, char **argv)
{
	test_bootinfo(argc, argv);
	test_printf();
	test_string();
	test_exceptions();
	test_time();
	test_pci();
	return test_summary();
}
