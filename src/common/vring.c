/*
 * The device side of a split virtqueue (virtio 1.2, 2.7): vring_pop walks one chain,
 * reading every shared word once and checking every index, length and address before
 * handing out host pointers; vring_push publishes completions; EVENT_IDX both ways.
 */
#include <errno.h>
#include <string.h>

#include "common/vring.h"

/* Shared memory is read and written through these, once per use: the compiler may not
 * re-read a value the driver could have changed meanwhile. */
#define VR_READ(x)      (*(const volatile __typeof__(x) *)&(x))
#define VR_WRITE(x, v)  (*(volatile __typeof__(x) *)&(x) = (v))
#define VR_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static const char *const vring_error_names[] = {
	[VRING_OK] = "ok",
	[VRING_EMPTY] = "empty",
	[VRING_BAD_AVAIL_IDX] = "bad_avail_idx",
	[VRING_BAD_HEAD] = "bad_head",
	[VRING_LOOP] = "loop",
	[VRING_TOO_LONG] = "too_long",
	[VRING_BAD_ADDR] = "bad_addr",
	[VRING_BAD_INDIRECT] = "bad_indirect",
	[VRING_WRITE_ORDER] = "write_order",
	[VRING_BAD_LEN] = "bad_len",
	[VRING_BAD_LAYOUT] = "bad_layout",
};

const char *vring_error_name(enum vring_error e)
{
	if ((unsigned)e < sizeof(vring_error_names) / sizeof(vring_error_names[0]))
		return vring_error_names[e];
	return "unknown";
}

size_t vring_desc_size(uint16_t num)
{
	return sizeof(struct virtq_desc) * (size_t)num;
}

size_t vring_avail_size(uint16_t num)
{
	return sizeof(struct virtq_avail) + sizeof(uint16_t) * (size_t)num + sizeof(uint16_t);
}

size_t vring_used_size(uint16_t num)
{
	return sizeof(struct virtq_used) + sizeof(struct virtq_used_elem) * (size_t)num +
	       sizeof(uint16_t);
}

/* The EVENT_IDX words sit just past the rings. */
static volatile uint16_t *vring_used_event(struct vring *vr)
{
	return &vr->avail->ring[vr->num];
}

static volatile uint16_t *vring_avail_event(struct vring *vr)
{
	return (volatile uint16_t *)&vr->used->ring[vr->num];
}

/* Translates one ring part, which must also be aligned as virtio 2.7 requires. */
static void *vring_map_part(struct vring *vr, uint64_t addr, size_t len, size_t align,
			    bool write)
{
	void *p;

	if (addr & (align - 1))
		return NULL;
	p = vr->translate(vr->opaque, addr, len, write);
	if (!p || ((uintptr_t)p & (align - 1)))
		return NULL;
	return p;
}

int vring_init(struct vring *vr, uint16_t num, uint64_t desc, uint64_t avail, uint64_t used,
	       vring_translate_fn translate, void *opaque)
{
	memset(vr, 0, sizeof(*vr));
	if (!translate || num == 0 || (num & (num - 1)) || num > VIRTQ_MAX_SIZE)
		return -EINVAL;
	vr->num = num;
	vr->translate = translate;
	vr->opaque = opaque;
	vr->desc = vring_map_part(vr, desc, vring_desc_size(num), VIRTQ_DESC_ALIGN, false);
	vr->avail = vring_map_part(vr, avail, vring_avail_size(num), VIRTQ_AVAIL_ALIGN, false);
	vr->used = vring_map_part(vr, used, vring_used_size(num), VIRTQ_USED_ALIGN, true);
	if (!vr->desc || !vr->avail || !vr->used) {
		memset(vr, 0, sizeof(*vr));
		return -EINVAL;
	}
	return 0;
}

/* One descriptor, copied out of shared memory (any alignment: indirect tables may sit
 * anywhere); the barrier keeps the compiler from going back to the original. */
static void vring_read_desc(const struct virtq_desc *table, uint32_t idx, struct virtq_desc *d)
{
	memcpy(d, (const char *)table + (size_t)idx * sizeof(*d), sizeof(*d));
	VR_COMPILER_BARRIER();
}

