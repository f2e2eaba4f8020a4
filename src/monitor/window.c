/*
 * Window mode: the I/O server's memory table is one per-device window memfd and never
 * guest RAM. The monitor serves the guest's rings itself (on the I/O thread): it pops a
 * guest chain (checked by vring_pop), copies its driver-readable bytes into window
 * buffers from the constant-time allocator, posts a shadow chain and kicks the server.
 * On completion it checks the used element (an outstanding id, a length within that
 * chain's writable bytes), copies the chain's writable window buffers back into the
 * guest's writable buffers, pushes the guest's used ring and interrupts the guest. Whatever the server
 * writes, guest memory changes only inside buffers the guest offered for writing.
 * When the server is restarted, every chain it had not completed is posted again, in
 * its original order, on fresh shadow rings (win_resume).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "monitor/shadow.h"
#include "monitor/virtio.h"
#include "monitor/window_alloc.h"

#define WIN_POOL_SIZE    (4u << 20)     /* buffer space per device */
#define WIN_MIN_SHIFT    6              /* 64-byte blocks ... */
#define WIN_MAX_SHIFT    20             /* ... to 1 MiB */
#define WIN_RING_STRIDE  0x3000         /* per queue: descriptors, avail, used: a page each */
#define WIN_RING_SETS    2              /* a restarted server gets the other set */
#define WIN_POOL_ALIGN   0x10000
#define WIN_MAX_BUFS     48             /* shadow buffers per request */
#define WIN_SPIN_NS      50000          /* the I/O thread polls this long before sleeping */

struct win_req {
	struct vring_chain chain;       /* the guest's chain: host pointers into guest RAM */
	uint64_t seq;                   /* posting order, kept when posted again */
	uint16_t nbuf;
	struct shadow_buf buf[WIN_MAX_BUFS];
};

struct win_queue {
	struct vdev_queue *q;
	struct vring guest;
	struct shadow_ring sh;
	struct win_req *req;            /* VDEV_QUEUE_SIZE entries */
	int16_t head_req[SHADOW_MAX_SIZE];   /* shadow head -> request, -1: not outstanding */
	uint16_t free_req[VDEV_QUEUE_SIZE];
	uint16_t nfree_req;
	int stash;                      /* popped, waiting for window space; -1: none */
	uint64_t next_seq;
	bool active, broken;
};

struct win {
	int fd;
	uint8_t *base;
	uint64_t size, pool_off;
	unsigned ring_set;              /* which set of shadow rings the server has */
	struct walloc alloc;
	struct win_queue wq[VDEV_MAX_QUEUES];
};

static void *win_translate_guest(void *opaque, uint64_t addr, uint64_t len, bool write)
{
	return mon_gpa(opaque, addr, len);
}

static void win_queue_reset(struct win_queue *wq)
{
	wq->active = wq->broken = false;
	wq->stash = -1;
	for (unsigned i = 0; i < SHADOW_MAX_SIZE; i++)
		wq->head_req[i] = -1;
	for (unsigned i = 0; i < VDEV_QUEUE_SIZE; i++)
		wq->free_req[i] = VDEV_QUEUE_SIZE - 1 - i;
	wq->nfree_req = VDEV_QUEUE_SIZE;
}

/* The server faulted or the guest's ring is corrupt: this queue stops, the device
 * needs a reset. */
