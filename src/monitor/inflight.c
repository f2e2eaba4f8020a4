/*
 * Shared mode's inflight region (vhost-user VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, split
 * rings): the server records in it which chains it took from the guest's ring and has
 * not completed. The monitor keeps the region across server restarts and reads it once
 * when a new server takes over, to tell it where in the avail ring the dead one stopped.
 * The server resubmits the chains still marked; the monitor only counts them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor/virtio.h"

/* One queue's region (the specification's QueueRegionSplit), then desc_num entries of
 * DescStateSplit (16 bytes: inflight, 5 padding bytes, next, counter). */
#define VIF_HDR_VERSION     8
#define VIF_HDR_DESC_NUM    10
#define VIF_HDR_BATCH_HEAD  12
#define VIF_HDR_USED_IDX    14
#define VIF_HDR_SIZE        16
#define VIF_DESC_SIZE       16
#define VIF_DESC_INFLIGHT   0
#define VIF_DESC_NEXT       6
#define VIF_MAX_SIZE        (1u << 20)    /* far more than 2 queues of 256 need */
#define VIF_PAGE            4096u

static uint16_t vif_u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Reads a queue's region once into a local copy: the server may still be writing it
 * (a live one) or have left anything in it (a dead one). */
struct vif_queue {
	uint16_t version, desc_num, batch_head, used_idx;
	uint8_t  inflight[VDEV_QUEUE_SIZE];
	uint16_t next[VDEV_QUEUE_SIZE];
};

static void vif_read(const struct vdev *d, unsigned qi, struct vif_queue *v)
{
	const uint8_t *r = d->inflight.map + qi * d->inflight.stride;

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	v->version = vif_u16(r + VIF_HDR_VERSION);
	v->desc_num = vif_u16(r + VIF_HDR_DESC_NUM);
	v->batch_head = vif_u16(r + VIF_HDR_BATCH_HEAD);
	v->used_idx = vif_u16(r + VIF_HDR_USED_IDX);
	for (unsigned i = 0; i < VDEV_QUEUE_SIZE; i++) {
		const uint8_t *e = r + VIF_HDR_SIZE + i * VIF_DESC_SIZE;

		v->inflight[i] = e[VIF_DESC_INFLIGHT];
		v->next[i] = vif_u16(e + VIF_DESC_NEXT);
	}
}

/* GET_INFLIGHT_FD's region: whole queue regions for every queue, inside a memfd that
 * cannot shrink under the mapping (a later access would be SIGBUS). Keeps fd on
 * success. Called before the sandbox. */
int vif_map(struct vdev *d, int fd, uint64_t size, uint64_t offset)
{
	uint64_t need = VIF_HDR_SIZE + (uint64_t)VIF_DESC_SIZE * VDEV_QUEUE_SIZE;
	unsigned nq = vdev_nqueues(d);
	struct stat st;
	int seals;
	void *p;

	if (!size || size > VIF_MAX_SIZE || offset % VIF_PAGE || offset > VIF_MAX_SIZE ||
	    size / nq < need || fstat(fd, &st) || (uint64_t)st.st_size < offset + size)
		return -EINVAL;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (!(seals & F_SEAL_SHRINK) && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0))
		return -EPERM;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (p == MAP_FAILED)
		return -errno;
	d->inflight = (struct vdev_inflight){ .fd = fd, .map = p, .size = size,
					      .offset = offset, .stride = size / nq };
	return 0;
}

/* Where each started ring's server must resume: the guest's used index plus the
 * chains the dead server took and did not complete (those it resubmits). The last
 * completion batch may be published in the used ring without being recorded yet
 * (used_idx behind): its heads are done, whatever their flags say. *replayed is the
 * number of chains to be resubmitted. -EIO: the region cannot be right. */
int vif_bases(struct vdev *d, uint16_t *base, unsigned *replayed, const char **why)
{
	*replayed = 0;
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];
		struct vif_queue v;
		bool done[VDEV_QUEUE_SIZE] = { false };
		const uint16_t *usedp;
		uint16_t used, batch, h;
		unsigned n = 0;

		base[i] = 0;
		if (!q->started)
			continue;
		usedp = mon_gpa(d->m, q->device + 2, sizeof(*usedp));
		if (!usedp) {
			*why = "the used ring is not in RAM";
			return -EIO;
		}
		used = __atomic_load_n(usedp, __ATOMIC_ACQUIRE);
		base[i] = used;
		vif_read(d, i, &v);
		if (!v.version)
			continue;                  /* the server never started this ring */
		if (v.desc_num != VDEV_QUEUE_SIZE) {
			*why = "the inflight region is laid out for another queue size";
			return -EIO;
		}
		for (unsigned k = 0; k < VDEV_QUEUE_SIZE; k++)
			n += v.inflight[k] != 0;
		if (!n)
			continue;
		batch = used - v.used_idx;
		if (batch > q->size) {
			*why = "the inflight region's last batch is longer than the ring";
			return -EIO;
		}
		for (h = v.batch_head; batch; batch--, h = v.next[h]) {
			if (h >= q->size) {
				*why = "the inflight region's last batch leaves the ring";
				return -EIO;
			}
			done[h] = true;
		}
		n = 0;
		for (unsigned k = 0; k < VDEV_QUEUE_SIZE; k++) {
			if (!v.inflight[k] || done[k])
				continue;
			if (k >= q->size) {
				*why = "a head in flight is beyond the ring";
				return -EIO;
			}
			n++;
		}
		if (n > q->size) {
			*why = "more chains in flight than the ring holds";
			return -EIO;
		}
		base[i] = used + n;
		*replayed += n;
	}
	return 0;
}

/* A guest reset: every request of the old rings is forgotten; a region of version 0 is
 * a fresh one to the next server. */
void vif_clear(struct vdev *d)
{
	if (d->inflight.map)
		memset(d->inflight.map, 0, d->inflight.size);
}

void vif_destroy(struct vdev *d)
{
	if (d->inflight.map)
		munmap(d->inflight.map, d->inflight.size);
	if (d->inflight.fd >= 0)
		close(d->inflight.fd);
	d->inflight = (struct vdev_inflight){ .fd = -1 };
}
