/*
 * blkcheck: proves a virtio-blk device stores what it is given and refuses what it
 * must: writes a seeded pattern across its device (or a range) in multi-sector
 * requests with several in flight, reads it back and verifies it; requests past the
 * capacity must fail with IOERR; with expect-readonly, writes must fail while reads
 * work. Exits with the number of failed checks.
 *
 * Arguments: [seed=N] [offset=SECTOR] [sectors=N] [expect-readonly] [expect-size=BYTES]
 *   [loops=N] [verify-only] [req=KIB] [depth=N] [seg=BYTES], and the virtio options
 *   (dev=N no-event-idx no-indirect irq=msix|intx|poll qsize=N verbose).
 */
#include <inmate/inmate.h>

#define BLK_DEFAULT_REQ_KIB  64u
#define BLK_DEFAULT_DEPTH    8u
#define BLK_DEFAULT_SEG      4096u
#define BLK_MAX_DEPTH        32u
#define BLK_REPORT_MAX       5u       /* mismatches printed per pass */
#define BLK_SPECIAL_SECTORS  64u      /* size of the write-zeroes / discard probes */
#define WORDS_PER_SECTOR     (VIRTIO_BLK_SECTOR / 8)

struct blkcheck {
	struct vblk b;
	uint64_t seed, start, nsect;
	uint32_t req_sectors, depth;
	unsigned loops;
	int expect_ro, verify_only;
	int check_pattern;                /* reads compare with the pattern */
	uint32_t seg;
	uint64_t expect_size;
	char *bufs[BLK_MAX_DEPTH];
	uint64_t bytes_written, bytes_read, write_us, read_us;
	unsigned mismatches_reported;
};

/* splitmix64: a well-mixed function of (seed, sector). */
static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* The pattern of one sector: its own number in the first quadword, then one value
 * derived from (seed, sector) in the other 63. A sector written to the wrong place, a
 * stale or zeroed one, a torn or shifted one all differ. Written and checked with one
 * string instruction per sector: the guest runs emulated here, so every executed
 * instruction counts (see docs/inmates.md). */
static uint64_t pattern_value(uint64_t seed, uint64_t sector)
{
	return mix(seed * 0x100000001B3ull ^ mix(sector));
}

static void pattern_fill(uint64_t seed, uint64_t sector, uint32_t nsect, void *buf)
{
	uint64_t *w = buf;

	for (uint32_t s = 0; s < nsect; s++, w += WORDS_PER_SECTOR) {
		uint64_t v = pattern_value(seed, sector + s), n = WORDS_PER_SECTOR - 1;
		void *d = w + 1;

		w[0] = sector + s;
		__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(v) : "memory");
	}
}

/* Index of the first quadword of a sector that is not the pattern, or -1. */
static int pattern_mismatch(const uint64_t *w, uint64_t sector, uint64_t v)
{
	const void *p = w + 1;
	uint64_t left = WORDS_PER_SECTOR - 1;

	if (w[0] != sector)
		return 0;
	__asm__ volatile("repe scasq" : "+D"(p), "+c"(left) : "a"(v) : "memory", "cc");
	if (left || ((const uint64_t *)p)[-1] != v)
		return (const uint64_t *)p - 1 - w;
	return -1;
}

/* Returns the number of sectors that differ from the pattern; reports the first few. */
static unsigned pattern_check(struct blkcheck *c, uint64_t seed, uint64_t sector,
			      uint32_t nsect, const void *buf)
{
	const uint64_t *w = buf;
	unsigned bad = 0;

	for (uint32_t s = 0; s < nsect; s++, w += WORDS_PER_SECTOR) {
		uint64_t v = pattern_value(seed, sector + s);
		int i = pattern_mismatch(w, sector + s, v);

		if (i < 0)
			continue;
		if (c->mismatches_reported++ < BLK_REPORT_MAX)
			printf("blkcheck: sector %lu word %d: read 0x%016lx, wrote 0x%016lx\n",
			       sector + s, i, w[i], i ? v : sector + s);
		bad++;
	}
	return bad;
}

/* Streams [start, start + nsect) through `depth` requests in flight: writes the
 * pattern of `seed`, or reads and checks it. Returns failed requests + bad sectors. */