/* Where the walk is: the table it reads (the ring's or an indirect one), the table's
 * size, and what it has seen so far. */
struct vring_walk {
	const struct virtq_desc *table;
	uint32_t size;
	bool indirect;
	bool seen_write;
	bool too_long;          /* past VRING_MAX_IOV: walking on only to tell a loop */
	uint32_t visited;
};

/* Switches the walk to the indirect table that d points to. */
static enum vring_error vring_enter_indirect(struct vring *vr, struct vring_walk *w,
					     const struct virtq_desc *d)
{
	const void *table;

	if (!vr->indirect || w->indirect || (d->flags & VIRTQ_DESC_F_NEXT))
		return VRING_BAD_INDIRECT;
	if (d->len == 0)
		return VRING_BAD_LEN;
	if (d->len % sizeof(struct virtq_desc) ||
	    d->len / sizeof(struct virtq_desc) > VRING_MAX_INDIRECT)
		return VRING_BAD_INDIRECT;
	if (d->addr + d->len < d->addr)
		return VRING_BAD_LEN;
	table = vr->translate(vr->opaque, d->addr, d->len, false);
	if (!table)
		return VRING_BAD_ADDR;
	w->table = table;
	w->size = d->len / sizeof(struct virtq_desc);
	w->indirect = true;
	return VRING_OK;
}

/* Adds one buffer descriptor to the chain. */
static enum vring_error vring_add_buffer(struct vring *vr, struct vring_walk *w,
					 struct vring_chain *c, const struct virtq_desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	void *base = NULL;

	if (!write && w->seen_write)
		return VRING_WRITE_ORDER;
	w->seen_write |= write;
	if (d->addr + d->len < d->addr)
		return VRING_BAD_LEN;
	if (d->len == 0)
		return VRING_OK;         /* nothing to read or write: no buffer */
	base = vr->translate(vr->opaque, d->addr, d->len, write);
	if (!base)
		return VRING_BAD_ADDR;
	if (c->niov == VRING_MAX_IOV)
		w->too_long = true;
	if (w->too_long)
		return VRING_OK;
	c->iov[c->niov++] = (struct vring_iov){ base, d->len, write, d->addr };
	if (write)
		c->writable += d->len;
	else
		c->readable += d->len;
	return VRING_OK;
}

/* Walks the chain starting at head. In the ring, a chain longer than the queue size
 * can only be a loop (virtio 2.7.5.3.1). An indirect table is its own bound: Linux
 * fills one with as many entries as a request has segments, more than the queue size
 * when the queue is small (a 256-entry table in QEMU's default queue of 128), and QEMU
 * counts the same way; tables are limited to VRING_MAX_INDIRECT entries. A chain with
 * more buffers than VRING_MAX_IOV is walked to its end all the same, so that a loop in
 * a queue larger than VRING_MAX_IOV is still called a loop. */
static enum vring_error vring_walk_chain(struct vring *vr, uint16_t head,
					 struct vring_chain *c)
{
	struct vring_walk w = { .table = vr->desc, .size = vr->num };
	uint32_t idx = head;
	enum vring_error e;

	c->head = head;
	c->niov = 0;
	c->readable = c->writable = 0;
	for (;;) {
		struct virtq_desc d;

		if (++w.visited > (w.indirect ? w.size : vr->num))
			return VRING_LOOP;
		vring_read_desc(w.table, idx, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			e = vring_enter_indirect(vr, &w, &d);
			if (e != VRING_OK)
				return e;
			idx = 0;
			w.visited = 0;
			continue;
		}
		e = vring_add_buffer(vr, &w, c, &d);
		if (e != VRING_OK)
			return e;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return w.too_long ? VRING_TOO_LONG : VRING_OK;
		idx = d.next;
		if (idx >= w.size)
			return w.indirect ? VRING_BAD_INDIRECT : VRING_BAD_HEAD;
	}
}

