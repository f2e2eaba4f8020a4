/*
 * The inflight region of vhost-user's INFLIGHT_SHMFD for split rings, as the
 * specification lays it out: made (a sealed memfd) or mapped (a restarted server's
 * inheritance), marked when chains are taken and completed in an order that leaves it
 * right whenever the server dies, and read back when a ring starts again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioserver/vu_inflight.h"

/* The region is shared with the frontend and outlives us: every word is read once and
 * written with the ordering a process killed at any instant needs (stores land in
 * program order; the compiler must not reorder them). */
#define VI_READ(x)          __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define VI_WRITE(x, v)      __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

size_t vu_inflight_queue_bytes(uint16_t queue_size)
{
	size_t n = sizeof(struct vu_inflight_queue) +
		   sizeof(struct vu_inflight_desc) * (size_t)queue_size;

	return (n + VU_INFLIGHT_ALIGN - 1) & ~(size_t)(VU_INFLIGHT_ALIGN - 1);
}

static bool vu_inflight_valid_shape(uint16_t num_queues, uint16_t queue_size)
{
	return num_queues && queue_size && queue_size <= VU_INFLIGHT_MAX_SIZE;
}

struct vu_inflight_queue *vu_inflight_queue(const struct vu_inflight_map *m, unsigned index)
{
	if (!m->map || index >= m->num_queues)
		return NULL;
	return (struct vu_inflight_queue *)(m->base + index * m->queue_bytes);
}

void vu_inflight_unmap(struct vu_inflight_map *m)
{
	if (m->map)
		munmap(m->map, m->map_len);
	memset(m, 0, sizeof(*m));
}

void vu_inflight_forget(struct vu_inflight_queue *q, uint16_t desc_num)
{
	memset(q->desc, 0, sizeof(q->desc[0]) * (size_t)desc_num);
	VI_WRITE(q->last_batch_head, 0);
	VI_WRITE(q->used_idx, 0);
}

/* Each queue's header: a fresh one (version 0) is made ours; one already in use must
 * have been made for this queue size, by this layout. */
static int vu_inflight_check_queues(struct vu_inflight_map *m)
{
	for (unsigned i = 0; i < m->num_queues; i++) {
		struct vu_inflight_queue *q = (void *)(m->base + i * m->queue_bytes);
		uint16_t version = VI_READ(q->version);

		if (version == 0) {
			memset(q, 0, m->queue_bytes);
			q->desc_num = m->queue_size;
			VI_WRITE(q->version, VU_INFLIGHT_VERSION);
		} else if (version != VU_INFLIGHT_VERSION ||
			   VI_READ(q->desc_num) != m->queue_size) {
			return -EINVAL;
		}
	}
	return 0;
}

int vu_inflight_map_fd(struct vu_inflight_map *m, int fd, uint64_t size, uint64_t offset,
		       uint16_t num_queues, uint16_t queue_size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = offset & ~(page - 1), delta = offset - start;
	struct vu_inflight_map next = { 0 };
	struct stat st;
	void *p;
	int rc;

	if (!vu_inflight_valid_shape(num_queues, queue_size))
		return -EINVAL;
	next.num_queues = num_queues;
	next.queue_size = queue_size;
	next.queue_bytes = vu_inflight_queue_bytes(queue_size);
	if (size < num_queues * next.queue_bytes || offset + size < offset ||
	    size + delta < size)
		return -EINVAL;
	/* Mapping past the end of the file would raise SIGBUS on the first touch. */
	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || offset + size > (uint64_t)st.st_size)
		return -EINVAL;
	p = mmap(NULL, size + delta, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (p == MAP_FAILED)
		return -errno;
	next.map = p;
	next.map_len = size + delta;
	next.base = (uint8_t *)p + delta;
	rc = vu_inflight_check_queues(&next);
	if (rc) {
		vu_inflight_unmap(&next);
		return rc;
	}
	vu_inflight_unmap(m);
	*m = next;
	return 0;
}