static uint64_t stream(struct blkcheck *c, int write, uint64_t seed)
{
	struct vblk *b = &c->b;
	uint64_t next = c->start, end = c->start + c->nsect, failures = 0;
	uint64_t t0 = tsc_now();
	unsigned in_flight = 0, idle = c->depth;
	char *idle_bufs[BLK_MAX_DEPTH];
	int err;

	c->mismatches_reported = 0;
	for (unsigned i = 0; i < c->depth; i++)
		idle_bufs[i] = c->bufs[i];
	while (next < end || in_flight) {
		struct vblk_req *r;

		while (next < end && idle && (r = vblk_req_get(b))) {
			uint32_t n = end - next < c->req_sectors ? end - next : c->req_sectors;
			char *buf = idle_bufs[--idle];

			if (write)
				pattern_fill(seed, next, n, buf);
			r->user = buf;
			err = vblk_submit(b, r, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, next, buf,
					  n * VIRTIO_BLK_SECTOR);
			if (err) {
				printf("blkcheck: submit at sector %lu: %s\n", next, virtio_strerror(err));
				vblk_req_put(b, r);
				idle_bufs[idle++] = buf;
				return failures + 1;
			}
			in_flight++;
			next += n;
		}
		vblk_kick(b);
		while ((r = vblk_reap(b))) {
			uint32_t n = r->len / VIRTIO_BLK_SECTOR;

			in_flight--;
			if (r->status != VIRTIO_BLK_S_OK) {
				if (failures < BLK_REPORT_MAX)
					printf("blkcheck: %s of %u sectors at %lu: status %s\n",
					       write ? "write" : "read", n, r->hdr.sector,
					       vblk_status_name(r->status));
				failures++;
			} else if (!write && c->check_pattern) {
				failures += pattern_check(c, seed, r->hdr.sector, n, r->buf);
			}
			idle_bufs[idle++] = r->user;
			vblk_req_put(b, r);
		}
		if (in_flight && !virtq_has_used(&b->vq)) {
			err = vblk_wait(b, VIRTQ_TIMEOUT_US);
			if (err) {
				printf("blkcheck: waiting for %u request(s): %s\n", in_flight,
				       virtio_strerror(err));
				return failures + in_flight;
			}
		}
	}
	if (write) {
		c->bytes_written += c->nsect * VIRTIO_BLK_SECTOR;
		c->write_us += tsc_to_us(tsc_now() - t0);
	} else {
		c->bytes_read += c->nsect * VIRTIO_BLK_SECTOR;
		c->read_us += tsc_to_us(tsc_now() - t0);
	}
	return failures;
}

static void check_get_id(struct blkcheck *c)
{
	char id[VIRTIO_BLK_ID_BYTES + 1];
	int st = vblk_get_id(&c->b, id);

	if (st == VIRTIO_BLK_S_OK)
		printf("blkcheck: device id \"%s\"\n", id);
	else
		printf("blkcheck: get-id: %s\n", vblk_status_name(st));
	EXPECT_TRUE(st == VIRTIO_BLK_S_OK || st == VIRTIO_BLK_S_UNSUPP);
}

/* Requests past the end must fail with IOERR, and must not have written anything. */
static void check_bounds(struct blkcheck *c)
{
	struct vblk *b = &c->b;
	char *buf = c->bufs[0];
	uint64_t cap = b->capacity;

	printf("blkcheck: requests past the capacity (%lu sectors) must fail\n", cap);
	EXPECT_EQ(vblk_read(b, cap, buf, 1), VIRTIO_BLK_S_IOERR);
	EXPECT_EQ(vblk_read(b, cap + 1000, buf, 8), VIRTIO_BLK_S_IOERR);
	EXPECT_EQ(vblk_read(b, ~0ull - 1, buf, 8), VIRTIO_BLK_S_IOERR);   /* sector wraps */
	if (cap)
		EXPECT_EQ(vblk_read(b, cap - 1, buf, 2), VIRTIO_BLK_S_IOERR);   /* straddles */
	if (!b->readonly) {
		memset(buf, 0xA5, VIRTIO_BLK_SECTOR * 2);
		EXPECT_EQ(vblk_write(b, cap, buf, 1), VIRTIO_BLK_S_IOERR);
		if (cap)
			EXPECT_EQ(vblk_write(b, cap - 1, buf, 2), VIRTIO_BLK_S_IOERR);
	}
}

/* A read-only device: RO offered, writes refused (even of the data already there),
 * reads served. */