static void win_break(struct win_queue *wq, const char *cause, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void win_break(struct win_queue *wq, const char *cause, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	wq->broken = true;
	vdev_needs_reset(wq->q->d, cause, "\"queue\":%u,%s", wq->q->index, detail);
}

static void win_free_bufs(struct win *w, struct win_req *r)
{
	for (unsigned i = 0; i < r->nbuf; i++)
		walloc_free(&w->alloc, r->buf[i].off - w->pool_off);
	r->nbuf = 0;
}

/* The next piece of a part of `left` bytes: a whole block, unless rounding up would
 * waste more than a quarter of it; then the largest block that fits. */
static uint64_t win_piece(const struct walloc *a, uint64_t left, uint64_t *block)
{
	uint64_t max = walloc_max_block(a), b, p;

	if (left >= max) {
		*block = max;
		return max;
	}
	b = walloc_block_size(a, left);
	if (b == walloc_block_size(a, 0) || (b - left) * 4 <= left) {
		*block = b;
		return left;
	}
	for (p = b; p > left; p >>= 1)
		;
	*block = p;
	return p;
}

/* Window buffers for the chain's readable then writable bytes; the readable ones are
 * filled. -ENOMEM: not now; -E2BIG: never (bigger than the window). */
static int win_prepare(struct win *w, struct win_req *r)
{
	const struct vring_chain *c = &r->chain;
	uint64_t part[2] = { c->readable, c->writable }, skip = 0;

	r->nbuf = 0;
	if (c->readable + c->writable > WIN_POOL_SIZE)
		return -E2BIG;
	for (int k = 0; k < 2; k++) {
		for (uint64_t left = part[k]; left; ) {
			uint64_t block, len = win_piece(&w->alloc, left, &block), off;

			if (r->nbuf == WIN_MAX_BUFS) {
				win_free_bufs(w, r);
				return -E2BIG;
			}
			if (walloc_alloc(&w->alloc, block, &off)) {
				win_free_bufs(w, r);
				return -ENOMEM;
			}
			r->buf[r->nbuf++] = (struct shadow_buf){ w->pool_off + off, len, k == 1 };
			left -= len;
		}
	}
	for (unsigned i = 0; i < r->nbuf && !r->buf[i].write; i++) {
		vring_copy_from(c, skip, w->base + r->buf[i].off, r->buf[i].len);
		skip += r->buf[i].len;
	}
	return 0;
}

/* Takes guest chains while there is room; returns how many were posted. */
static unsigned win_submit(struct win *w, struct win_queue *wq, bool *pushed)
{
	unsigned posted = 0;

	while (!wq->broken) {
		int ri = wq->stash;
		struct win_req *r;
		enum vring_error e;
		uint16_t head;
		int ret;

		if (ri < 0) {
			if (!wq->nfree_req)
				break;
			ri = wq->free_req[wq->nfree_req - 1];
			e = vring_pop(&wq->guest, &wq->req[ri].chain);
			if (e == VRING_EMPTY)
				break;
			if (e != VRING_OK) {
				win_break(wq, "guest", "\"reason\":\"%s\"", vring_error_name(e));
				break;
			}
			wq->nfree_req--;
		}
		wq->stash = -1;
		r = &wq->req[ri];
		if (!r->chain.readable && !r->chain.writable) {
			vring_push(&wq->guest, r->chain.head, 0);    /* nothing to carry */
			wq->free_req[wq->nfree_req++] = ri;
			*pushed = true;
			continue;
		}
		ret = win_prepare(w, r);
		if (!ret && shadow_post(&wq->sh, r->buf, r->nbuf, &head)) {
			win_free_bufs(w, r);
			ret = -ENOMEM;
		}
		if (ret == -ENOMEM && wq->sh.inflight) {
			wq->stash = ri;              /* room comes back with completions */
			break;
		}
		if (ret) {
			win_break(wq, "guest", "\"reason\":\"request of %llu bytes larger than the "
				  "window\"", (unsigned long long)(r->chain.readable + r->chain.writable));
			break;
		}
		wq->head_req[head] = ri;
		r->seq = wq->next_seq++;
		posted++;
	}
	return posted;
}

/* Validates and completes what the server used; returns how many. */
static unsigned win_reap(struct win *w, struct win_queue *wq)
{
	unsigned n = 0;
	uint16_t id;
	uint32_t len;
	int ret;

	while (!wq->broken && (ret = shadow_used(&wq->sh, &id, &len)) != 0) {
		struct win_req *r;
		uint64_t done = 0;

		if (ret < 0) {
			win_break(wq, "server", "\"reason\":\"used index ran ahead\"");
			break;
		}
		if (id >= wq->sh.num || wq->head_req[id] < 0) {
			win_break(wq, "server", "\"reason\":\"used id %u is not outstanding\"", id);
			break;
		}
		r = &wq->req[wq->head_req[id]];
		if (len > r->chain.writable) {
			win_break(wq, "server", "\"reason\":\"used length %u exceeds the %llu "
				  "writable bytes\"", len, (unsigned long long)r->chain.writable);
			break;
		}
		/* The whole writable area goes back, not only the first len bytes: servers
		 * differ on len when they write just the status byte of a failed blk read.
		 * It holds nothing but this device's own data. */
		for (unsigned i = 0; i < r->nbuf; i++) {
			if (!r->buf[i].write)
				continue;
			vring_copy_to(&r->chain, done, w->base + r->buf[i].off, r->buf[i].len);
			done += r->buf[i].len;
		}
		vring_push(&wq->guest, r->chain.head, len);
		win_free_bufs(w, r);
		shadow_free(&wq->sh, id);
		wq->free_req[wq->nfree_req++] = wq->head_req[id];
		wq->head_req[id] = -1;
		n++;
	}
	return n;
}

static bool win_guest_pending(const struct win_queue *wq)
{
	return *(const volatile uint16_t *)&wq->guest.avail->idx != wq->guest.last_avail;
}

/* An eventfd's count, consumed; nothing pending (EAGAIN) is fine. */
static void win_drain(int fd)
{
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof(n));

	(void)r;
}

