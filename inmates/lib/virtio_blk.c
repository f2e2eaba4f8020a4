/*
 * virtio-blk driver: configuration, request pool, submission as header / data buffers
 * / status chains on the single request queue, and the synchronous helpers built on
 * submit + kick + wait + reap.
 */
#include <inmate/alloc.h>
#include <inmate/printf.h>
#include <inmate/string.h>
#include <inmate/virtio_blk.h>

/* struct virtio_blk_config offsets */
#define VBLK_CFG_CAPACITY        0
#define VBLK_CFG_SIZE_MAX        8
#define VBLK_CFG_SEG_MAX         12
#define VBLK_CFG_BLK_SIZE        20
#define VBLK_CFG_MAX_DISCARD     36
#define VBLK_CFG_MAX_DISCARD_SEG 40
#define VBLK_CFG_MAX_WZ          48
#define VBLK_CFG_MAX_WZ_SEG      52
#define VBLK_CFG_WZ_MAY_UNMAP    56

#define VBLK_QUEUE               0
#define VBLK_INDIRECT_MAX        (VBLK_MAX_SEGS + 2)   /* header + data + status */

static const uint64_t vblk_wanted =
	VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
	VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
	VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
	VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);

const char *vblk_status_name(int status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	default: return status < 0 ? virtio_strerror(status) : "unknown status";
	}
}

static void vblk_read_config(struct vblk *b)
{
	struct virtio_dev *d = &b->dev;

	b->capacity = virtio_cfg_read64(d, VBLK_CFG_CAPACITY);
	b->readonly = virtio_has(d, VIRTIO_BLK_F_RO);
	b->size_max = virtio_has(d, VIRTIO_BLK_F_SIZE_MAX) ?
		      virtio_cfg_read32(d, VBLK_CFG_SIZE_MAX) : 0;
	b->seg_max = virtio_has(d, VIRTIO_BLK_F_SEG_MAX) ?
		     virtio_cfg_read32(d, VBLK_CFG_SEG_MAX) : 0;
	b->blk_size = virtio_has(d, VIRTIO_BLK_F_BLK_SIZE) ?
		      virtio_cfg_read32(d, VBLK_CFG_BLK_SIZE) : VIRTIO_BLK_SECTOR;
	if (virtio_has(d, VIRTIO_BLK_F_DISCARD)) {
		b->max_discard_sectors = virtio_cfg_read32(d, VBLK_CFG_MAX_DISCARD);
		b->max_discard_seg = virtio_cfg_read32(d, VBLK_CFG_MAX_DISCARD_SEG);
	}
	if (virtio_has(d, VIRTIO_BLK_F_WRITE_ZEROES)) {
		b->max_wz_sectors = virtio_cfg_read32(d, VBLK_CFG_MAX_WZ);
		b->max_wz_seg = virtio_cfg_read32(d, VBLK_CFG_MAX_WZ_SEG);
		b->wz_may_unmap = virtio_cfg_read8(d, VBLK_CFG_WZ_MAY_UNMAP);
	}
}

int vblk_open(struct vblk *b, const struct virtio_opts *opts)
{
	unsigned per_req;
	int err;

	memset(b, 0, sizeof(*b));
	err = virtio_pci_open(&b->dev, VIRTIO_ID_BLOCK, opts);
	if (!err)
		err = virtio_negotiate(&b->dev, vblk_wanted);
	if (!err)
		err = virtio_setup_irqs(&b->dev, 1);
	if (!err)
		err = virtio_queue_setup(&b->dev, &b->vq, VBLK_QUEUE, 0, VBLK_INDIRECT_MAX);
	if (err) {
		if (b->dev.common.base)
			virtio_set_failed(&b->dev);
		return err;
	}
	vblk_read_config(b);

	/* Enough requests to fill the ring with typical (header, a few buffers, status)
	 * chains; with indirect tables each takes one descriptor. */
	per_req = b->vq.indirect ? 1 : 4;
	b->nr_reqs = b->vq.num / per_req;
	if (b->nr_reqs > VBLK_MAX_REQS)
		b->nr_reqs = VBLK_MAX_REQS;
	if (!b->nr_reqs)
		b->nr_reqs = 1;
	b->reqs = mem_alloc(sizeof(struct vblk_req) * b->nr_reqs, 0);
	if (!b->reqs) {
		virtio_set_failed(&b->dev);
		return -VIRTIO_ENOMEM;
	}
	for (unsigned i = 0; i < b->nr_reqs; i++) {
		b->reqs[i].next_free = b->free;
		b->free = &b->reqs[i];
	}
	virtio_driver_ok(&b->dev);
	return 0;
}

void vblk_print_info(const struct vblk *b, const char *prefix)
{
	const struct virtio_dev *d = &b->dev;

	printf("%s: virtio-blk %02x:%02x.%x: %lu sectors (%lu bytes)%s, block %u, seg_max %u, "
	       "size_max %u\n", prefix, d->pci.bus, d->pci.slot, d->pci.func, b->capacity,
	       b->capacity * VIRTIO_BLK_SECTOR, b->readonly ? ", read-only" : "", b->blk_size,
	       b->seg_max, b->size_max);
	printf("%s: features 0x%lx of 0x%lx:%s%s%s%s%s; queue %u entries, %s\n", prefix,
	       d->features, d->offered,
	       virtio_has(d, VIRTIO_F_EVENT_IDX) ? " event-idx" : "",
	       virtio_has(d, VIRTIO_F_INDIRECT_DESC) ? " indirect" : "",
	       virtio_has(d, VIRTIO_BLK_F_FLUSH) ? " flush" : "",
	       virtio_has(d, VIRTIO_BLK_F_DISCARD) ? " discard" : "",
	       virtio_has(d, VIRTIO_BLK_F_WRITE_ZEROES) ? " write-zeroes" : "",
	       b->vq.num, virtio_irq_mode_name(d->irq));
}

