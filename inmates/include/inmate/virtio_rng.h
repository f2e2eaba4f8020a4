/*
 * virtio-rng driver (device id 4): one request queue of device-writable buffers that
 * the device fills with entropy (possibly fewer bytes than offered).
 */
#ifndef INMATE_VIRTIO_RNG_H
#define INMATE_VIRTIO_RNG_H

#include <stddef.h>
#include <inmate/virtio.h>

#define VRNG_CHUNK     4096u     /* bytes per request */
#define VRNG_INFLIGHT  4

struct vrng {
	struct virtio_dev dev;
	struct virtqueue vq;
	uint64_t requests, short_fills;
};

int vrng_open(struct vrng *r, const struct virtio_opts *opts);
/* Fills buf with n random bytes, several requests in flight, re-asking for whatever a
 * request left unfilled. Returns n or a negative virtio error. */
long vrng_read(struct vrng *r, void *buf, size_t n);

#endif
