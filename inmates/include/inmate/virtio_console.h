/*
 * virtio-console driver (device id 3), port 0 only: output through the transmit queue
 * (vcon_write, vcon_printf), input from buffers kept posted on the receive queue
 * (vcon_read). MULTIPORT is not negotiated, so there are no control queues.
 */
#ifndef INMATE_VIRTIO_CONSOLE_H
#define INMATE_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <inmate/printf.h>
#include <inmate/virtio.h>

#define VCON_RX_BUFS      4
#define VCON_RX_BYTES     256
#define VCON_TX_BUFS      16
#define VCON_TX_BYTES     512

struct vcon {
	struct virtio_dev dev;
	struct virtqueue rx, tx;
	char *rx_bufs, *tx_bufs;
	char *tx_free[VCON_TX_BUFS];        /* stack of idle transmit buffers */
	unsigned tx_nfree;
	char *rx_cur;                       /* a received buffer being consumed */
	uint32_t rx_pos, rx_len;
	uint64_t bytes_out, bytes_in, tx_chains;
};

int vcon_open(struct vcon *c, const struct virtio_opts *opts);

/* Queues n bytes for output (copied; chunks of VCON_TX_BYTES) and notifies. Waits for
 * transmit buffers only when all are in flight. Returns n or a negative virtio error. */
long vcon_write(struct vcon *c, const void *buf, size_t n);
int vcon_printf(struct vcon *c, const char *fmt, ...) INMATE_PRINTF(2, 3);
/* Waits until the device has consumed everything written. */
int vcon_flush(struct vcon *c, uint64_t timeout_us);
/* Copies up to n received bytes; never blocks. Returns the count (0: none waiting). */
long vcon_read(struct vcon *c, void *buf, size_t n);

#endif