struct vblk_req *vblk_req_get(struct vblk *b)
{
	struct vblk_req *r = b->free;

	if (r) {
		b->free = r->next_free;
		r->next_free = NULL;
		r->done = 0;
	}
	return r;
}

void vblk_req_put(struct vblk *b, struct vblk_req *r)
{
	r->next_free = b->free;
	b->free = r;
}

static int vblk_data_writable(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

int vblk_submit(struct vblk *b, struct vblk_req *r, uint32_t type, uint64_t sector,
		void *buf, uint32_t len)
{
	struct virtq_buf bufs[VBLK_MAX_SEGS + 2];
	uint32_t seg = b->seg_bytes ? b->seg_bytes : len;
	unsigned n = 0, ndata;

	if (b->size_max && seg > b->size_max)
		seg = b->size_max;
	if (!seg)
		seg = 1;
	r->hdr = (struct vblk_hdr){ .type = type, .sector = sector };
	r->status = 0xFF;            /* anything the device does not overwrite shows */
	r->buf = buf;
	r->len = len;
	r->used_len = 0;
	r->done = 0;
	bufs[n++] = (struct virtq_buf){ &r->hdr, sizeof(r->hdr) };
	for (uint32_t off = 0; off < len; off += seg) {
		if (n > VBLK_MAX_SEGS)
			return -VIRTIO_EINVAL;
		bufs[n++] = (struct virtq_buf){ (char *)buf + off, len - off < seg ? len - off : seg };
	}
	ndata = n - 1;
	if (b->seg_max && ndata > b->seg_max)
		return -VIRTIO_EINVAL;
	bufs[n++] = (struct virtq_buf){ &r->status, 1 };
	if (vblk_data_writable(type))
		return virtq_add(&b->vq, bufs, 1, n - 1, r);
	return virtq_add(&b->vq, bufs, n - 1, 1, r);
}

void vblk_kick(struct vblk *b)
{
	virtq_kick(&b->vq);
}

struct vblk_req *vblk_reap(struct vblk *b)
{
	uint32_t len;
	struct vblk_req *r = virtq_get(&b->vq, &len);

	if (!r)
		return NULL;
	r->used_len = len;
	r->done = 1;
	b->completed++;
	if (r->status != VIRTIO_BLK_S_OK)
		b->errors++;
	return r;
}

int vblk_wait(struct vblk *b, uint64_t timeout_us)
{
	return virtq_wait(&b->vq, timeout_us);
}

/* One request, start to finish. Other requests that complete meanwhile are marked
 * done for their owners. */
static int vblk_sync_req(struct vblk *b, struct vblk_req *r, uint32_t type, uint64_t sector,
			 void *buf, uint32_t len)
{
	int err = vblk_submit(b, r, type, sector, buf, len);

	if (err) {
		vblk_req_put(b, r);
		return err;
	}
	vblk_kick(b);
	while (!r->done) {
		if (vblk_reap(b))
			continue;
		err = vblk_wait(b, VIRTQ_TIMEOUT_US);
		if (err)
			return err;   /* r stays out of the pool: the device may still use it */
	}
	err = r->status;
	vblk_req_put(b, r);
	return err;
}

static int vblk_sync(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct vblk_req *r = vblk_req_get(b);

	if (!r)
		return -VIRTIO_ENOSPC;
	return vblk_sync_req(b, r, type, sector, buf, len);
}

int vblk_read(struct vblk *b, uint64_t sector, void *buf, uint32_t nsect)
{
	return vblk_sync(b, VIRTIO_BLK_T_IN, sector, buf, nsect * VIRTIO_BLK_SECTOR);
}

int vblk_write(struct vblk *b, uint64_t sector, const void *buf, uint32_t nsect)
{
	return vblk_sync(b, VIRTIO_BLK_T_OUT, sector, (void *)buf, nsect * VIRTIO_BLK_SECTOR);
}

int vblk_flush(struct vblk *b)
{
	return vblk_sync(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
}

int vblk_get_id(struct vblk *b, char id[VIRTIO_BLK_ID_BYTES + 1])
{
	int ret;

	memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
	ret = vblk_sync(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = '\0';
	return ret;
}

static int vblk_range_op(struct vblk *b, uint32_t type, uint64_t sector, uint32_t nsect,
			 uint32_t flags)
{
	struct vblk_req *r = vblk_req_get(b);

	if (!r)
		return -VIRTIO_ENOSPC;
	/* The range lives in the request itself; it is the request's data. */
	r->range = (struct vblk_range){ .sector = sector, .num_sectors = nsect, .flags = flags };
	return vblk_sync_req(b, r, type, 0, &r->range, sizeof(r->range));
}

int vblk_discard(struct vblk *b, uint64_t sector, uint32_t nsect)
{
	if (!virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	return vblk_range_op(b, VIRTIO_BLK_T_DISCARD, sector, nsect, 0);
}

int vblk_write_zeroes(struct vblk *b, uint64_t sector, uint32_t nsect, int unmap)
{
	if (!virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES))
		return VIRTIO_BLK_S_UNSUPP;
	return vblk_range_op(b, VIRTIO_BLK_T_WRITE_ZEROES, sector, nsect,
			     unmap ? VIRTIO_BLK_WZ_UNMAP : 0);
}
