/*
 * virtio-rng driver: posts the caller's buffer in chunks straight to the device (its
 * address is guest-physical) and re-posts the unfilled tail of any short chunk.
 */
#include <inmate/string.h>
#include <inmate/virtio_rng.h>

#define VRNG_QUEUE 0

struct vrng_piece {
	char *addr;
	uint32_t len;
};

int vrng_open(struct vrng *r, const struct virtio_opts *opts)
{
	int err;

	memset(r, 0, sizeof(*r));
	err = virtio_pci_open(&r->dev, VIRTIO_ID_ENTROPY, opts);
	if (!err)
		err = virtio_negotiate(&r->dev, 0);
	if (!err)
		err = virtio_setup_irqs(&r->dev, 1);
	if (!err)
		err = virtio_queue_setup(&r->dev, &r->vq, VRNG_QUEUE, 0, 0);
	if (err) {
		if (r->dev.common.base)
			virtio_set_failed(&r->dev);
		return err;
	}
	virtio_driver_ok(&r->dev);
	return 0;
}

static int vrng_post(struct vrng *r, struct vrng_piece *p)
{
	struct virtq_buf b = { p->addr, p->len };

	r->requests++;
	return virtq_add(&r->vq, &b, 0, 1, p);
}

long vrng_read(struct vrng *r, void *buf, size_t n)
{
	struct vrng_piece pieces[VRNG_INFLIGHT];
	char *next = buf, *end = (char *)buf + n;
	size_t filled = 0;
	unsigned idle = VRNG_INFLIGHT;
	struct vrng_piece *idle_list[VRNG_INFLIGHT];
	int err;

	for (unsigned i = 0; i < VRNG_INFLIGHT; i++)
		idle_list[i] = &pieces[i];
	while (filled < n) {
		struct vrng_piece *p;
		uint32_t got;

		while (idle && next < end) {
			p = idle_list[--idle];
			p->addr = next;
			p->len = end - next < VRNG_CHUNK ? (uint32_t)(end - next) : VRNG_CHUNK;
			next += p->len;
			err = vrng_post(r, p);
			if (err)
				return err;
		}
		virtq_kick(&r->vq);
		p = virtq_get(&r->vq, &got);
		if (!p) {
			err = virtq_wait(&r->vq, VIRTQ_TIMEOUT_US);
			if (err)
				return err;
			continue;
		}
		filled += got;
		if (got < p->len) {
			/* The device may hand back fewer bytes: ask again for the rest. */
			r->short_fills++;
			p->addr += got;
			p->len -= got;
			err = vrng_post(r, p);
			if (err)
				return err;
		} else {
			idle_list[idle++] = p;
		}
	}
	return (long)n;
}
