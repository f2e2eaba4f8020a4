/*
 * virtio-console (device id 3) as the monitor sees it: port 0 only (no MULTIPORT), so
 * two queues, receiveq0 (0) and transmitq0 (1), and a 12-byte configuration of which
 * only cols/rows mean anything (with VIRTIO_CONSOLE_F_SIZE).
 */
#include "monitor/virtio.h"

#define VIRTIO_CONSOLE_CONFIG_SIZE sizeof(struct virtio_console_config)

const struct vdev_type vdev_console_type = {
	.name = "console",
	.virtio_id = VIRTIO_ID_CONSOLE,
	.class_code = 0x078000,          /* simple communication controller, other */
	.nqueues = 2,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.features = 1ULL << VIRTIO_CONSOLE_F_SIZE,
};
