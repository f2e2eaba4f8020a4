/*
 * blkbench: measures a virtio-blk device from inside a partition, for bench/blk.
 * One pattern per run: sequential reads or writes of REQ KiB, or random 4 KiB reads,
 * with DEPTH requests in flight, for MS milliseconds of TSC time; or (verify, for
 * bench/restart) sequential writes of a per-sector pattern, then a read-back that
 * checks every sector written. Prints one line of figures, with the longest gap
 * between two request completions; exits 0 unless a request failed or a sector is wrong.
 *
 * Arguments: mode=seqread|seqwrite|randread|verify [req=KIB] [depth=N] [ms=N] [seed=N]
 * and the virtio options (dev=N no-event-idx no-indirect irq=... qsize=N).
 */
#include <inmate/inmate.h>

#define BENCH_MAX_DEPTH   32u
#define BENCH_FILL        0x5A5A5A5A5A5A5A5Aull  /* every buffer's bytes (memset 0x5a) */
#define BENCH_VERIFY_KIB  64u     /* read-back request size: fewer requests to wait for */
#define BENCH_REPORT_MAX  5u      /* bad sectors printed */
#define WORDS_PER_SECTOR  (VIRTIO_BLK_SECTOR / 8)

enum bench_mode { SEQREAD, SEQWRITE, RANDREAD, VERIFY };

