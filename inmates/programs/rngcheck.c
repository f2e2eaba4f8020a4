/*
 * rngcheck: reads random bytes from a virtio-rng device and checks they are plausible:
 * the count asked for arrives, not all zeros, no repeated blocks, every byte value
 * present, a byte-frequency chi-square and a bit balance within bounds that a healthy
 * source misses with negligible probability. Exits with the number of failed checks.
 *
 * Arguments: [bytes=N] (default 65536, 8192..1048576), and the virtio options
 *   (dev=N no-event-idx no-indirect irq=msix|intx|poll qsize=N verbose).
 */
#include <inmate/inmate.h>

#define RNG_DEFAULT_BYTES  65536u
#define RNG_MIN_BYTES      8192u       /* below this a missing byte value is plausible */
#define RNG_MAX_BYTES      1048576u    /* keeps the chi-square sums inside 64 bits */
#define RNG_BLOCK          64u         /* repeated-block check granularity */
#define RNG_CHI2_MIN_X100  16000u      /* 255 degrees of freedom: mean 255, sd 22.6 */
#define RNG_CHI2_MAX_X100  37000u
#define RNG_BITS_SIGMAS    6u

static uint64_t isqrt(uint64_t v)
{
	uint64_t r = 0;

	for (uint64_t bit = 1ull << 62; bit; bit >>= 2) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
	}
	return r;
}

static unsigned popcount8(uint8_t v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* No 64-byte block equals the first one or the one before it. */
static unsigned repeated_blocks(const uint8_t *p, uint32_t n)
{
	unsigned reps = 0;

	for (uint32_t off = RNG_BLOCK; off + RNG_BLOCK <= n; off += RNG_BLOCK)
		if (!memcmp(p + off, p, RNG_BLOCK) || !memcmp(p + off, p + off - RNG_BLOCK, RNG_BLOCK))
			reps++;
	return reps;
}

int main(int argc, char **argv)
{
	struct virtio_opts o = { 0 };
	static struct vrng rng;
	static uint32_t count[256];
	uint32_t n = RNG_DEFAULT_BYTES, zeros, distinct = 0;
	uint64_t t0, us, sumsq = 0, chi2_x100, ones = 0, expect_ones, sigma;
	uint8_t *buf;
	long got;
	int err;

	for (int i = 1; i < argc; i++) {
		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "bytes=", 6)) {
			n = strtoul(argv[i] + 6, 0, 0);
			continue;
		}
		printf("rngcheck: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	if (n < RNG_MIN_BYTES || n > RNG_MAX_BYTES) {
		printf("rngcheck: bytes must be %u..%u\n", RNG_MIN_BYTES, RNG_MAX_BYTES);
		return 2;
	}
	err = vrng_open(&rng, &o);
	if (err) {
		printf("rngcheck: no usable virtio-rng device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		EXPECT_EQ(err, 0);
		return test_summary();
	}
	printf("rngcheck: virtio-rng %02x:%02x.%x, features 0x%lx, queue %u entries, %s\n",
	       rng.dev.pci.bus, rng.dev.pci.slot, rng.dev.pci.func, rng.dev.features,
	       rng.vq.num, virtio_irq_mode_name(rng.dev.irq));
	buf = mem_alloc(n, ALLOC_PAGE);
	if (!EXPECT_TRUE(buf != NULL))
		return test_summary();

	t0 = tsc_now();
	got = vrng_read(&rng, buf, n);
	us = tsc_to_us(tsc_now() - t0);
	if (!EXPECT_EQ(got, (long)n)) {
		printf("rngcheck: read: %s\n", virtio_strerror((int)got));
		return test_summary();
	}
	/* One pass over the bytes (the guest runs emulated: per-byte work is what costs);
	 * the bit count comes from the histogram. */
	for (uint32_t i = 0; i < n; i++)
		count[buf[i]]++;
	zeros = count[0];
	for (unsigned v = 0; v < 256; v++) {
		int64_t d = (int64_t)count[v] * 256 - n;

		ones += (uint64_t)count[v] * popcount8(v);
		distinct += count[v] != 0;
		sumsq += (uint64_t)(d * d);
	}
	/* chi-square = sum (256 c - n)^2 / (256 n), kept as hundredths. */
	chi2_x100 = sumsq / (256ull * n) * 100 + sumsq % (256ull * n) * 100 / (256ull * n);
	expect_ones = 4ull * n;
	sigma = isqrt(2ull * n);

	printf("rngcheck: %u bytes in %lu requests (%lu short) in %lu us\n", n, rng.requests,
	       rng.short_fills, us);
	printf("rngcheck: zeros %u, distinct values %u, chi-square %lu.%02lu (255 dof), "
	       "one bits %lu of %lu\n", zeros, distinct, chi2_x100 / 100, chi2_x100 % 100, ones,
	       (uint64_t)8 * n);
	EXPECT_NE(zeros, n);
	EXPECT_EQ(repeated_blocks(buf, n), 0);
	EXPECT_EQ(distinct, 256);
	EXPECT_GE(chi2_x100, RNG_CHI2_MIN_X100);
	EXPECT_LE(chi2_x100, RNG_CHI2_MAX_X100);
	EXPECT_NEAR(ones, expect_ones, RNG_BITS_SIGMAS * sigma);
	EXPECT_FALSE(rng.vq.broken);
	return test_summary();
}
