/*
 * hostile: a guest that corrupts its own virtio-blk ring in one chosen way, kicks, and
 * reports what the device did (DEVICE_NEEDS_RESET, a completion, or nothing), then
 * resets the device and checks it serves again. The point is elsewhere: the I/O
 * server and the neighbouring partitions must survive. Exits 0 once it has reported.
 *
 * Arguments: MODE [wait=MS] [no-recover], and the virtio options (dev=N no-event-idx
 *   no-indirect irq=msix|intx|poll qsize=N verbose). MODE is one of:
 *   loop      a chain whose next pointers cycle
 *   long      a chain longer than the queue (an indirect table of num + 3 entries, or
 *             without indirect descriptors a chain through every descriptor and back)
 *   oob       a buffer address outside guest RAM
 *   rdonly    the status byte (the device must write it) without VIRTQ_DESC_F_WRITE
 *   order     a device-readable buffer after a device-writable one
 *   head      an avail ring entry >= the queue size
 *   idx       avail->idx more than the queue size ahead
 *   indirect  an indirect table whose length is not a multiple of 16
 *   overflow  a buffer whose addr + len wraps around 2^64
 */
#include <inmate/inmate.h>

#define HOSTILE_WAIT_MS       1000u
#define HOSTILE_POLL_US       2000u
#define HOSTILE_SETTLE_MS     50u
#define HOSTILE_OOB_ADDR      (1ull << 44)          /* 16 TiB: beyond any memory table */
#define HOSTILE_WRAP_ADDR     0xFFFFFFFFFFFFF000ull
#define HOSTILE_WRAP_LEN      0x2000u
#define HOSTILE_BAD_TABLE_LEN 20u                   /* not a multiple of 16 */
#define HOSTILE_HEAD_BEYOND   3u

struct hostile {
	struct vblk b;
	struct vblk_hdr *hdr;
	uint8_t *status;
	uint8_t *data;                 /* (num + 1) sectors */
	struct virtq_desc *table;      /* scratch indirect table, num + 3 entries */
	uint16_t head;                 /* the avail entry to publish */
	uint16_t idx_jump;             /* added to avail->idx */
};

static struct virtq_desc mkdesc(const void *addr, uint32_t len, uint16_t flags,
				uint16_t next)
{
	return (struct virtq_desc){ .addr = (uintptr_t)addr, .len = len, .flags = flags,
				    .next = next };
}

#define R   0
#define W   VIRTQ_DESC_F_WRITE
#define N   VIRTQ_DESC_F_NEXT

/* Writes the corrupt descriptors for `mode` into the real ring. Returns 0, or -1 for
 * an unknown mode. */