static void check_readonly(struct blkcheck *c)
{
	struct vblk *b = &c->b;
	char *buf = c->bufs[0];

	printf("blkcheck: read-only device: writes must fail, reads must work\n");
	EXPECT_TRUE(b->readonly);
	if (!EXPECT_EQ(vblk_read(b, c->start, buf, 1), VIRTIO_BLK_S_OK))
		return;
	/* Writing back what is there: harmless should the device wrongly accept it. */
	EXPECT_EQ(vblk_write(b, c->start, buf, 1), VIRTIO_BLK_S_IOERR);
	if (virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES))
		EXPECT_NE(vblk_write_zeroes(b, c->start, 1, 0), VIRTIO_BLK_S_OK);
	if (virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD))
		EXPECT_NE(vblk_discard(b, c->start, 1), VIRTIO_BLK_S_OK);
}

/* Write-zeroes must read back as zeroes; discard must succeed. Both areas are
 * rewritten by the pattern passes afterwards. */
static void check_zeroes_discard(struct blkcheck *c)
{
	struct vblk *b = &c->b;
	uint32_t n = c->nsect < BLK_SPECIAL_SECTORS ? c->nsect : BLK_SPECIAL_SECTORS;
	char *buf = c->bufs[0];
	int st;

	if (n > c->req_sectors)
		n = c->req_sectors;
	if (virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES) && n) {
		pattern_fill(c->seed ^ 1, c->start, n, buf);
		EXPECT_EQ(vblk_write(b, c->start, buf, n), VIRTIO_BLK_S_OK);
		st = vblk_write_zeroes(b, c->start, n, 0);
		printf("blkcheck: write-zeroes of %u sectors: %s\n", n, vblk_status_name(st));
		if (EXPECT_EQ(st, VIRTIO_BLK_S_OK)) {
			int zero = 1;

			memset(buf, 0xEE, n * VIRTIO_BLK_SECTOR);
			EXPECT_EQ(vblk_read(b, c->start, buf, n), VIRTIO_BLK_S_OK);
			for (uint32_t i = 0; i < n * VIRTIO_BLK_SECTOR; i++)
				zero &= buf[i] == 0;
			EXPECT_TRUE(zero);
		}
	}
	if (virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD) && n) {
		st = vblk_discard(b, c->start, n);
		printf("blkcheck: discard of %u sectors: %s\n", n, vblk_status_name(st));
		EXPECT_EQ(st, VIRTIO_BLK_S_OK);
	}
}

static uint64_t rate_kib(uint64_t bytes, uint64_t us)
{
	return us ? bytes * 1000000u / 1024u / us : 0;
}