/* Moves everything that can move, then re-arms both notifications and checks once
 * more (either side may have added work meanwhile). Returns whether it did anything. */
static bool win_queue_run(struct win *w, struct win_queue *wq)
{
	struct vdev *d = wq->q->d;
	bool pushed = false, any = false;
	/* Paused (the server is being restarted): completions it made before it died
	 * still count; new chains wait in the guest's ring. */
	bool serving = d->conn == VDEV_CONN_UP && d->srv_rings;

	if (!wq->active || wq->broken)
		return false;
	for (;;) {
		unsigned reaped = win_reap(w, wq);
		unsigned posted = serving ? win_submit(w, wq, &pushed) : 0;

		pushed |= reaped > 0;
		if (posted && shadow_kick_needed(&wq->sh)) {
			uint64_t one = 1;

			if (write(wq->q->srv_kick_fd, &one, sizeof(one)) < 0)
				win_break(wq, "server", "\"reason\":\"cannot kick\"");
		}
		if (reaped || posted) {
			any = true;
			continue;
		}
		vring_set_notify(&wq->guest, true);
		shadow_want_calls(&wq->sh, true);
		if (wq->broken || (!shadow_has_used(&wq->sh) &&
				   (!serving || wq->stash >= 0 || !win_guest_pending(wq))))
			break;
	}
	if (pushed && vring_need_notify(&wq->guest))
		vdev_irq_queue(wq->q->d, wq->q->index);
	return any;
}

static void win_event(struct iot_source *s, uint32_t events)
{
	struct vdev_queue *q = s->opaque;
	struct vdev *d = q->d;

	win_drain(s->fd);
	pthread_mutex_lock(&d->lock);
	if (q->wq)
		win_queue_run(d->win, q->wq);
	pthread_mutex_unlock(&d->lock);
}

/* The I/O thread's spin: look at every active queue without waiting for an event. */
static bool win_poll(void *opaque)
{
	struct vdev *d = opaque;
	bool work = false;

	if (pthread_mutex_trylock(&d->lock))
		return false;                /* the vCPU thread is at it (maybe waiting on the
					      * server): not work of ours */
	for (unsigned i = 0; i < vdev_nqueues(d); i++)
		if (d->q[i].wq && d->q[i].wq->active)
			work |= win_queue_run(d->win, d->q[i].wq);
	pthread_mutex_unlock(&d->lock);
	return work;
}

int win_create(struct vdev *d)
{
	struct win *w = calloc(1, sizeof(*w));
	char name[64];
	int ret;

	if (!w)
		return -ENOMEM;
	d->win = w;
	w->fd = -1;
	w->pool_off = (WIN_RING_SETS * VDEV_MAX_QUEUES * WIN_RING_STRIDE + WIN_POOL_ALIGN - 1) &
		      ~(uint64_t)(WIN_POOL_ALIGN - 1);
	w->size = w->pool_off + WIN_POOL_SIZE;
	snprintf(name, sizeof(name), "bulkhead:%s:window", d->name);
	w->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (w->fd < 0)
		return -errno;
	if (ftruncate(w->fd, w->size) < 0 ||
	    fcntl(w->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	w->base = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	if (w->base == MAP_FAILED) {
		w->base = NULL;
		return -errno;
	}
	ret = walloc_init(&w->alloc, WIN_POOL_SIZE, WIN_MIN_SHIFT, WIN_MAX_SHIFT);
	if (ret)
		return ret;
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];
		struct win_queue *wq = &w->wq[i];

		wq->q = q;
		wq->req = calloc(VDEV_QUEUE_SIZE, sizeof(*wq->req));
		if (!wq->req)
			return -ENOMEM;
		win_queue_reset(wq);
		q->wq = wq;
		q->kick_src = (struct iot_source){ q->kick_fd, win_event, q };
		q->call_src = (struct iot_source){ q->srv_call_fd, win_event, q };
	}
	return 0;
}

