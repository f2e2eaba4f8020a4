/*
 * The virtio-blk class (virtio 1.2, 5.2): each connection serves a slice of a disk file.
 * Requests outside the slice and writes to a read-only one fail with IOERR before any
 * I/O; the rest go to io_uring (blk_io.c) and complete as they finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioserver/blk.h"
#include "ioserver/spec.h"

/* The configuration space offered: every field up to the write-zeroes ones (no
 * SECURE_ERASE). */
#define BLK_CONFIG_LEN offsetof(struct virtio_blk_config, max_secure_erase_sectors)

static uint64_t blk_sectors(const struct blk_dev *bd)
{
	return bd->size / VIRTIO_BLK_SECTOR_SIZE;
}

static uint64_t blk_features(struct vu_dev *d)
{
	const struct blk_dev *bd = d->priv;
	uint64_t f = IOS_RING_FEATURES | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		     (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	return bd->readonly ? f | (1ull << VIRTIO_BLK_F_RO) : f;
}

static size_t blk_config_fill(struct vu_dev *d, uint8_t *buf)
{
	const struct blk_dev *bd = d->priv;
	uint64_t sectors = blk_sectors(bd);
	uint32_t max = sectors > UINT32_MAX ? UINT32_MAX : (uint32_t)sectors;
	struct virtio_blk_config c = {
		.capacity = sectors,
		.seg_max = VRING_MAX_IOV - 2,     /* the header and status take two */
		.blk_size = VIRTIO_BLK_SECTOR_SIZE,
		.max_discard_sectors = max,
		.max_discard_seg = BLK_MAX_SEGS,
		.discard_sector_alignment = 1,
		.max_write_zeroes_sectors = max,
		.max_write_zeroes_seg = BLK_MAX_SEGS,
		.write_zeroes_may_unmap = 1,
	};

	memcpy(buf, &c, BLK_CONFIG_LEN);
	return BLK_CONFIG_LEN;
}

/* The slice from the disk fd: whole sectors, inside the file, writable unless read-only.
 * Without a size, the slice runs to the end of the file. */
static const char *blk_prepare_spec(struct ios_conn_spec *spec)
{
	struct stat st;
	off_t end;
	int fl;

	if (spec->disk_fd < 0)
		return "a disk-fd is required";
	fl = fcntl(spec->disk_fd, F_GETFL);
	if (fl < 0 || fstat(spec->disk_fd, &st))
		return "disk-fd is not an open file";
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return "disk-fd is neither a regular file nor a block device";
	if (!spec->readonly && (fl & O_ACCMODE) == O_RDONLY)
		return "the disk is open read-only but the slice is not readonly";
	end = lseek(spec->disk_fd, 0, SEEK_END);
	if (end < 0)
		return "cannot find the size of the disk";
	if (spec->offset % VIRTIO_BLK_SECTOR_SIZE)
		return "offset is not a multiple of 512";
	if (spec->offset > (uint64_t)end)
		return "offset is past the end of the disk";
	if (spec->size == IOS_SIZE_UNSET)
		spec->size = ((uint64_t)end - spec->offset) & ~(uint64_t)(VIRTIO_BLK_SECTOR_SIZE - 1);
	if (!spec->size || spec->size % VIRTIO_BLK_SECTOR_SIZE)
		return "size is not a positive multiple of 512";
	if (spec->size > (uint64_t)end - spec->offset)
		return "the slice runs past the end of the disk";
	return NULL;
}

static int blk_dev_init(struct vu_dev *d, const struct ios_conn_spec *spec)
{
	struct blk_dev *bd = calloc(1, sizeof(*bd));
	char serial[IOS_NAME_MAX + 16];

	if (!bd)
		return -ENOMEM;
	bd->d = d;
	bd->file = blk_io_file(d->s->priv, spec->disk_fd);
	bd->offset = spec->offset;
	bd->size = spec->size;
	bd->readonly = spec->readonly;
	/* The serial names the device: "<partition>-<device>", NUL-padded to 20 bytes. */
	snprintf(serial, sizeof(serial), "%s-%u", spec->partition, spec->device);
	memcpy(bd->serial, serial, strnlen(serial, sizeof(bd->serial)));
	if (bd->file < 0) {
		free(bd);
		return -EBADF;
	}
	d->priv = bd;
	return 0;
}

static void blk_dev_fini(struct vu_dev *d)
{
	struct blk_dev *bd = d->priv;

	if (bd)
		free(bd->reqs);
	free(bd);
	d->priv = NULL;
}

/* One request per descriptor the queue can hold; allocated when the ring starts. */
static int blk_queue_start(struct vu_dev *d, struct vu_queue *vq)
{
	struct blk_dev *bd = d->priv;

	if (bd->inflight)
		return -EBUSY;
	if (bd->nreqs < vq->num) {
		struct blk_req *reqs = calloc(vq->num, sizeof(*reqs));

		if (!reqs)
			return -ENOMEM;
		free(bd->reqs);
		bd->reqs = reqs;
		bd->nreqs = vq->num;
	}
	bd->free = NULL;
	for (unsigned i = 0; i < bd->nreqs; i++) {
		bd->reqs[i].next_free = bd->free;
		bd->free = &bd->reqs[i];
	}
	return 0;
}

/* Counted per device (`counters` events, ctl status). */
enum { BLK_C_READS, BLK_C_READ_BYTES, BLK_C_WRITES, BLK_C_WRITE_BYTES, BLK_C_FLUSHES,
       BLK_C_OTHER, BLK_C_ERRORS, BLK_C_UNSUPPORTED, BLK_NCOUNTERS };
static const char *const blk_counter_names[BLK_NCOUNTERS] = {
	"reads", "read_bytes", "writes", "write_bytes", "flushes", "other", "errors",
	"unsupported",
};
_Static_assert(BLK_NCOUNTERS <= IOS_MAX_COUNTERS, "blk counters");

static void blk_count(struct blk_req *req, uint8_t status)
{
	struct vu_dev *d = req->bd->d;

	if (status == VIRTIO_BLK_S_IOERR)
		ios_count(d, BLK_C_ERRORS, 1);
	else if (status != VIRTIO_BLK_S_OK)
		ios_count(d, BLK_C_UNSUPPORTED, 1);
	else if (req->type == VIRTIO_BLK_T_IN)
		ios_count(d, BLK_C_READ_BYTES, req->used_len - 1);
	else if (req->type == VIRTIO_BLK_T_OUT)
		ios_count(d, BLK_C_WRITE_BYTES, req->bytes);
	switch (req->type) {
	case VIRTIO_BLK_T_IN: ios_count(d, BLK_C_READS, 1); break;
	case VIRTIO_BLK_T_OUT: ios_count(d, BLK_C_WRITES, 1); break;
	case VIRTIO_BLK_T_FLUSH: ios_count(d, BLK_C_FLUSHES, 1); break;
	default: ios_count(d, BLK_C_OTHER, 1);
	}
}

static void blk_req_finish(struct blk_req *req, uint8_t status)
{
	struct blk_dev *bd = req->bd;

	blk_count(req, status);
	*req->status = status;
	vu_queue_push(req->vq, req->head, status == VIRTIO_BLK_S_OK ? req->used_len : 1);
	req->next_free = bd->free;
	bd->free = req;
	bd->inflight--;
}

/* The data buffers of one direction, after skip bytes, len bytes in all. */
static void blk_req_iov(struct blk_req *req, const struct vring_chain *c, bool write,
			uint64_t skip, uint64_t len)
{
	req->iov_first = req->niov = 0;
	for (unsigned i = 0; i < c->niov && len; i++) {
		const struct vring_iov *v = &c->iov[i];
		uint64_t n;

		if (v->write != write)
			continue;
		if (skip >= v->len) {
			skip -= v->len;
			continue;
		}
		n = v->len - skip < len ? v->len - skip : len;
		req->iov[req->niov++] = (struct iovec){ (uint8_t *)v->base + skip, n };
		len -= n;
		skip = 0;
	}
}

/* Whether [sector, sector + count) lies inside the slice (overflow-safe). */
static bool blk_in_slice(const struct blk_dev *bd, uint64_t sector, uint64_t count)
{
	return sector <= blk_sectors(bd) && count <= blk_sectors(bd) - sector;
}

/* IN and OUT: the data after the header, or before the status byte. */
static uint8_t blk_req_rw(struct blk_req *req, const struct vring_chain *c,
			  const struct virtio_blk_req_hdr *h)
{
	struct blk_dev *bd = req->bd;
	bool in = h->type == VIRTIO_BLK_T_IN;
	uint64_t len = in ? c->writable - 1 : c->readable - sizeof(*h);

	if (!in && bd->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len % VIRTIO_BLK_SECTOR_SIZE || !blk_in_slice(bd, h->sector, len / VIRTIO_BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	req->used_len = !in ? 1 : len < UINT32_MAX ? (uint32_t)len + 1 : UINT32_MAX;
	req->bytes = len;
	if (!len)
		return VIRTIO_BLK_S_OK;
	blk_req_iov(req, c, in, in ? 0 : sizeof(*h), len);
	req->op[0] = (struct blk_op){ req, in ? BLK_OP_READ : BLK_OP_WRITE,
				      bd->offset + h->sector * VIRTIO_BLK_SECTOR_SIZE, len, 0 };
	req->nops = 1;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: up to BLK_MAX_SEGS ranges, each one fallocate. All are
 * checked before any is submitted. */
static uint8_t blk_req_ranges(struct blk_req *req, const struct vring_chain *c,
			      const struct virtio_blk_req_hdr *h)
{
	struct virtio_blk_discard_write_zeroes r[BLK_MAX_SEGS];
	struct blk_dev *bd = req->bd;
	bool discard = h->type == VIRTIO_BLK_T_DISCARD;
	uint64_t bytes = c->readable - sizeof(*h), n = bytes / sizeof(r[0]);

	if (bd->readonly || !n || n > BLK_MAX_SEGS || bytes % sizeof(r[0]))
		return VIRTIO_BLK_S_IOERR;
	vring_copy_from(c, sizeof(*h), r, bytes);
	for (unsigned i = 0; i < n; i++) {
		if (r[i].flags & ~(uint32_t)(discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			return VIRTIO_BLK_S_UNSUPP;
		if (!blk_in_slice(bd, r[i].sector, r[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	req->nops = 0;
	for (unsigned i = 0; i < n; i++) {
		int mode = FALLOC_FL_KEEP_SIZE;

		if (!r[i].num_sectors)
			continue;
		if (discard || (r[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			mode |= FALLOC_FL_PUNCH_HOLE;     /* reads back as zeroes */
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		req->op[req->nops++] = (struct blk_op){ req, BLK_OP_FALLOCATE,
			bd->offset + r[i].sector * VIRTIO_BLK_SECTOR_SIZE,
			(uint64_t)r[i].num_sectors * VIRTIO_BLK_SECTOR_SIZE, mode };
	}
	req->used_len = 1;
	return VIRTIO_BLK_S_OK;
}

/* Parses a request into operations (req->nops), or says how it completes at once. */
static uint8_t blk_req_parse(struct blk_req *req, const struct vring_chain *c)
{
	struct virtio_blk_req_hdr h;
	uint64_t idlen;

	req->nops = 0;
	req->used_len = 1;
	req->bytes = 0;
	if (c->readable < sizeof(h))
		return VIRTIO_BLK_S_IOERR;
	vring_copy_from(c, 0, &h, sizeof(h));
	req->type = h.type;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return blk_req_rw(req, c, &h);
	case VIRTIO_BLK_T_FLUSH:
		req->op[0] = (struct blk_op){ req, BLK_OP_FLUSH, 0, 0, 0 };
		req->nops = 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		idlen = c->writable - 1 < VIRTIO_BLK_ID_BYTES ? c->writable - 1 : VIRTIO_BLK_ID_BYTES;
		vring_copy_to(c, 0, req->bd->serial, idlen);
		req->used_len = (uint32_t)idlen + 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_req_ranges(req, c, &h);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static void blk_req_start(struct blk_server *bs, struct blk_req *req, const struct vring_chain *c)
{
	const struct vring_iov *last = &c->iov[c->niov - 1];
	uint8_t status;

	req->head = c->head;
	req->err = 0;
	req->status = (uint8_t *)last->base + last->len - 1;
	status = blk_req_parse(req, c);
	if (status != VIRTIO_BLK_S_OK || !req->nops) {
		blk_req_finish(req, status);
		return;
	}
	req->pending = req->nops;
	for (unsigned i = 0; i < req->nops; i++)
		blk_io_submit_op(bs, &req->op[i]);
}

static unsigned blk_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget)
{
	struct blk_server *bs = d->s->priv;
	struct blk_dev *bd = d->priv;
	unsigned n = 0;

	while (n < budget && bd->free && blk_io_room(bs, BLK_MAX_SEGS)) {
		struct blk_req *req;

		if (!vu_queue_pop(vq, &bs->chain))
			break;
		n++;
		/* A request the device cannot even answer (no writable status byte, e.g. the
		 * guest marked it driver-readable) is a broken driver: the device needs a
		 * reset, as for a corrupt ring. */
		if (!bs->chain.writable) {
			vu_dev_fail(d, vq, VRING_BAD_LAYOUT);
			break;
		}
		req = bd->free;
		bd->free = req->next_free;
		bd->inflight++;
		req->vq = vq;
		req->bd = bd;
		blk_req_start(bs, req, &bs->chain);
	}
	return n;
}

/* Drops the first done bytes of the remaining data buffers (a short transfer). */
static void blk_req_advance(struct blk_req *req, uint64_t done)
{
	while (req->niov && done >= req->iov[req->iov_first].iov_len) {
		done -= req->iov[req->iov_first].iov_len;
		req->iov_first++;
		req->niov--;
	}
	if (req->niov) {
		req->iov[req->iov_first].iov_base = (uint8_t *)req->iov[req->iov_first].iov_base + done;
		req->iov[req->iov_first].iov_len -= done;
	}
}

void blk_op_done(struct blk_server *bs, struct blk_op *op, int res)
{
	struct blk_req *req = op->req;

	if ((op->kind == BLK_OP_READ || op->kind == BLK_OP_WRITE) && res >= 0) {
		if (res > 0 && (uint64_t)res < op->len) {
			blk_req_advance(req, (uint64_t)res);
			op->off += (uint64_t)res;
			op->len -= (uint64_t)res;
			blk_io_submit_op(bs, op);          /* the rest */
			return;
		}
		if (res == 0 && op->len)
			res = -EIO;                        /* the file shrank under the slice */
	}
	if (op->kind == BLK_OP_FALLOCATE && res == -EOPNOTSUPP) {
		if (op->mode & FALLOC_FL_ZERO_RANGE) {
			op->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
			blk_io_submit_op(bs, op);          /* zeroes all the same */
			return;
		}
		if (req->type == VIRTIO_BLK_T_DISCARD)
			res = 0;                           /* a discard is only a hint */
	}
	if (res < 0 && !req->err)
		req->err = res;
	if (--req->pending == 0)
		blk_req_finish(req, req->err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void blk_reset(struct vu_dev *d)
{
	struct blk_dev *bd = d->priv;

	free(bd->reqs);
	bd->reqs = NULL;
	bd->nreqs = 0;
	bd->free = NULL;
}

const struct ios_backend ios_blk_backend = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max = BLK_QUEUE_MAX,
	.features = blk_features,
	.config = blk_config_fill,
	.prepare_spec = blk_prepare_spec,
	.server_init = blk_io_init,
	.server_fini = blk_io_fini,
	.dev_init = blk_dev_init,
	.dev_fini = blk_dev_fini,
	.queue_start = blk_queue_start,
	.handle = blk_handle,
	.io_poll = blk_io_poll,
	.drain = blk_io_drain,
	.reset = blk_reset,
	.counter_names = blk_counter_names,
	.ncounters = BLK_NCOUNTERS,
};
