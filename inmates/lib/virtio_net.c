/*
 * virtio-net driver: one pool of VNET_BUF_SIZE buffers (rx.num + tx.num of them,
 * allocated and touched at open) moving between the receive ring, the program and the
 * transmit ring. A received buffer can be sent back as it is (a reply built in place),
 * so no frame is ever copied. Every buffer holds a whole frame: with MRG_RXBUF a frame
 * spread over several buffers is not expected and is dropped (counted) if it comes.
 */
#include <inmate/alloc.h>
#include <inmate/string.h>
#include <inmate/virtio_net.h>

typedef uint64_t vnet_u64 __attribute__((may_alias, aligned(1)));
typedef uint32_t vnet_u32 __attribute__((may_alias, aligned(1)));

#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_MAC_PREFIX0 0x02        /* locally administered, "bh" */
#define VNET_MAC_PREFIX1 0x62
#define VNET_MAC_PREFIX2 0x68

static inline uint8_t *vnet_buf(uint8_t *frame)
{
	return frame - VNET_HDR_LEN;
}

static inline void vnet_free_push(struct vnet *n, uint8_t *buf)
{
	n->free[n->nfree++] = buf;
}

static void vnet_tx_reclaim(struct vnet *n, unsigned *count)
{
	uint8_t *buf;

	while ((buf = virtq_get(&n->tx, NULL))) {
		vnet_free_push(n, buf);
		(*count)++;
	}
}

/* Posts idle buffers until the receive ring is full; returns how many. */
static unsigned vnet_rx_fill(struct vnet *n)
{
	unsigned posted = 0;

	while (n->nfree && n->rx.num_free) {
		uint8_t *buf = n->free[n->nfree - 1];
		struct virtq_buf b = { buf, VNET_BUF_SIZE };

		if (virtq_add(&n->rx, &b, 0, 1, buf))
			break;
		n->nfree--;
		posted++;
	}
	return posted;
}

unsigned vnet_reclaim(struct vnet *n)
{
	unsigned got = 0;

	vnet_tx_reclaim(n, &got);
	if (vnet_rx_fill(n))
		virtq_kick(&n->rx);
	return got;
}

static void vnet_read_config(struct vnet *n)
{
	n->has_mac = virtio_has(&n->dev, VIRTIO_NET_F_MAC);
	if (n->has_mac) {
		for (unsigned i = 0; i < 6; i++)
			n->mac[i] = virtio_cfg_read8(&n->dev, VIRTIO_NET_CFG_MAC + i);
	} else {
		n->mac[0] = VNET_MAC_PREFIX0;
		n->mac[1] = VNET_MAC_PREFIX1;
		n->mac[2] = VNET_MAC_PREFIX2;
		n->mac[5] = n->dev.pci.slot;
	}
	n->status = virtio_has(&n->dev, VIRTIO_NET_F_STATUS) ?
		    virtio_cfg_read16(&n->dev, VIRTIO_NET_CFG_STATUS) : VIRTIO_NET_S_LINK_UP;
}