int vu_inflight_create(struct vu_inflight_map *m, uint16_t num_queues, uint16_t queue_size,
		       int *fd, uint64_t *size)
{
	uint64_t bytes = num_queues * vu_inflight_queue_bytes(queue_size);
	int f, rc;

	if (!vu_inflight_valid_shape(num_queues, queue_size))
		return -EINVAL;
	f = memfd_create("bulkhead-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return -errno;
	/* fallocate sizes it (zeroed): no ftruncate in the sandbox. The seals keep anyone
	 * from shrinking it under a server's mapping. */
	if (fallocate(f, 0, 0, (off_t)bytes) ||
	    fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		rc = -errno;
		close(f);
		return rc;
	}
	rc = vu_inflight_map_fd(m, f, bytes, 0, num_queues, queue_size);
	if (rc) {
		close(f);
		return rc;
	}
	*fd = f;
	*size = bytes;
	return 0;
}

void vu_inflight_take(struct vu_inflight_queue *q, uint16_t head, uint64_t counter)
{
	/* The counter first: an entry marked in flight always has its own. */
	VI_WRITE(q->desc[head].counter, counter);
	VI_WRITE(q->desc[head].inflight, 1);
}

void vu_inflight_complete_begin(struct vu_inflight_queue *q, uint16_t *batch_head,
				const struct virtq_used_elem *e, unsigned n)
{
	/* Each head links to the one before it (the first to the previous batch), and the
	 * last becomes last_batch_head: recovery walks the batch back from there. All of
	 * it before the used index publishes the batch; until then the region's used_idx
	 * equals the used ring's, and the links are not looked at. */
	for (unsigned i = 0; i < n; i++) {
		VI_WRITE(q->desc[e[i].id].next, *batch_head);
		*batch_head = (uint16_t)e[i].id;
	}
	VI_WRITE(q->last_batch_head, *batch_head);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void vu_inflight_complete_end(struct vu_inflight_queue *q, const struct virtq_used_elem *e,
			      unsigned n, uint16_t used_idx)
{
	/* The used index is out: only now are the heads no longer in flight, and only once
	 * that is recorded does used_idx say the batch is settled. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (unsigned i = 0; i < n; i++)
		VI_WRITE(q->desc[e[i].id].inflight, 0);
	VI_WRITE(q->used_idx, used_idx);
}

static bool vu_inflight_before(const struct vu_inflight_head *x,
			       const struct vu_inflight_head *y)
{
	return x->counter != y->counter ? x->counter < y->counter : x->head < y->head;
}

static void vu_inflight_sift(struct vu_inflight_head *h, unsigned root, unsigned n)
{
	for (unsigned child; (child = 2 * root + 1) < n; root = child) {
		struct vu_inflight_head t;

		if (child + 1 < n && vu_inflight_before(&h[child], &h[child + 1]))
			child++;
		if (!vu_inflight_before(&h[root], &h[child]))
			return;
		t = h[root];
		h[root] = h[child];
		h[child] = t;
	}
}

/* Pop order: a heap sort, since glibc's qsort may ask sysinfo() (not in the sandbox)
 * how much memory it may borrow. */
static void vu_inflight_sort(struct vu_inflight_head *h, unsigned n)
{
	for (unsigned i = n / 2; i-- > 0;)
		vu_inflight_sift(h, i, n);
	for (unsigned end = n; end-- > 1;) {
		struct vu_inflight_head t = h[0];

		h[0] = h[end];
		h[end] = t;
		vu_inflight_sift(h, 0, end);
	}
}

/* A frontend may have zeroed the region while the rings were stopped (a guest reset):
 * it is made a region again, or a later server would take it for a fresh one and wipe
 * what this one records from now on. */
static int vu_inflight_adopt(struct vu_inflight_queue *q, uint16_t desc_num)
{
	switch (VI_READ(q->version)) {
	case 0:
		VI_WRITE(q->features, 0);
		VI_WRITE(q->desc_num, desc_num);
		VI_WRITE(q->version, VU_INFLIGHT_VERSION);
		return 0;
	case VU_INFLIGHT_VERSION:
		return 0;
	default:
		return -EINVAL;
	}
}

/* The last batch: the used ring's index moved past what the region recorded, so the
 * batch's heads were completed to the driver although their flags may still be set. */
static int vu_inflight_settle(struct vu_inflight_queue *q, uint16_t num, uint16_t batch,
			      uint16_t head)
{
	if (batch > num)
		return -EINVAL;
	for (uint16_t k = 0; k < batch; k++) {
		if (head >= num)
			return -EINVAL;
		VI_WRITE(q->desc[head].inflight, 0);
		head = VI_READ(q->desc[head].next);
	}
	return 0;
}

int vu_inflight_recover(struct vu_inflight_queue *q, uint16_t desc_num, uint16_t num,
			uint16_t used_idx, struct vu_inflight_head *out, unsigned *n,
			uint64_t *next_counter, uint16_t *batch_head)
{
	uint16_t recorded = VI_READ(q->used_idx), head = VI_READ(q->last_batch_head);
	uint64_t top = 0;
	bool any = false;
	int rc;

	*n = 0;
	*next_counter = 0;
	*batch_head = head;
	if (num > desc_num)
		return -EINVAL;
	rc = vu_inflight_adopt(q, desc_num);
	if (rc)
		return rc;
	for (unsigned i = 0; i < desc_num; i++)
		if (VI_READ(q->desc[i].inflight)) {
			if (i >= num)
				return -EINVAL;
			any = true;
		}
	/* Nothing in flight: whatever the used index says is settled (a device reset may
	 * also have started the ring again from 0). */
	if (any && recorded != used_idx) {
		rc = vu_inflight_settle(q, num, (uint16_t)(used_idx - recorded), head);
		if (rc)
			return rc;
	}
	VI_WRITE(q->used_idx, used_idx);
	for (unsigned i = 0; i < num; i++) {
		uint64_t c;

		if (!VI_READ(q->desc[i].inflight))
			continue;
		c = VI_READ(q->desc[i].counter);
		if (c == UINT64_MAX)
			return -EINVAL;
		out[(*n)++] = (struct vu_inflight_head){ c, (uint16_t)i };
		if (c >= top)
			top = c + 1;
	}
	vu_inflight_sort(out, *n);
	*next_counter = top;
	return 0;
}
