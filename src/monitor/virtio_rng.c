/*
 * virtio-rng (device id 4) as the monitor sees it: one request queue, no device
 * configuration (so no DEVICE_CFG capability) and no device feature bits.
 */
#include "monitor/virtio.h"

const struct vdev_type vdev_rng_type = {
	.name = "rng",
	.virtio_id = VIRTIO_ID_ENTROPY,
	.class_code = 0x00ff00,          /* unclassified device, "other" */
	.nqueues = 1,
};
