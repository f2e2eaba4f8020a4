/*
 * Inflight I/O tracking (vhost-user VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, split rings):
 * a shared region, kept by the frontend across server restarts, that says which chains a
 * server took and has not completed, so that the next server can resubmit exactly those.
 * The region logic only: no device, no ring; vu_queue.c and vu_msg.c drive it.
 */
#ifndef BH_IOSERVER_VU_INFLIGHT_H
#define BH_IOSERVER_VU_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "bulkhead/virtio.h"

#define VU_INFLIGHT_VERSION    1        /* 0: a region nobody has initialised yet */
#define VU_INFLIGHT_ALIGN      64       /* each queue's region starts on a cache line */
#define VU_INFLIGHT_MAX_SIZE   32768    /* descriptors per queue: the virtio maximum */

/* The state of one descriptor (the specification's DescStateSplit); only heads count. */
struct vu_inflight_desc {
	uint8_t inflight;                 /* taken from the avail ring, not yet used */
	uint8_t padding[5];
	uint16_t next;                    /* the previous batch head (completion list) */
	uint64_t counter;                 /* pop order */
};

/* One queue's region (QueueRegionSplit): a header, then desc_num descriptor states. */
struct vu_inflight_queue {
	uint64_t features;                /* 0 */
	uint16_t version;                 /* VU_INFLIGHT_VERSION */
	uint16_t desc_num;                /* the queue size the region was made for */
	uint16_t last_batch_head;         /* head of the last completed batch */
	uint16_t used_idx;                /* used->idx once that batch was fully recorded */
	struct vu_inflight_desc desc[];
};

_Static_assert(sizeof(struct vu_inflight_desc) == 16, "DescStateSplit layout");
_Static_assert(sizeof(struct vu_inflight_queue) == 16, "QueueRegionSplit header layout");

/* A device's region, mapped: num_queues queue regions of queue_bytes each. */
struct vu_inflight_map {
	void *map;                        /* the mmap, page aligned; NULL: no region */
	size_t map_len;
	uint8_t *base;                    /* queue 0's region */
	uint16_t num_queues, queue_size;
	size_t queue_bytes;
	uint64_t counter;                 /* the next pop's counter (all queues) */
};

/* A head to resubmit, and where it stood in pop order. */
struct vu_inflight_head {
	uint64_t counter;
	uint16_t head;
};

/* Bytes of one queue's region for queue_size descriptors (cache-line rounded). */
size_t vu_inflight_queue_bytes(uint16_t queue_size);

/* GET_INFLIGHT_FD: a new sealed memfd (size fixed for good), zeroed, every queue region
 * initialised, mapped into m. *fd is for the reply (the caller closes it once sent);
 * *size is the region's length. Returns 0 or -errno. */
int vu_inflight_create(struct vu_inflight_map *m, uint16_t num_queues, uint16_t queue_size,
		       int *fd, uint64_t *size);

/* SET_INFLIGHT_FD: maps size bytes at offset of fd, which must hold them; queue regions
 * never initialised (version 0) are initialised, those of another layout refused.
 * Returns 0 or -errno (m untouched then). The caller keeps or closes fd. */
int vu_inflight_map_fd(struct vu_inflight_map *m, int fd, uint64_t size, uint64_t offset,
		       uint16_t num_queues, uint16_t queue_size);

void vu_inflight_unmap(struct vu_inflight_map *m);

/* Queue index's region, or NULL when there is no region or it has no such queue. */
struct vu_inflight_queue *vu_inflight_queue(const struct vu_inflight_map *m, unsigned index);

/* Forgets every request of a queue (a device reset: the driver starts afresh). */
void vu_inflight_forget(struct vu_inflight_queue *q, uint16_t desc_num);

/* A chain was taken from the avail ring: head is in flight, the counter-th taken.
 * Called before anything of the request happens. */
void vu_inflight_take(struct vu_inflight_queue *q, uint16_t head, uint64_t counter);

/* Completing a batch of n chains (the heads in e[].id) that one store of the used
 * index publishes: before the index moves (begin: the batch linked from last_batch_head)
 * and after (end, with the new used index: the heads no longer in flight, the batch
 * settled). *batch_head is the caller's copy of last_batch_head. A server killed
 * anywhere in between leaves either the whole batch in flight (index not moved) or the
 * whole batch done (recovery settles it from last_batch_head): never a part. */
void vu_inflight_complete_begin(struct vu_inflight_queue *q, uint16_t *batch_head,
				const struct virtq_used_elem *e, unsigned n);
void vu_inflight_complete_end(struct vu_inflight_queue *q, const struct virtq_used_elem *e,
			      unsigned n, uint16_t used_idx);

/* A ring starts on a region (a restarted server, or a stopped ring started again): first
 * the last completion batch a dead server may have published without recording is
 * settled against used_idx (the used ring's index), then every head still in flight is
 * put in out (room for num entries) in pop order. desc_num is the region's queue size,
 * num the ring's (at most desc_num); *n the number of heads, *next_counter a counter
 * above all of theirs, *batch_head last_batch_head. -EINVAL when the region cannot be
 * right for this ring (a head >= num in flight, a batch longer than the ring): nothing
 * is resubmitted then. */
int vu_inflight_recover(struct vu_inflight_queue *q, uint16_t desc_num, uint16_t num,
			uint16_t used_idx, struct vu_inflight_head *out, unsigned *n,
			uint64_t *next_counter, uint16_t *batch_head);

#endif
