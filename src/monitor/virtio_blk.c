/*
 * virtio-blk (device id 2) as the monitor sees it: one request queue, the server's
 * 60-byte configuration (virtio 1.2, 5.2.4), and the one field a guest may write
 * (writeback, with VIRTIO_BLK_F_CONFIG_WCE). Requests are the server's business.
 */
#include "monitor/virtio.h"

/* The configuration up to the write-zeroes fields (no SECURE_ERASE). */
#define VIRTIO_BLK_CONFIG_SIZE   offsetof(struct virtio_blk_config, max_secure_erase_sectors)
#define VIRTIO_BLK_CFG_WRITEBACK offsetof(struct virtio_blk_config, writeback)

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
	/* Passed between guest and server: not MQ (one queue), LIFETIME or SECURE_ERASE. */
	.features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		    (1ULL << VIRTIO_BLK_F_GEOMETRY) | (1ULL << VIRTIO_BLK_F_RO) |
		    (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		    (1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |
		    (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
	.needs_config = true,            /* the capacity comes from the server */
	.config_writable = blk_config_writable,
};
