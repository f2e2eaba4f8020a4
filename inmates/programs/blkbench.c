/*
 * blkbench: measures a virtio-blk device from inside a partition, for bench/blk.
 * One pattern per run: sequential reads or writes of REQ KiB, or random 4 KiB reads,
 * with DEPTH requests in flight, for MS milliseconds of TSC time. Prints one line of
 * figures; exits 0 unless a request failed.
 *
 * Arguments: mode=seqread|seqwrite|randread [req=KIB] [depth=N] [ms=N] and the virtio
 * options (dev=N no-event-idx no-indirect irq=... qsize=N).
 */
#include <inmate/inmate.h>

#define BENCH_MAX_DEPTH 32u

enum bench_mode { SEQREAD, SEQWRITE, RANDREAD };

struct bench {
	struct vblk b;
	enum bench_mode mode;
	uint32_t req_sectors, depth;
	uint64_t ms, next_sector, rng;
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
	if (c->next_sector >= span)
		c->next_sector = 0;
	s = c->next_sector;
	c->next_sector += c->req_sectors;
	return s;
}

static int submit(struct bench *c, unsigned slot)
{
	struct vblk_req *r = vblk_req_get(&c->b);

	if (!r)
		return -1;
	r->user = (void *)(uintptr_t)slot;
	return vblk_submit(&c->b, r, c->mode == SEQWRITE ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			   next_sector(c), c->bufs[slot], c->req_sectors * VIRTIO_BLK_SECTOR);
}

static int parse(struct bench *c, struct virtio_opts *o, int argc, char **argv)
{
	uint32_t req_kib = 64;

	c->mode = SEQREAD;
	c->depth = 8;
	c->ms = 1000;
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
	if (!req_kib || req_kib > 256 || !c->depth || c->depth > BENCH_MAX_DEPTH || !c->ms) {
		printf("blkbench: req must be 1..256 KiB, depth 1..%u, ms > 0\n", BENCH_MAX_DEPTH);
		return -1;
	}
	c->req_sectors = req_kib * 1024 / VIRTIO_BLK_SECTOR;
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "seqread", "seqwrite", "randread" };
	static struct bench c;
	struct virtio_opts o = { 0 };
	uint64_t start, end, done = 0, errors = 0, elapsed_us;
	unsigned inflight = 0;

	c.rng = 0x2545F4914F6CDD1Dull;
	if (parse(&c, &o, argc, argv) || vblk_open(&c.b, &o))
		return 2;
	if (c.b.capacity < c.req_sectors) {
		printf("blkbench: the device is smaller than one request\n");
		return 2;
	}
	for (unsigned i = 0; i < c.depth; i++) {
		c.bufs[i] = mem_alloc(c.req_sectors * VIRTIO_BLK_SECTOR, 4096);
		if (!c.bufs[i])
			return 2;
		memset(c.bufs[i], 0x5a, c.req_sectors * VIRTIO_BLK_SECTOR);
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
		while ((r = vblk_reap(&c.b))) {
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
	printf("blkbench: mode=%s req=%u depth=%u requests=%lu errors=%lu us=%lu mbps=%lu "
	       "iops=%lu\n", names[c.mode], c.req_sectors * VIRTIO_BLK_SECTOR, c.depth, done,
	       errors, elapsed_us, done * c.req_sectors * VIRTIO_BLK_SECTOR / (elapsed_us ? elapsed_us : 1),
	       done * 1000000 / (elapsed_us ? elapsed_us : 1));
	return errors || inflight ? 1 : 0;
}