struct bench {
	struct vblk b;
	enum bench_mode mode;
	uint32_t req_sectors, depth, buf_sectors;
	uint64_t ms, next_sector, rng, seed;
	uint64_t pass;                   /* verify: wraps of the device so far */
	uint64_t maxgap;                 /* TSC ticks between two completions, at most */
	uint64_t corrupt, reported;
	char *bufs[BENCH_MAX_DEPTH];
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The next request's first sector: sequential wraps at the end of the device. */
static uint64_t next_sector(struct bench *c)
{
	uint64_t span = c->b.capacity - c->req_sectors + 1, s;

	if (c->mode == RANDREAD)
		return xorshift(&c->rng) % span / c->req_sectors * c->req_sectors;
	if (c->next_sector >= span) {
		c->next_sector = 0;
		c->pass++;
	}
	s = c->next_sector;
	c->next_sector += c->req_sectors;
	return s;
}

/* verify's pattern: a sector holds its number, then the generation that wrote it (the
 * seed and the device's wraps so far: a write lost or overtaken by an older one leaves
 * a stale generation, or the zeroes of a new disk), then BENCH_FILL. Stamping costs two
 * stores per sector: the guest is slow (see docs/inmates.md). */
static uint64_t generation(const struct bench *c, uint64_t pass)
{
	return c->seed << 32 | (pass & 0xffffffffu);
}

static void stamp(char *buf, uint64_t sector, uint32_t nsect, uint64_t gen)
{
	uint64_t *w = (uint64_t *)buf;

	for (uint32_t s = 0; s < nsect; s++, w += WORDS_PER_SECTOR) {
		w[0] = sector + s;
		w[1] = gen;
	}
}

static int submit(struct bench *c, unsigned slot)
{
	struct vblk_req *r = vblk_req_get(&c->b);
	uint64_t sector;

	if (!r)
		return -1;
	r->user = (void *)(uintptr_t)slot;
	sector = next_sector(c);
	if (c->mode == VERIFY)
		stamp(c->bufs[slot], sector, c->req_sectors, generation(c, c->pass));
	return vblk_submit(&c->b, r, c->mode == SEQWRITE || c->mode == VERIFY ?
			   VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, c->bufs[slot],
			   c->req_sectors * VIRTIO_BLK_SECTOR);
}

/* Counts the sectors of a read-back buffer that are not what verify wrote last: sectors
 * before `split` were written by pass `pass`, the others by the pass before. */
static void check(struct bench *c, uint64_t sector, uint32_t nsect, const char *buf,
		  uint64_t split)
{
	const uint64_t *w = (const uint64_t *)buf;

	for (uint32_t s = 0; s < nsect; s++, w += WORDS_PER_SECTOR) {
		uint64_t gen = generation(c, sector + s < split ? c->pass : c->pass - 1);
		const void *p = w + 2;
		uint64_t left = WORDS_PER_SECTOR - 2;

		__asm__ volatile("repe scasq" : "+D"(p), "+c"(left) : "a"(BENCH_FILL)
				 : "memory", "cc");
		if (w[0] == sector + s && w[1] == gen && !left &&
		    ((const uint64_t *)p)[-1] == BENCH_FILL)
			continue;
		if (c->reported++ < BENCH_REPORT_MAX)
			printf("blkbench: sector %lu: holds sector %lu generation 0x%lx, expected "
			       "generation 0x%lx%s\n", sector + s, w[0], w[1], gen,
			       w[0] == sector + s && w[1] == gen ? ", its fill differs" : "");
		c->corrupt++;
	}
}

/* verify's read-back: every sector written (all of them once the writes wrapped), in
 * rounds of `depth` requests of BENCH_VERIFY_KIB, each round waited for before the next
 * reuses the buffers. Returns the requests that failed or never completed; counts bad
 * sectors in c->corrupt. */
static uint64_t read_back(struct bench *c, uint64_t *verified)
{
	struct vblk *b = &c->b;
	uint64_t span = b->capacity - c->req_sectors + 1, split = c->next_sector;
	uint64_t end = c->pass ? (span + c->req_sectors - 1) / c->req_sectors * c->req_sectors
			       : c->next_sector;
	uint64_t next = 0, failed = 0;

	*verified = 0;
	while (next < end) {
		unsigned inflight = 0;
		struct vblk_req *r;

		while (inflight < c->depth && next < end && (r = vblk_req_get(b))) {
			uint32_t n = end - next < c->buf_sectors ? end - next : c->buf_sectors;

			if (vblk_submit(b, r, VIRTIO_BLK_T_IN, next, c->bufs[inflight],
					n * VIRTIO_BLK_SECTOR)) {
				vblk_req_put(b, r);
				return failed + inflight + 1;
			}
			inflight++;
			next += n;
		}
		vblk_kick(b);
		while (inflight) {
			if (!virtq_has_used(&b->vq) && vblk_wait(b, 1000000) < 0)
				return failed + inflight;
			while ((r = vblk_reap(b))) {
				if (r->status != VIRTIO_BLK_S_OK)
					failed++;
				else
					check(c, r->hdr.sector, r->len / VIRTIO_BLK_SECTOR, r->buf,
					      split);
				*verified += r->len / VIRTIO_BLK_SECTOR;
				inflight--;
				vblk_req_put(b, r);
			}
		}
	}
	return failed;
}

static int parse(struct bench *c, struct virtio_opts *o, int argc, char **argv)
{
	uint32_t req_kib = 64;

	c->mode = SEQREAD;
	c->depth = 8;
	c->ms = 1000;
	c->seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (virtio_parse_opt(o, a))
			continue;
		if (!strcmp(a, "mode=seqread"))
			c->mode = SEQREAD;
		else if (!strcmp(a, "mode=seqwrite"))
			c->mode = SEQWRITE;
		else if (!strcmp(a, "mode=randread"))
			c->mode = RANDREAD;
		else if (!strcmp(a, "mode=verify"))
			c->mode = VERIFY;
		else if (!strncmp(a, "seed=", 5))
			c->seed = strtoul(a + 5, 0, 0);
		else if (!strncmp(a, "req=", 4))
			req_kib = (uint32_t)strtoul(a + 4, 0, 0);
		else if (!strncmp(a, "depth=", 6))
			c->depth = (uint32_t)strtoul(a + 6, 0, 0);
		else if (!strncmp(a, "ms=", 3))
			c->ms = strtoul(a + 3, 0, 0);
		else {
			printf("blkbench: unknown argument '%s'\n", a);
			return -1;
		}
	}
	if (!req_kib || req_kib > 256 || !c->depth || c->depth > BENCH_MAX_DEPTH || !c->ms ||
	    !c->seed || c->seed > 0xffffffffu) {
		printf("blkbench: req must be 1..256 KiB, depth 1..%u, ms > 0, seed 1..2^32-1\n",
		       BENCH_MAX_DEPTH);
		return -1;
	}
	c->req_sectors = req_kib * 1024 / VIRTIO_BLK_SECTOR;
	c->buf_sectors = c->req_sectors;
	if (c->mode == VERIFY && c->buf_sectors < BENCH_VERIFY_KIB * 1024 / VIRTIO_BLK_SECTOR)
		c->buf_sectors = BENCH_VERIFY_KIB * 1024 / VIRTIO_BLK_SECTOR;
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "seqread", "seqwrite", "randread", "verify" };
	static struct bench c;
	struct virtio_opts o = { 0 };
	uint64_t start, end, done = 0, errors = 0, elapsed_us, last = 0, verified = 0;
	uint64_t failed = 0;
	unsigned inflight = 0;

	c.rng = 0x2545F4914F6CDD1Dull;
	if (parse(&c, &o, argc, argv) || vblk_open(&c.b, &o))
		return 2;
	if (c.b.capacity < c.req_sectors) {
		printf("blkbench: the device is smaller than one request\n");
		return 2;
	}
	for (unsigned i = 0; i < c.depth; i++) {
		c.bufs[i] = mem_alloc(c.buf_sectors * VIRTIO_BLK_SECTOR, 4096);
		if (!c.bufs[i])
			return 2;
		memset(c.bufs[i], 0x5a, c.buf_sectors * VIRTIO_BLK_SECTOR);
	}
	start = tsc_now();
	end = start + tsc_from_us(c.ms * 1000);
	for (unsigned i = 0; i < c.depth; i++)
		inflight += submit(&c, i) == 0;
	vblk_kick(&c.b);
	while (inflight) {
		struct vblk_req *r;
		int more = tsc_now() < end;

		if (vblk_wait(&c.b, 1000000) < 0)
			break;
		/* One TSC read per batch of completions (a read costs several guest
		 * instructions' time): the gap is from one batch to the next. */
		if ((r = vblk_reap(&c.b))) {
			uint64_t now = tsc_now();

			if (last && now - last > c.maxgap)
				c.maxgap = now - last;
			last = now;
		}
		for (; r; r = vblk_reap(&c.b)) {
			unsigned slot = (unsigned)(uintptr_t)r->user;

			errors += r->status != VIRTIO_BLK_S_OK;
			done++;
			inflight--;
			vblk_req_put(&c.b, r);
			if (more && submit(&c, slot) == 0)
				inflight++;
		}
		vblk_kick(&c.b);
	}
	elapsed_us = tsc_to_us(tsc_now() - start);
	/* verify: nothing to read back from a device that stopped answering. */
	if (c.mode == VERIFY && !inflight)
		failed = read_back(&c, &verified);
	printf("blkbench: mode=%s req=%u depth=%u requests=%lu errors=%lu us=%lu mbps=%lu "
	       "iops=%lu maxgap_us=%lu", names[c.mode], c.req_sectors * VIRTIO_BLK_SECTOR,
	       c.depth, done, errors, elapsed_us,
	       done * c.req_sectors * VIRTIO_BLK_SECTOR / (elapsed_us ? elapsed_us : 1),
	       done * 1000000 / (elapsed_us ? elapsed_us : 1), tsc_to_us(c.maxgap));
	if (c.mode == VERIFY)
		printf(" verified=%lu corrupt=%lu lost=%u readback_errors=%lu", verified,
		       c.corrupt, inflight, failed);
	printf("\n");
	return errors || failed || inflight || c.corrupt ? 1 : 0;
}