enum vring_error vring_pop(struct vring *vr, struct vring_chain *chain)
{
	uint16_t avail_idx, head;
	enum vring_error e;

	if (!vr->num)
		return VRING_EMPTY;
	avail_idx = VR_READ(vr->avail->idx);
	if (avail_idx == vr->last_avail)
		return VRING_EMPTY;
	if ((uint16_t)(avail_idx - vr->last_avail) > vr->num)
		return VRING_BAD_AVAIL_IDX;
	/* The ring entries and descriptors were written before the index. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = VR_READ(vr->avail->ring[vr->last_avail & (vr->num - 1)]);
	if (head >= vr->num)
		return VRING_BAD_HEAD;
	e = vring_walk_chain(vr, head, chain);
	if (e != VRING_OK)
		return e;
	vr->last_avail++;
	return VRING_OK;
}

void vring_push_n(struct vring *vr, const struct virtq_used_elem *elems, unsigned n)
{
	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct virtq_used_elem *e = &vr->used->ring[vr->used_idx & (vr->num - 1)];

		VR_WRITE(e->id, elems[i].id);
		VR_WRITE(e->len, elems[i].len);
		vr->used_idx++;
	}
	/* Every element before the one index store that publishes them all. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	VR_WRITE(vr->used->idx, vr->used_idx);
}

void vring_push(struct vring *vr, uint16_t head, uint32_t len)
{
	const struct virtq_used_elem e = { head, len };

	vring_push_n(vr, &e, 1);
}

bool vring_need_notify(struct vring *vr)
{
	uint16_t old = vr->signalled_used, new_idx = vr->used_idx;
	bool notify;

	if (!vr->num)
		return false;
	/* The used index store must be visible before the driver's suppression word is
	 * read, or both sides may decide the other one will act. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (old == new_idx)
		return false;             /* nothing pushed since the last notification */
	if (vr->event_idx)
		notify = !vr->signalled_valid ||
			 vring_need_event(*vring_used_event(vr), new_idx, old);
	else
		notify = !(VR_READ(vr->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (notify) {
		vr->signalled_used = new_idx;
		vr->signalled_valid = true;
	}
	return notify;
}

void vring_set_notify(struct vring *vr, bool enable)
{
	if (!vr->num)
		return;
	if (vr->event_idx) {
		/* Disabling leaves avail_event behind: the driver kicks at most once more. */
		if (enable)
			*vring_avail_event(vr) = vr->last_avail;
	} else {
		VR_WRITE(vr->used->flags, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	/* Publish before the caller re-reads avail->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

size_t vring_walk(const struct vring_chain *c, bool write, size_t skip, size_t len,
		  vring_piece_fn fn, void *ctx)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->niov && done < len; i++) {
		const struct vring_iov *v = &c->iov[i];
		size_t n;

		if (v->write != write) {
			if (!write)
				break;                   /* readable buffers come first */
			continue;
		}
		if (skip >= v->len) {
			skip -= v->len;
			continue;
		}
		n = v->len - skip;
		if (n > len - done)
			n = len - done;
		fn(ctx, (uint8_t *)v->base + skip, n);
		done += n;
		skip = 0;
	}
	return done;
}

/* A flat buffer's cursor, for the copies. */
struct vring_flat {
	uint8_t *p;
};

static void piece_out(void *ctx, uint8_t *buf, size_t n)
{
	struct vring_flat *f = ctx;

	memcpy(f->p, buf, n);
	f->p += n;
}

static void piece_in(void *ctx, uint8_t *buf, size_t n)
{
	struct vring_flat *f = ctx;

	memcpy(buf, f->p, n);
	f->p += n;
}

size_t vring_copy_from(const struct vring_chain *c, size_t skip, void *dst, size_t len)
{
	struct vring_flat f = { dst };

	return vring_walk(c, false, skip, len, piece_out, &f);
}

size_t vring_copy_to(const struct vring_chain *c, size_t skip, const void *src, size_t len)
{
	struct vring_flat f = { (uint8_t *)src };

	return vring_walk(c, true, skip, len, piece_in, &f);
}