static int corrupt(struct hostile *h, const char *mode)
{
	struct virtqueue *vq = &h->b.vq;
	struct virtq_desc *d = vq->desc;
	uint16_t num = vq->num;
	uint32_t sec = VIRTIO_BLK_SECTOR;

	*h->hdr = (struct vblk_hdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	*h->status = 0xFF;
	h->head = 0;
	h->idx_jump = 1;
	/* A good read chain in descriptors 0..2 that most modes then spoil. */
	d[0] = mkdesc(h->hdr, sizeof(*h->hdr), R | N, 1);
	d[1] = mkdesc(h->data, sec, W | N, 2);
	d[2] = mkdesc(h->status, 1, W, 0);

	if (!strcmp(mode, "loop")) {
		d[2] = mkdesc(h->status, 1, W | N, 1);          /* 0 -> 1 -> 2 -> 1 -> ... */
	} else if (!strcmp(mode, "long")) {
		if (vq->indirect) {
			unsigned n = num + 3;

			h->table[0] = mkdesc(h->hdr, sizeof(*h->hdr), R | N, 1);
			for (unsigned i = 1; i + 1 < n; i++)
				h->table[i] = mkdesc(h->data + (i - 1) * sec, sec, W | N, i + 1);
			h->table[n - 1] = mkdesc(h->status, 1, W, 0);
			d[0] = mkdesc(h->table, n * sizeof(struct virtq_desc),
				      VIRTQ_DESC_F_INDIRECT, 0);
			printf("hostile: indirect table of %u descriptors, queue size %u\n", n, num);
		} else {
			d[0] = mkdesc(h->hdr, sizeof(*h->hdr), R | N, 1);
			for (uint16_t i = 1; i < num; i++)
				d[i] = mkdesc(h->data, sec, W | N, (i + 1) % num);
			printf("hostile: direct chain through all %u descriptors and back\n", num);
		}
	} else if (!strcmp(mode, "oob")) {
		d[1] = mkdesc((void *)HOSTILE_OOB_ADDR, sec, W | N, 2);
	} else if (!strcmp(mode, "rdonly")) {
		h->hdr->type = VIRTIO_BLK_T_OUT;
		d[1] = mkdesc(h->data, sec, R | N, 2);
		d[2] = mkdesc(h->status, 1, R, 0);            /* device must write it */
	} else if (!strcmp(mode, "order")) {
		d[1] = mkdesc(h->data, sec, W | N, 3);
		d[3] = mkdesc(h->hdr, sizeof(*h->hdr), R | N, 2);   /* readable after writable */
	} else if (!strcmp(mode, "head")) {
		h->head = num + HOSTILE_HEAD_BEYOND;
	} else if (!strcmp(mode, "idx")) {
		h->idx_jump = num + 1;
	} else if (!strcmp(mode, "indirect")) {
		h->table[0] = mkdesc(h->hdr, sizeof(*h->hdr), R | N, 1);
		h->table[1] = mkdesc(h->status, 1, W, 0);
		d[0] = mkdesc(h->table, HOSTILE_BAD_TABLE_LEN, VIRTQ_DESC_F_INDIRECT, 0);
		if (!vq->indirect)
			printf("hostile: INDIRECT_DESC not negotiated; using an indirect "
			       "descriptor anyway\n");
	} else if (!strcmp(mode, "overflow")) {
		d[1] = mkdesc((void *)HOSTILE_WRAP_ADDR, HOSTILE_WRAP_LEN, W | N, 2);
	} else {
		return -1;
	}
	return 0;
}

/* Publishes h->head (avail->idx advanced by h->idx_jump) and rings the doorbell,
 * bypassing every check the driver would make. */
static void publish(struct hostile *h)
{
	struct virtqueue *vq = &h->b.vq;
	uint16_t idx = vq->avail->idx;

	vq->avail->ring[idx & (vq->num - 1)] = h->head;
	__asm__ volatile("" : : : "memory");
	*(volatile uint16_t *)&vq->avail->idx = idx + h->idx_jump;
	__asm__ volatile("lock; addl $0, (%%rsp)" : : : "memory", "cc");
	virtq_notify(vq);
}

struct outcome {
	int needs_reset, completed;
	uint8_t status, blk_status;
	uint32_t used_id, used_len;
	uint64_t after_ms;
};

static struct outcome watch(struct hostile *h, uint16_t used_before, unsigned wait_ms)
{
	struct virtqueue *vq = &h->b.vq;
	uint64_t t0 = tsc_now(), end = t0 + tsc_from_us(wait_ms * 1000ull);
	struct outcome o = { 0 };

	/* Interrupts on, so a configuration-change interrupt is counted too. */
	cpu_sti();
	while (tsc_now() < end) {
		o.status = virtio_status(&h->b.dev);
		o.needs_reset = !!(o.status & VIRTIO_STATUS_NEEDS_RESET);
		o.completed = *(volatile uint16_t *)&vq->used->idx != used_before;
		if (o.needs_reset || o.completed)
			break;
		udelay(HOSTILE_POLL_US);
	}
	o.after_ms = tsc_to_us(tsc_now() - t0) / 1000;
	if (o.needs_reset || o.completed)
		mdelay(HOSTILE_SETTLE_MS);   /* let the notification that goes with it arrive */
	cpu_cli();
	if (o.completed) {
		volatile struct virtq_used_elem *e = &vq->used->ring[used_before & (vq->num - 1)];

		o.used_id = e->id;
		o.used_len = e->len;
		o.blk_status = *h->status;
	}
	return o;
}

/* After a reset the device must serve a good request again. */
static int recover(struct hostile *h, const struct virtio_opts *o)
{
	int err = virtio_reset(&h->b.dev), st;

	if (!err)
		err = vblk_open(&h->b, o);
	if (err) {
		printf("hostile: re-initialising the device failed: %s\n", virtio_strerror(err));
		return 0;
	}
	st = vblk_read(&h->b, 0, h->data, 1);
	printf("hostile: after a reset, a read of sector 0: %s\n", vblk_status_name(st));
	return st == VIRTIO_BLK_S_OK;
}

int main(int argc, char **argv)
{
	static struct hostile h;
	struct virtio_opts o = { 0 };
	const char *mode = NULL;
	unsigned wait_ms = HOSTILE_WAIT_MS;
	int do_recover = 1, recovered = -1, st, err;
	struct outcome out;
	uint16_t used_before;

	for (int i = 1; i < argc; i++) {
		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "wait=", 5))
			wait_ms = strtoul(argv[i] + 5, 0, 0);
		else if (!strcmp(argv[i], "no-recover"))
			do_recover = 0;
		else if (!mode)
			mode = argv[i];
		else {
			printf("hostile: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!mode) {
		printf("hostile: usage: hostile loop|long|oob|rdonly|order|head|idx|indirect|"
		       "overflow [wait=MS] [no-recover]\n");
		return 2;
	}
	err = vblk_open(&h.b, &o);
	if (err) {
		printf("hostile: no usable virtio-blk device: %s\n", virtio_strerror(err));
		return 1;
	}
	h.hdr = mem_alloc(sizeof(*h.hdr), 0);
	h.status = mem_alloc(1, 0);
	h.data = mem_alloc(((size_t)h.b.vq.num + 1) * VIRTIO_BLK_SECTOR, ALLOC_PAGE);
	h.table = mem_alloc(((size_t)h.b.vq.num + 3) * sizeof(struct virtq_desc), 16);
	if (!h.hdr || !h.status || !h.data || !h.table) {
		printf("hostile: out of memory\n");
		return 1;
	}
	st = vblk_read(&h.b, 0, h.data, 1);
	printf("hostile: device works before the corruption: read of sector 0: %s "
	       "(queue %u entries, %s%s, %s)\n", vblk_status_name(st), h.b.vq.num,
	       h.b.vq.event_idx ? "event-idx" : "flags", h.b.vq.indirect ? ", indirect" : "",
	       virtio_irq_mode_name(h.b.dev.irq));
	if (corrupt(&h, mode) < 0) {
		printf("hostile: unknown mode '%s'\n", mode);
		return 2;
	}
	used_before = *(volatile uint16_t *)&h.b.vq.used->idx;
	printf("hostile: %s: corrupted the ring, kicking queue %u\n", mode, h.b.vq.index);
	publish(&h);
	out = watch(&h, used_before, wait_ms);
	if (out.needs_reset)
		printf("hostile: %s: device status 0x%02x: DEVICE_NEEDS_RESET after %lu ms "
		       "(%lu config interrupt(s))\n", mode, out.status, out.after_ms,
		       h.b.dev.config_irqs);
	else if (out.completed)
		printf("hostile: %s: device completed it: used id %u len %u, status byte 0x%02x "
		       "(device status 0x%02x, %lu interrupt(s))\n", mode, out.used_id,
		       out.used_len, out.blk_status, out.status, h.b.dev.irq_count);
	else
		printf("hostile: %s: no reaction within %u ms (device status 0x%02x)\n", mode,
		       wait_ms, out.status);
	if (do_recover)
		recovered = recover(&h, &o);
	printf("hostile: result mode=%s needs_reset=%d completed=%d recovered=%d\n", mode,
	       out.needs_reset, out.completed, recovered);
	return 0;
}
