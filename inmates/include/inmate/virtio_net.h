/*
 * virtio-net driver (device id 1), one queue pair, no control queue, no offloads: a
 * pool of equal buffers, every one big enough for a whole frame, that move between the
 * receive ring, the caller and the transmit ring without being copied.
 */
#ifndef INMATE_VIRTIO_NET_H
#define INMATE_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <inmate/virtio.h>

/* Device configuration offsets (struct virtio_net_config, <bulkhead/virtio.h>). */
#define VIRTIO_NET_CFG_MAC      offsetof(struct virtio_net_config, mac)
#define VIRTIO_NET_CFG_STATUS   offsetof(struct virtio_net_config, status)

/* The header before every frame (struct virtio_net_hdr): with VERSION_1 always 12
 * bytes, num_buffers included; a transmitted frame's is all zeros (no checksum or GSO
 * offload). */
#define VNET_HDR_LEN    ((unsigned)sizeof(struct virtio_net_hdr))
#define VNET_FRAME_MAX  1514u     /* Ethernet header + 1500, no FCS */
#define VNET_FRAME_MIN  60u       /* shorter frames are padded with zeros */
/* Every buffer holds the header and a whole frame, so with MRG_RXBUF a device never
 * needs a second buffer for one frame (num_buffers is 1). */
#define VNET_BUF_SIZE   1536u
#define VNET_TX_TIMEOUT_US VIRTQ_TIMEOUT_US

struct vnet {
	struct virtio_dev dev;
	struct virtqueue rx, tx;
	uint8_t mac[6];
	int has_mac;                 /* VIRTIO_NET_F_MAC: the device gave the address */
	uint16_t status;             /* configuration status (VIRTIO_NET_S_LINK_UP) */
	uint8_t *pool;               /* nbufs buffers of VNET_BUF_SIZE */
	unsigned nbufs;
	uint8_t **free;              /* stack of idle buffers */
	unsigned nfree;
	unsigned rx_skip;            /* buffers of a merged frame still to drop */
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t rx_dropped;         /* too short, or spread over several buffers */
	uint64_t tx_full_waits;      /* times the transmit ring was full */
};

/* Finds, negotiates (MAC, STATUS, MRG_RXBUF when offered) and starts the device,
 * allocates (and so touches) every buffer: rx.num + tx.num of them, and fills the
 * receive ring. Without VIRTIO_NET_F_MAC the address is 02:62:68:00:00:<slot>. */
int vnet_open(struct vnet *n, const struct virtio_opts *opts);

/* The next received frame (its first byte; the header is just before it) and its
 * length, or NULL. The buffer is the caller's until vnet_put or vnet_send. */
uint8_t *vnet_recv(struct vnet *n, unsigned *len);
/* An idle buffer's frame area (VNET_FRAME_MAX bytes), or NULL when all are in use:
 * reclaim with vnet_reclaim, or wait with vnet_get_wait. */
uint8_t *vnet_get(struct vnet *n);
/* The same, waiting up to timeout_us for the device to give a transmit buffer back. */
int vnet_get_wait(struct vnet *n, uint8_t **frame, uint64_t timeout_us);
/* Gives a frame's buffer (from vnet_recv or vnet_get) back to the pool. */
void vnet_put(struct vnet *n, uint8_t *frame);
/* Queues the frame (from vnet_recv or vnet_get) for transmission, zero-padded to
 * VNET_FRAME_MIN; its buffer comes back to the pool once the device used it. When the
 * ring is full, notifies and waits up to VNET_TX_TIMEOUT_US. Does not notify
 * otherwise: vnet_kick. Returns 0 or a negative virtio error (the buffer is back). */
int vnet_send(struct vnet *n, uint8_t *frame, unsigned len);
void vnet_kick(struct vnet *n);
/* Takes back transmitted buffers and keeps the receive ring full (notifying the device
 * when it was given buffers). Returns the number of transmit buffers taken back. */
unsigned vnet_reclaim(struct vnet *n);
/* Waits until a frame was received (0), or -VIRTIO_ETIMEDOUT / -VIRTIO_EIO. */
int vnet_wait_rx(struct vnet *n, uint64_t timeout_us);
/* Waits until the device has used every transmitted frame. */
int vnet_flush(struct vnet *n, uint64_t timeout_us);
static inline unsigned vnet_tx_in_flight(const struct vnet *n)
{
	return virtq_in_flight(&n->tx);
}

#endif
