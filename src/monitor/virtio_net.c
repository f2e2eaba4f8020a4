/*
 * virtio-net (device id 1) as the monitor sees it: one queue pair, receiveq (0) and
 * transmitq (1), no control queue, and the server's 10-byte configuration (mac, status,
 * max_virtqueue_pairs; virtio 1.2, 5.1.4). Frames and the switch are the server's.
 */
#include "monitor/virtio.h"

/* mac, status, max_virtqueue_pairs: no MTU, no RSS. */
#define VIRTIO_NET_CONFIG_SIZE     offsetof(struct virtio_net_config, mtu)

const struct vdev_type vdev_net_type = {
	.name = "net",
	.virtio_id = VIRTIO_ID_NET,
	.class_code = 0x020000,          /* network controller, Ethernet */
	.nqueues = 2,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	/* Passed between guest and server. Not CTRL_VQ or MQ: one queue pair, no control
	 * queue; no offloads: a guest sends and takes whole, checksummed frames. */
	.features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
		    (1ULL << VIRTIO_NET_F_STATUS),
	.needs_config = true,            /* the MAC the network gave this port */
};
