/*
 * Shadow rings: the driver side of a split virtqueue that the monitor keeps inside a
 * device's window in window mode; the I/O server is the device. The descriptor table
 * and avail ring are written here and only read by the server; the used ring is the
 * server's and is read once per element. Free lists and chain links are private, so a
 * server that rewrites the window cannot steer what the monitor frees or reuses.
 */
#ifndef BH_MON_SHADOW_H
#define BH_MON_SHADOW_H

#include <stdbool.h>
#include <stdint.h>

#include "common/vring.h"

#define SHADOW_MAX_SIZE 256

struct shadow_buf {
	uint64_t off;             /* window offset: the server's address */
	uint32_t len;
	bool     write;           /* device-writable */
};

struct shadow_ring {
	uint16_t num;
	struct vring_desc  *desc;
	struct vring_avail *avail;
	struct vring_used  *used;
	bool     event_idx;       /* negotiated with the server */
	uint16_t avail_idx;       /* next avail index (private) */
	uint16_t kicked;          /* avail index the server was last told about */
	uint16_t last_used;       /* next used element to read */
	uint16_t inflight;        /* chains posted and not yet used */
	uint16_t free_head, nfree;
	uint16_t next[SHADOW_MAX_SIZE];
	uint16_t chain_len[SHADOW_MAX_SIZE];
};

/* Lays out a ring of num entries (a power of 2 up to SHADOW_MAX_SIZE) at the given
 * host addresses and clears it. */
void shadow_init(struct shadow_ring *s, void *desc, void *avail, void *used, uint16_t num,
		 bool event_idx);

/* Posts one chain of n buffers (readable ones first); *head is its id. Returns 0 or
 * -ENOSPC (not enough free descriptors). The avail index is published by
 * shadow_kick_needed(). */
int shadow_post(struct shadow_ring *s, const struct shadow_buf *b, unsigned n, uint16_t *head);

/* Publishes what was posted; returns whether the server wants a kick for it. */
bool shadow_kick_needed(struct shadow_ring *s);

/* The next used element: 1 and *id, *len; 0 when there is none; -EIO when the server
 * moved its used index by more than what is in flight. The caller validates *id. */
int shadow_used(struct shadow_ring *s, uint16_t *id, uint32_t *len);

/* Gives a validated chain's descriptors back. */
void shadow_free(struct shadow_ring *s, uint16_t head);

/* Asks the server for a call on the next completion (or not). */
void shadow_want_calls(struct shadow_ring *s, bool on);
bool shadow_has_used(const struct shadow_ring *s);

#endif