void win_destroy(struct vdev *d)
{
	struct win *w = d->win;

	if (!w)
		return;
	for (unsigned i = 0; i < VDEV_MAX_QUEUES; i++)
		free(w->wq[i].req);
	walloc_destroy(&w->alloc);
	if (w->base)
		munmap(w->base, w->size);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	d->win = NULL;
}

int win_watch(struct vdev *d)
{
	int ret = 0;

	for (unsigned i = 0; i < vdev_nqueues(d) && !ret; i++) {
		ret = iot_add(&d->m->iot, &d->q[i].kick_src, EPOLLIN);
		if (!ret)
			ret = iot_add(&d->m->iot, &d->q[i].call_src, EPOLLIN);
	}
	if (!ret)
		ret = iot_add_poller(&d->m->iot, win_poll, d);
	d->m->iot.spin_ns = WIN_SPIN_NS;
	return ret;
}

static uint8_t *win_ring(const struct win *w, unsigned qi)
{
	return w->base + (w->ring_set * VDEV_MAX_QUEUES + qi) * WIN_RING_STRIDE;
}

/* What the server is given: VERSION_1, the device features the guest took, and
 * EVENT_IDX on the shadow rings when the server has it. */
static uint64_t win_features(const struct vdev *d)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (d->guest_features & d->type->features);

	if (d->backend_features & (1ULL << VIRTIO_F_EVENT_IDX))
		f |= 1ULL << VIRTIO_F_EVENT_IDX;
	return f;
}

static void win_shadow_init(struct vdev *d, struct win_queue *wq, unsigned qi)
{
	uint8_t *ring = win_ring(d->win, qi);

	shadow_init(&wq->sh, ring, ring + 0x1000, ring + 0x2000, SHADOW_MAX_SIZE,
		    d->backend_features & (1ULL << VIRTIO_F_EVENT_IDX));
}

/* DRIVER_OK, the monitor's side: the guest's rings (checked) and fresh shadow rings. */
int win_start(struct vdev *d, const char **why)
{
	struct win *w = d->win;

	walloc_reset(&w->alloc);
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];
		struct win_queue *wq = &w->wq[i];

		win_queue_reset(wq);
		if (!q->enabled)
			continue;
		if (vring_init(&wq->guest, q->size, q->desc, q->driver, q->device,
			       win_translate_guest, d->m)) {
			*why = "a ring is not in RAM or misaligned";
			return -EINVAL;
		}
		wq->guest.event_idx = d->guest_features & (1ULL << VIRTIO_F_EVENT_IDX);
		wq->guest.indirect = d->guest_features & (1ULL << VIRTIO_F_INDIRECT_DESC);
		win_shadow_init(d, wq, i);
		wq->active = true;
	}
	return 0;
}

/* The server's side: the window as its only memory, the shadow rings from where they
 * stand (avail index 0: they are fresh, or hold the chains posted again). */
int win_start_server(struct vdev *d, const char **why)
{
	struct win *w = d->win;
	struct vhf_ring rings[VDEV_MAX_QUEUES] = { 0 };
	struct vhf_mem mem = { .nregions = 1, .fd = { w->fd } };
	int ret;

	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vdev_queue *q = &d->q[i];
		uint8_t *ring = win_ring(w, i);

		if (!w->wq[i].active)
			continue;
		rings[i] = (struct vhf_ring){
			.num = SHADOW_MAX_SIZE, .desc = (uintptr_t)ring,
			.avail = (uintptr_t)ring + 0x1000, .used = (uintptr_t)ring + 0x2000,
			.kick_fd = q->srv_kick_fd, .call_fd = q->srv_call_fd,
			.err_fd = q->err_fd };
	}
	mem.r[0] = (struct vu_region){ 0, w->size, (uintptr_t)w->base, 0 };
	ret = vhf_start(d, win_features(d), &mem, rings, why);
	if (ret)
		return ret;
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		uint64_t one = 1;

		if (!w->wq[i].active)
			continue;
		/* Work the guest queued meanwhile is picked up by the I/O thread; a server
		 * given chains already posted starts on its kick. */
		if (write(d->q[i].kick_fd, &one, sizeof(one)) < 0 ||
		    (w->wq[i].sh.avail_idx && write(d->q[i].srv_kick_fd, &one, sizeof(one)) < 0))
			return -errno;
	}
	return 0;
}

