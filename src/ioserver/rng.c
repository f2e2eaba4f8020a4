/*
 * The virtio-rng class (virtio 1.2, 5.4): every device-writable buffer the guest posts
 * is filled from getrandom(), at most RNG_MAX_FILL bytes per request so that one guest
 * asking for a lot cannot hold the others back.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "ioserver/ioserver.h"

#define RNG_QUEUE_MAX     1024
#define RNG_MAX_FILL      65536u

static uint64_t rng_features(struct vu_dev *d)
{
	return IOS_RING_FEATURES;
}

static size_t rng_config_fill(struct vu_dev *d, uint8_t *buf)
{
	return 0;                         /* virtio-rng has no configuration */
}

/* Fills len bytes at p; returns how many it could. */
static uint32_t rng_fill(uint8_t *p, uint32_t len)
{
	uint32_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (uint32_t)n;
	}
	return done;
}

/* Counted per device. */
enum { RNG_C_REQUESTS, RNG_C_BYTES, RNG_NCOUNTERS };
static const char *const rng_counter_names[RNG_NCOUNTERS] = { "requests", "bytes" };

static unsigned rng_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget)
{
	struct vring_chain *c = d->priv;
	unsigned n = 0;

	while (n < budget && vu_queue_pop(vq, c)) {
		uint32_t filled = 0;

		n++;
		for (unsigned i = 0; i < c->niov && filled < RNG_MAX_FILL; i++) {
			uint32_t want = c->iov[i].len, got;

			if (!c->iov[i].write)
				continue;
			if (want > RNG_MAX_FILL - filled)
				want = RNG_MAX_FILL - filled;
			got = rng_fill(c->iov[i].base, want);
			filled += got;
			if (got < want)
				break;             /* the used length counts from the start */
		}
		vu_queue_push(vq, c->head, filled);
		ios_count(d, RNG_C_REQUESTS, 1);
		ios_count(d, RNG_C_BYTES, filled);
	}
	return n;
}

static int rng_dev_init(struct vu_dev *d, const struct ios_conn_spec *spec)
{
	d->priv = calloc(1, sizeof(struct vring_chain));
	return d->priv ? 0 : -ENOMEM;
}

static void rng_dev_fini(struct vu_dev *d)
{
	free(d->priv);
	d->priv = NULL;
}

const struct ios_backend ios_rng_backend = {
	.name = "rng",
	.device_id = VIRTIO_ID_ENTROPY,
	.nqueues = 1,
	.queue_max = RNG_QUEUE_MAX,
	.features = rng_features,
	.config = rng_config_fill,
	.dev_init = rng_dev_init,
	.dev_fini = rng_dev_fini,
	.handle = rng_handle,
	.counter_names = rng_counter_names,
	.ncounters = RNG_NCOUNTERS,
};
