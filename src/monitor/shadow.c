/*
 * The driver side of a shadow ring in a window (virtio 1.2, 2.7, as a driver): post
 * chains, publish and decide kicks (EVENT_IDX avail_event or NO_NOTIFY), read used
 * elements once each. Only the private free list decides which descriptors are free.
 */
#include <errno.h>
#include <string.h>

#include "monitor/shadow.h"

#define SH_READ(x)     (*(const volatile __typeof__(x) *)&(x))
#define SH_WRITE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

void shadow_init(struct shadow_ring *s, void *desc, void *avail, void *used, uint16_t num,
		 bool event_idx)
{
	memset(s, 0, sizeof(*s));
	s->num = num;
	s->desc = desc;
	s->avail = avail;
	s->used = used;
	s->event_idx = event_idx;
	memset(desc, 0, vring_desc_size(num));
	memset(avail, 0, vring_avail_size(num));
	memset(used, 0, vring_used_size(num));
	for (uint16_t i = 0; i < num; i++)
		s->next[i] = i + 1;
	s->free_head = 0;
	s->nfree = num;
}

int shadow_post(struct shadow_ring *s, const struct shadow_buf *b, unsigned n, uint16_t *head)
{
	uint16_t idx, h;

	if (!n || n > s->nfree)
		return -ENOSPC;
	h = idx = s->free_head;
	for (unsigned i = 0; i < n; i++) {
		struct vring_desc d = {
			.addr = b[i].off, .len = b[i].len,
			.flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			.next = i + 1 < n ? s->next[idx] : 0,
		};

		memcpy(&s->desc[idx], &d, sizeof(d));
		if (i + 1 < n)
			idx = s->next[idx];
	}
	s->free_head = s->next[idx];
	s->nfree -= n;
	s->chain_len[h] = n;
	SH_WRITE(s->avail->ring[s->avail_idx & (s->num - 1)], h);
	s->avail_idx++;
	s->inflight++;
	*head = h;
	return 0;
}

/* virtio 2.7.10: does moving the index from old to new_idx pass event? */
static bool shadow_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool shadow_kick_needed(struct shadow_ring *s)
{
	uint16_t old = s->kicked, new_idx = s->avail_idx;
	bool kick;

	if (old == new_idx)
		return false;
	/* Descriptors and ring entries before the index; the index before the
	 * suppression word is read. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	SH_WRITE(s->avail->idx, new_idx);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (s->event_idx)
		kick = shadow_need_event(SH_READ(*(uint16_t *)&s->used->ring[s->num]), new_idx, old);
	else
		kick = !(SH_READ(s->used->flags) & VRING_USED_F_NO_NOTIFY);
	s->kicked = new_idx;
	return kick;
}

int shadow_used(struct shadow_ring *s, uint16_t *id, uint32_t *len)
{
	uint16_t idx = SH_READ(s->used->idx);
	struct vring_used_elem e;

	if (idx == s->last_used)
		return 0;
	if ((uint16_t)(idx - s->last_used) > s->inflight)
		return -EIO;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	e.id = SH_READ(s->used->ring[s->last_used & (s->num - 1)].id);
	e.len = SH_READ(s->used->ring[s->last_used & (s->num - 1)].len);
	s->last_used++;
	s->inflight--;
	*id = e.id > UINT16_MAX ? UINT16_MAX : e.id;
	*len = e.len;
	return 1;
}

void shadow_free(struct shadow_ring *s, uint16_t head)
{
	uint16_t last = head;

	for (uint16_t i = 1; i < s->chain_len[head]; i++)
		last = s->next[last];
	s->next[last] = s->free_head;
	s->free_head = head;
	s->nfree += s->chain_len[head];
	s->chain_len[head] = 0;
}

void shadow_want_calls(struct shadow_ring *s, bool on)
{
	if (s->event_idx) {
		if (on)
			SH_WRITE(s->avail->ring[s->num], s->last_used);
	} else {
		SH_WRITE(s->avail->flags, on ? 0 : VRING_AVAIL_F_NO_INTERRUPT);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool shadow_has_used(const struct shadow_ring *s)
{
	return SH_READ(s->used->idx) != s->last_used;
}