static int win_by_seq(const void *a, const void *b, void *opaque)
{
	const struct win_req *req = opaque;
	uint64_t x = req[*(const uint16_t *)a].seq, y = req[*(const uint16_t *)b].seq;

	return x < y ? -1 : x > y;
}

/* Every chain the dead server had not completed goes on the fresh shadow ring again,
 * in the order it was first posted, its readable bytes copied again from the guest
 * (the dead server may have scribbled on the window). Returns how many. */
static unsigned win_repost(struct win *w, struct win_queue *wq, const uint16_t *ri, unsigned n)
{
	uint16_t order[SHADOW_MAX_SIZE];

	memcpy(order, ri, n * sizeof(order[0]));
	qsort_r(order, n, sizeof(order[0]), win_by_seq, wq->req);
	for (unsigned k = 0; k < n; k++) {
		struct win_req *r = &wq->req[order[k]];
		uint64_t skip = 0;
		uint16_t head;

		for (unsigned i = 0; i < r->nbuf && !r->buf[i].write; i++) {
			vring_copy_from(&r->chain, skip, w->base + r->buf[i].off, r->buf[i].len);
			skip += r->buf[i].len;
		}
		/* Cannot fail: these chains fitted one ring of this size together before. */
		if (shadow_post(&wq->sh, r->buf, r->nbuf, &head)) {
			win_break(wq, "server", "\"reason\":\"chains to post again do not fit\"");
			return k;
		}
		wq->head_req[head] = order[k];
	}
	shadow_kick_needed(&wq->sh);          /* publishes the index; the start kicks */
	return n;
}

/* A new connection to a restarted server (device lock held, the device started): the
 * completions the dead server published still count, then fresh shadow rings in the
 * other set carry every chain still outstanding, and the server starts on them. */
int win_resume(struct vdev *d, unsigned *replayed, const char **why)
{
	struct win *w = d->win;
	uint16_t out[VDEV_MAX_QUEUES][SHADOW_MAX_SIZE];
	unsigned nout[VDEV_MAX_QUEUES] = { 0 };
	int ret;

	*replayed = 0;
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct win_queue *wq = &w->wq[i];

		if (!wq->active)
			continue;
		if (win_reap(w, wq) && vring_need_notify(&wq->guest))
			vdev_irq_queue(d, i);
		if (wq->broken) {
			*why = "the dead server left an invalid used ring";
			return -EIO;
		}
		for (unsigned h = 0; h < SHADOW_MAX_SIZE; h++) {
			if (wq->head_req[h] >= 0)
				out[i][nout[i]++] = wq->head_req[h];
			wq->head_req[h] = -1;
		}
	}
	w->ring_set = (w->ring_set + 1) % WIN_RING_SETS;
	ret = vdev_renew_fds(d);
	if (ret) {
		*why = "cannot create eventfds for the new server";
		return ret;
	}
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct win_queue *wq = &w->wq[i];

		if (!wq->active)
			continue;
		win_shadow_init(d, wq, i);
		*replayed += win_repost(w, wq, out[i], nout[i]);
		if (wq->broken) {
			*why = "chains to post again do not fit the shadow ring";
			return -EIO;
		}
	}
	return win_start_server(d, why);
}

/* Device reset: the server stops its rings, and everything in flight is forgotten
 * (late completions can only land in the window). */
void win_stop(struct vdev *d)
{
	struct win *w = d->win;

	vhf_stop(d);                          /* nothing to stop while paused */
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		win_queue_reset(&w->wq[i]);
		memset(&w->wq[i].guest, 0, sizeof(w->wq[i].guest));
		win_drain(d->q[i].srv_call_fd);
	}
	walloc_reset(&w->alloc);
}
