/*
 * virtio-console driver, port 0: a pool of transmit buffers recycled as the device
 * uses them, and receive buffers re-posted as soon as their bytes are read.
 */
#include <inmate/alloc.h>
#include <inmate/string.h>
#include <inmate/virtio_console.h>

#define VCON_RXQ        0
#define VCON_TXQ        1
#define VCON_FMT_CHUNK  128

static int vcon_post_rx(struct vcon *c, char *buf)
{
	struct virtq_buf b = { buf, VCON_RX_BYTES };

	return virtq_add(&c->rx, &b, 0, 1, buf);
}

int vcon_open(struct vcon *c, const struct virtio_opts *opts)
{
	int err;

	memset(c, 0, sizeof(*c));
	err = virtio_pci_open(&c->dev, VIRTIO_ID_CONSOLE, opts);
	if (!err)
		err = virtio_negotiate(&c->dev, 0);
	if (!err)
		err = virtio_setup_irqs(&c->dev, 2);
	if (!err)
		err = virtio_queue_setup(&c->dev, &c->rx, VCON_RXQ, 0, 0);
	if (!err)
		err = virtio_queue_setup(&c->dev, &c->tx, VCON_TXQ, 0, 0);
	if (!err) {
		c->rx_bufs = mem_alloc(VCON_RX_BUFS * VCON_RX_BYTES, 0);
		c->tx_bufs = mem_alloc(VCON_TX_BUFS * VCON_TX_BYTES, 0);
		if (!c->rx_bufs || !c->tx_bufs)
			err = -VIRTIO_ENOMEM;
	}
	if (err) {
		if (c->dev.common.base)
			virtio_set_failed(&c->dev);
		return err;
	}
	for (unsigned i = 0; i < VCON_TX_BUFS; i++)
		c->tx_free[c->tx_nfree++] = c->tx_bufs + i * VCON_TX_BYTES;
	virtio_driver_ok(&c->dev);
	/* Receive buffers may be posted once the device is live. */
	for (unsigned i = 0; i < VCON_RX_BUFS && i < c->rx.num; i++)
		vcon_post_rx(c, c->rx_bufs + i * VCON_RX_BYTES);
	virtq_kick(&c->rx);
	return 0;
}

static void vcon_reclaim(struct vcon *c)
{
	char *buf;

	while ((buf = virtq_get(&c->tx, NULL)))
		c->tx_free[c->tx_nfree++] = buf;
}

long vcon_write(struct vcon *c, const void *src, size_t n)
{
	const char *p = src;
	size_t left = n;
	int err;

	while (left) {
		size_t chunk = left < VCON_TX_BYTES ? left : VCON_TX_BYTES;
		struct virtq_buf b;
		char *buf;

		vcon_reclaim(c);
		if (!c->tx_nfree) {
			virtq_kick(&c->tx);
			err = virtq_wait(&c->tx, VIRTQ_TIMEOUT_US);
			if (err)
				return err;
			continue;
		}
		buf = c->tx_free[--c->tx_nfree];
		memcpy(buf, p, chunk);
		b = (struct virtq_buf){ buf, (uint32_t)chunk };
		err = virtq_add(&c->tx, &b, 1, 0, buf);
		if (err) {
			c->tx_free[c->tx_nfree++] = buf;
			return err;
		}
		c->tx_chains++;
		c->bytes_out += chunk;
		p += chunk;
		left -= chunk;
	}
	virtq_kick(&c->tx);
	return (long)n;
}

struct vcon_fmt {
	struct vcon *c;
	char buf[VCON_FMT_CHUNK];
	size_t len;
	long err;
};

static void vcon_fmt_out(char ch, void *ctx)
{
	struct vcon_fmt *f = ctx;

	f->buf[f->len++] = ch;
	if (f->len == sizeof(f->buf)) {
		long r = vcon_write(f->c, f->buf, f->len);

		if (r < 0)
			f->err = r;
		f->len = 0;
	}
}

int vcon_printf(struct vcon *c, const char *fmt, ...)
{
	struct vcon_fmt f = { .c = c };
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = format(vcon_fmt_out, &f, fmt, ap);
	va_end(ap);
	if (f.len) {
		long r = vcon_write(c, f.buf, f.len);

		if (r < 0)
			f.err = r;
	}
	return f.err ? (int)f.err : n;
}

int vcon_flush(struct vcon *c, uint64_t timeout_us)
{
	int err;

	virtq_kick(&c->tx);
	for (;;) {
		vcon_reclaim(c);
		if (c->tx_nfree == VCON_TX_BUFS)
			return 0;
		err = virtq_wait(&c->tx, timeout_us);
		if (err)
			return err;
	}
}

long vcon_read(struct vcon *c, void *dst, size_t n)
{
	size_t got = 0;

	while (got < n) {
		uint32_t take;

		if (!c->rx_cur) {
			c->rx_cur = virtq_get(&c->rx, &c->rx_len);
			c->rx_pos = 0;
			if (!c->rx_cur)
				break;
		}
		take = c->rx_len - c->rx_pos;
		if (take > n - got)
			take = n - got;
		memcpy((char *)dst + got, c->rx_cur + c->rx_pos, take);
		got += take;
		c->rx_pos += take;
		if (c->rx_pos == c->rx_len) {
			vcon_post_rx(c, c->rx_cur);
			virtq_kick(&c->rx);
			c->rx_cur = NULL;
		}
	}
	c->bytes_in += got;
	return (long)got;
}
