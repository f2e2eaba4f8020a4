/*
 * virtio-blk (device id 2) as the monitor sees it: one request queue, the server's
 * 60-byte configuration (virtio 1.2, 5.2.4), and the one field a guest may write
 * (writeback, with VIRTIO_BLK_F_CONFIG_WCE). Requests are the server's business.
 */
#include "monitor/virtio.h"

#define VIRTIO_ID_BLOCK          2
#define VIRTIO_BLK_CONFIG_SIZE   60
#define VIRTIO_BLK_CFG_WRITEBACK 32

/* Feature bits passed between guest and server. Not VIRTIO_BLK_F_MQ: one queue. */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

static bool blk_config_writable(unsigned off, unsigned size)
{
	return off == VIRTIO_BLK_CFG_WRITEBACK && size == 1;
}

const struct vdev_type vdev_blk_type = {
	.name = "blk",
	.virtio_id = VIRTIO_ID_BLOCK,
	.class_code = 0x018000,          /* mass storage, other */
	.nqueues = 1,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		    (1ULL << VIRTIO_BLK_F_GEOMETRY) | (1ULL << VIRTIO_BLK_F_RO) |
		    (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		    (1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |
		    (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
	.needs_config = true,            /* the capacity comes from the server */
	.config_writable = blk_config_writable,
};