static int parse(struct blkcheck *c, struct virtio_opts *o, int argc, char **argv)
{
	uint32_t req_kib = BLK_DEFAULT_REQ_KIB;

	c->seed = 1;
	c->loops = 1;
	c->depth = BLK_DEFAULT_DEPTH;
	c->seg = BLK_DEFAULT_SEG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (virtio_parse_opt(o, a))
			continue;
		if (!strncmp(a, "seed=", 5))
			c->seed = strtoul(a + 5, 0, 0);
		else if (!strncmp(a, "offset=", 7))
			c->start = strtoul(a + 7, 0, 0);
		else if (!strncmp(a, "sectors=", 8))
			c->nsect = strtoul(a + 8, 0, 0);
		else if (!strncmp(a, "expect-size=", 12))
			c->expect_size = strtoul(a + 12, 0, 0);
		else if (!strncmp(a, "loops=", 6))
			c->loops = strtoul(a + 6, 0, 0);
		else if (!strncmp(a, "req=", 4))
			req_kib = strtoul(a + 4, 0, 0);
		else if (!strncmp(a, "depth=", 6))
			c->depth = strtoul(a + 6, 0, 0);
		else if (!strncmp(a, "seg=", 4))
			c->seg = strtoul(a + 4, 0, 0);
		else if (!strcmp(a, "expect-readonly"))
			c->expect_ro = 1;
		else if (!strcmp(a, "verify-only"))
			c->verify_only = 1;
		else {
			printf("blkcheck: unknown argument '%s'\n", a);
			return -1;
		}
	}
	c->req_sectors = req_kib * 1024u / VIRTIO_BLK_SECTOR;
	if (!c->req_sectors || !c->depth || c->depth > BLK_MAX_DEPTH || !c->loops || !c->seg ||
	    c->seg % VIRTIO_BLK_SECTOR ||
	    (c->req_sectors * VIRTIO_BLK_SECTOR + c->seg - 1) / c->seg > VBLK_MAX_SEGS) {
		printf("blkcheck: need req >= 1 KiB, depth 1..%u, loops >= 1, seg a multiple of "
		       "512 and at most %u buffers per request\n", BLK_MAX_DEPTH, VBLK_MAX_SEGS);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct blkcheck c;
	struct virtio_opts o = { 0 };
	uint64_t bad;
	int err;

	if (parse(&c, &o, argc, argv) < 0)
		return 2;
	err = vblk_open(&c.b, &o);
	if (err) {
		printf("blkcheck: no usable virtio-blk device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		EXPECT_EQ(err, 0);
		return test_summary();
	}
	c.b.seg_bytes = c.seg;
	vblk_print_info(&c.b, "blkcheck");
	if (c.expect_size)
		EXPECT_EQ(c.b.capacity * VIRTIO_BLK_SECTOR, c.expect_size);
	if (!c.nsect)
		c.nsect = c.start < c.b.capacity ? c.b.capacity - c.start : 0;
	if (!EXPECT_LE(c.start + c.nsect, c.b.capacity) || !EXPECT_GT(c.nsect, 0))
		return test_summary();
	/* Without indirect tables every buffer takes a ring descriptor: the chain must
	 * fit the ring, and `depth` chains must fit it together. */
	if (!c.b.vq.indirect) {
		unsigned descs = (c.req_sectors * VIRTIO_BLK_SECTOR + c.seg - 1) / c.seg + 2;

		if (descs > c.b.vq.num) {
			printf("blkcheck: a %u-descriptor request does not fit a %u-entry queue "
			       "without indirect descriptors: use a larger seg= or req= smaller\n",
			       descs, c.b.vq.num);
			return 2;
		}
		if (c.depth > c.b.vq.num / descs)
			c.depth = c.b.vq.num / descs;
	}
	if (c.b.seg_max && (c.req_sectors * VIRTIO_BLK_SECTOR + c.seg - 1) / c.seg > c.b.seg_max) {
		printf("blkcheck: the device takes at most %u data buffers per request\n",
		       c.b.seg_max);
		return 2;
	}
	if (c.depth > c.b.nr_reqs)
		c.depth = c.b.nr_reqs;
	for (unsigned i = 0; i < c.depth; i++) {
		c.bufs[i] = mem_alloc((size_t)c.req_sectors * VIRTIO_BLK_SECTOR, ALLOC_PAGE);
		if (!EXPECT_TRUE(c.bufs[i] != NULL))
			return test_summary();
	}
	printf("blkcheck: range %lu+%lu sectors, seed %lu, %u KiB requests in %u-byte buffers, "
	       "%u in flight, %u loop(s)%s\n", c.start, c.nsect, c.seed,
	       c.req_sectors * VIRTIO_BLK_SECTOR / 1024, c.b.seg_bytes, c.depth, c.loops,
	       c.verify_only ? ", verify only" : "");

	check_get_id(&c);
	if (c.expect_ro)
		check_readonly(&c);
	else
		EXPECT_FALSE(c.b.readonly);
	if (!c.expect_ro && !c.verify_only)
		check_zeroes_discard(&c);
	/* The last loop writes `seed` itself, so a later verify-only run with the same
	 * seed finds it. */
	for (unsigned l = 0; l < c.loops; l++) {
		uint64_t seed = c.seed + (c.loops - 1 - l);

		if (!c.expect_ro && !c.verify_only) {
			bad = stream(&c, 1, seed);
			EXPECT_EQ(bad, 0);
			if (virtio_has(&c.b.dev, VIRTIO_BLK_F_FLUSH))
				EXPECT_EQ(vblk_flush(&c.b), VIRTIO_BLK_S_OK);
		}
		/* Read-only without verify-only: nothing known to compare with, reads must
		 * merely succeed. */
		c.check_pattern = !c.expect_ro || c.verify_only;
		bad = stream(&c, 0, seed);
		printf("blkcheck: loop %u: %s seed %lu: %lu bad request(s) or sector(s)\n", l,
		       c.check_pattern ? "verified" : "read (unverified)", seed, bad);
		EXPECT_EQ(bad, 0);
	}
	check_bounds(&c);
	printf("blkcheck: wrote %lu KiB (%lu KiB/s), read %lu KiB (%lu KiB/s); %lu requests, "
	       "%lu kicks (%lu suppressed), %lu interrupts\n", c.bytes_written / 1024,
	       rate_kib(c.bytes_written, c.write_us), c.bytes_read / 1024,
	       rate_kib(c.bytes_read, c.read_us), c.b.completed, c.b.vq.kicks,
	       c.b.vq.kicks_suppressed, c.b.dev.irq_count);
	EXPECT_FALSE(c.b.vq.broken);
	EXPECT_FALSE(virtio_needs_reset(&c.b.dev));
	return test_summary();
}