int vnet_open(struct vnet *n, const struct virtio_opts *opts)
{
	int err;

	memset(n, 0, sizeof(*n));
	err = virtio_pci_open(&n->dev, VIRTIO_ID_NET, opts);
	if (!err)
		err = virtio_negotiate(&n->dev, VIRTIO_BIT(VIRTIO_NET_F_MAC) |
				       VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
				       VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	if (!err)
		err = virtio_setup_irqs(&n->dev, 2);
	if (!err)
		err = virtio_queue_setup(&n->dev, &n->rx, VNET_RXQ, 0, 0);
	if (!err)
		err = virtio_queue_setup(&n->dev, &n->tx, VNET_TXQ, 0, 0);
	if (!err) {
		n->nbufs = n->rx.num + n->tx.num;
		/* mem_alloc zeroes: every buffer page is touched here, not in the data path */
		n->pool = mem_alloc((size_t)n->nbufs * VNET_BUF_SIZE, ALLOC_PAGE);
		n->free = mem_alloc(n->nbufs * sizeof(n->free[0]), 0);
		if (!n->pool || !n->free)
			err = -VIRTIO_ENOMEM;
	}
	if (err) {
		if (n->dev.common.base)
			virtio_set_failed(&n->dev);
		return err;
	}
	vnet_read_config(n);
	for (unsigned i = n->nbufs; i-- > 0; )
		vnet_free_push(n, n->pool + (size_t)i * VNET_BUF_SIZE);
	virtio_driver_ok(&n->dev);
	/* Receive buffers may be posted once the device is live. */
	vnet_rx_fill(n);
	virtq_kick(&n->rx);
	return 0;
}

uint8_t *vnet_recv(struct vnet *n, unsigned *len)
{
	uint8_t *buf;
	uint32_t used;

	while ((buf = virtq_get(&n->rx, &used))) {
		/* Read once: the device may write the header again only after we repost. */
		uint16_t nbuf = ((volatile struct virtio_net_hdr *)buf)->num_buffers;

		if (n->rx_skip) {               /* the rest of a frame already dropped */
			n->rx_skip--;
			vnet_free_push(n, buf);
			continue;
		}
		if (nbuf > 1 && virtio_has(&n->dev, VIRTIO_NET_F_MRG_RXBUF)) {
			n->rx_skip = nbuf - 1u;
			n->rx_dropped++;
			vnet_free_push(n, buf);
			continue;
		}
		if (used < VNET_HDR_LEN + 14u) {
			n->rx_dropped++;
			vnet_free_push(n, buf);
			continue;
		}
		*len = used - VNET_HDR_LEN;
		n->rx_frames++;
		n->rx_bytes += *len;
		return buf + VNET_HDR_LEN;
	}
	return NULL;
}

uint8_t *vnet_get(struct vnet *n)
{
	unsigned got = 0;

	if (!n->nfree)
		vnet_tx_reclaim(n, &got);
	if (!n->nfree)
		return NULL;
	return n->free[--n->nfree] + VNET_HDR_LEN;
}

int vnet_get_wait(struct vnet *n, uint8_t **frame, uint64_t timeout_us)
{
	int err;

	for (;;) {
		if ((*frame = vnet_get(n)))
			return 0;
		if (!virtq_in_flight(&n->tx))
			return -VIRTIO_ENOMEM;          /* the program holds them all */
		vnet_kick(n);
		n->tx_full_waits++;
		err = virtq_wait(&n->tx, timeout_us);
		if (err)
			return err;
	}
}

void vnet_put(struct vnet *n, uint8_t *frame)
{
	vnet_free_push(n, vnet_buf(frame));
}

int vnet_send(struct vnet *n, uint8_t *frame, unsigned len)
{
	uint8_t *buf = vnet_buf(frame);
	struct virtq_buf b;
	int err;

	if (len > VNET_FRAME_MAX) {
		vnet_free_push(n, buf);
		return -VIRTIO_EINVAL;
	}
	if (len < VNET_FRAME_MIN) {
		memset(frame + len, 0, VNET_FRAME_MIN - len);
		len = VNET_FRAME_MIN;
	}
	/* No offloads: the header is all zeros (two stores; a memset would loop). */
	*(vnet_u64 *)buf = 0;
	*(vnet_u32 *)(buf + 8) = 0;
	b = (struct virtq_buf){ buf, VNET_HDR_LEN + len };
	while ((err = virtq_add(&n->tx, &b, 1, 0, buf)) == -VIRTIO_ENOSPC) {
		unsigned got = 0;

		/* The ring is full (a rate-limited port holds frames in it): wait. */
		vnet_tx_reclaim(n, &got);
		if (got)
			continue;
		n->tx_full_waits++;
		vnet_kick(n);
		err = virtq_wait(&n->tx, VNET_TX_TIMEOUT_US);
		if (err)
			break;
	}
	if (err) {
		vnet_free_push(n, buf);
		return err;
	}
	n->tx_frames++;
	n->tx_bytes += len;
	return 0;
}

void vnet_kick(struct vnet *n)
{
	virtq_kick(&n->tx);
}

int vnet_wait_rx(struct vnet *n, uint64_t timeout_us)
{
	if (virtq_has_used(&n->rx))
		return 0;
	return virtq_wait(&n->rx, timeout_us);
}

int vnet_flush(struct vnet *n, uint64_t timeout_us)
{
	unsigned got = 0;
	int err;

	vnet_kick(n);
	for (;;) {
		vnet_tx_reclaim(n, &got);
		if (!virtq_in_flight(&n->tx))
			return 0;
		err = virtq_wait(&n->tx, timeout_us);
		if (err)
			return err;
	}
}
