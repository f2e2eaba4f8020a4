/*
 * virtio-blk driver (device id 2): one request queue, requests with a readable header,
 * data, and a writable status byte. Asynchronous (submit, kick, reap, many in flight)
 * and synchronous helpers. Sectors are 512 bytes whatever the device's block size.
 */
#ifndef INMATE_VIRTIO_BLK_H
#define INMATE_VIRTIO_BLK_H

#include <inmate/virtio.h>

/* The inmate API's names for parts of the virtio-blk ABI (<bulkhead/virtio.h>). */
#define VIRTIO_BLK_SECTOR          VIRTIO_BLK_SECTOR_SIZE
#define VIRTIO_BLK_WZ_UNMAP        VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
#define vblk_hdr                   virtio_blk_req_hdr
#define vblk_range                 virtio_blk_discard_write_zeroes

#define VBLK_MAX_SEGS              64     /* data buffers per request */
#define VBLK_MAX_REQS              64     /* requests in flight */

struct vblk_req {
	struct virtio_blk_req_hdr hdr;     /* device-readable */
	struct virtio_blk_discard_write_zeroes range;   /* discard/write-zeroes payload */
	uint8_t status;               /* device-writable */
	/* driver side */
	void *buf;
	uint32_t len;
	uint32_t used_len;            /* what the device reported */
	int done;
	void *user;                   /* the caller's */
	struct vblk_req *next_free;
};

struct vblk {
	struct virtio_dev dev;
	struct virtqueue vq;
	uint64_t capacity;            /* sectors */
	uint32_t blk_size, size_max, seg_max;
	uint32_t max_discard_sectors, max_discard_seg;
	uint32_t max_wz_sectors, max_wz_seg;
	uint8_t wz_may_unmap;
	int readonly;
	uint32_t seg_bytes;           /* split data into buffers of at most this; 0: whole */
	struct vblk_req *reqs, *free;
	unsigned nr_reqs;
	uint64_t completed, errors;
};

/* Finds, negotiates (RO, BLK_SIZE, FLUSH, SEG_MAX, SIZE_MAX, DISCARD, WRITE_ZEROES,
 * TOPOLOGY when offered) and starts the opts->index-th block device. */
int vblk_open(struct vblk *b, const struct virtio_opts *opts);
void vblk_print_info(const struct vblk *b, const char *prefix);

/* Asynchronous use: take a request, submit it (header, data split into buffers,
 * status), kick (submissions are batched until then), wait, reap completions. */
struct vblk_req *vblk_req_get(struct vblk *b);       /* NULL: all in flight */
void vblk_req_put(struct vblk *b, struct vblk_req *r);
int vblk_submit(struct vblk *b, struct vblk_req *r, uint32_t type, uint64_t sector,
		void *buf, uint32_t len);
void vblk_kick(struct vblk *b);
struct vblk_req *vblk_reap(struct vblk *b);          /* NULL: nothing completed yet */
int vblk_wait(struct vblk *b, uint64_t timeout_us);

/* Synchronous helpers: return the request's VIRTIO_BLK_S_* status (>= 0) or a negative
 * virtio error (timeout, broken queue, queue full). */
int vblk_read(struct vblk *b, uint64_t sector, void *buf, uint32_t nsect);
int vblk_write(struct vblk *b, uint64_t sector, const void *buf, uint32_t nsect);
int vblk_flush(struct vblk *b);
int vblk_get_id(struct vblk *b, char id[VIRTIO_BLK_ID_BYTES + 1]);
int vblk_discard(struct vblk *b, uint64_t sector, uint32_t nsect);
int vblk_write_zeroes(struct vblk *b, uint64_t sector, uint32_t nsect, int unmap);

const char *vblk_status_name(int status);

#endif
