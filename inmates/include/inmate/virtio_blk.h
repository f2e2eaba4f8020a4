/*
 * virtio-blk driver (device id 2): one request queue, requests with a readable header,
 * data, and a writable status byte. Asynchronous (submit, kick, reap, many in flight)
 * and synchronous helpers. Sectors are 512 bytes whatever the device's block size.
 */
#ifndef INMATE_VIRTIO_BLK_H
#define INMATE_VIRTIO_BLK_H

#include <inmate/virtio.h>

#define VIRTIO_BLK_F_SIZE_MAX      1
#define VIRTIO_BLK_F_SEG_MAX       2
#define VIRTIO_BLK_F_GEOMETRY      4
#define VIRTIO_BLK_F_RO            5
#define VIRTIO_BLK_F_BLK_SIZE      6
#define VIRTIO_BLK_F_FLUSH         9
#define VIRTIO_BLK_F_TOPOLOGY      10
#define VIRTIO_BLK_F_CONFIG_WCE    11
#define VIRTIO_BLK_F_MQ            12
#define VIRTIO_BLK_F_DISCARD       13
#define VIRTIO_BLK_F_WRITE_ZEROES  14

#define VIRTIO_BLK_T_IN            0
#define VIRTIO_BLK_T_OUT           1
#define VIRTIO_BLK_T_FLUSH         4
#define VIRTIO_BLK_T_GET_ID        8
#define VIRTIO_BLK_T_DISCARD       11
#define VIRTIO_BLK_T_WRITE_ZEROES  13

#define VIRTIO_BLK_S_OK            0
#define VIRTIO_BLK_S_IOERR         1
#define VIRTIO_BLK_S_UNSUPP        2

#define VIRTIO_BLK_SECTOR          512u
#define VIRTIO_BLK_ID_BYTES        20
#define VIRTIO_BLK_WZ_UNMAP        1u     /* write-zeroes flag: may deallocate */

#define VBLK_MAX_SEGS              64     /* data buffers per request */
#define VBLK_MAX_REQS              64     /* requests in flight */

/* struct virtio_blk_req's readable head, and a discard/write-zeroes range. */
struct vblk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct vblk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct vblk_req {
	struct vblk_hdr hdr;          /* device-readable */
	struct vblk_range range;      /* device-readable payload of discard/write-zeroes */
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
