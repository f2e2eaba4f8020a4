/*
 * Split virtqueues (virtio 1.2, section 2.7) as a device side walks them: one entry
 * function per direction that reads shared memory once, checks every index, length and
 * address, and hands out host pointers. Used by the I/O servers (on guest RAM or on a
 * window) and by the monitor's window mode (on guest RAM, to shadow the rings).
 * Nothing downstream of vring_pop() touches the rings again or trusts an index.
 */
#ifndef BH_VRING_H
#define BH_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/virtio.h"

#define VRING_MAX_IOV    256     /* descriptors in one chain, direct and indirect */
#define VRING_MAX_INDIRECT 1024   /* entries of one indirect table (QEMU's largest queue) */

/* The names src/monitor/shadow.c still uses for the ring layout of bulkhead/virtio.h. */
#define vring_desc                 virtq_desc
#define vring_avail                virtq_avail
#define vring_used                 virtq_used
#define vring_used_elem            virtq_used_elem
#define VRING_DESC_F_NEXT          VIRTQ_DESC_F_NEXT
#define VRING_DESC_F_WRITE         VIRTQ_DESC_F_WRITE
#define VRING_AVAIL_F_NO_INTERRUPT VIRTQ_AVAIL_F_NO_INTERRUPT
#define VRING_USED_F_NO_NOTIFY     VIRTQ_USED_F_NO_NOTIFY

/* Translates a driver address (guest-physical, or window offset) of len bytes into a
 * host pointer, or NULL when [addr, addr + len) is not entirely inside one mapping the
 * device may use. */
typedef void *(*vring_translate_fn)(void *opaque, uint64_t addr, uint64_t len, bool write);

struct vring {
	uint16_t num;                     /* queue size, a power of 2 */
	struct virtq_desc *desc;          /* host pointers, set by vring_init */
	struct virtq_avail *avail;
	struct virtq_used *used;
	bool event_idx;                   /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;                    /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t last_avail;              /* next avail entry to take */
	uint16_t used_idx;                /* next used entry to fill (private copy) */
	uint16_t signalled_used;          /* used_idx at the last notification */
	bool signalled_valid;
	vring_translate_fn translate;
	void *opaque;
};

/* One buffer of a chain: a host pointer the device may read (driver-readable) or
 * write (device-writable), and the driver address it came from. */
struct vring_iov {
	void *base;
	uint32_t len;
	bool write;
	uint64_t addr;
};

struct vring_chain {
	uint16_t head;                    /* the id to give vring_push */
	unsigned niov;
	struct vring_iov iov[VRING_MAX_IOV];
	uint64_t readable, writable;      /* byte totals */
};

/* Why a chain or a ring was refused; the device goes NEEDS_RESET. */
enum vring_error {
	VRING_OK = 0,
	VRING_EMPTY,                      /* nothing available: not an error */
	VRING_BAD_AVAIL_IDX,              /* avail->idx ran more than num ahead */
	VRING_BAD_HEAD,                   /* head or next index >= num */
	VRING_LOOP,                       /* chain longer than the queue: a loop */
	VRING_TOO_LONG,                   /* more than VRING_MAX_IOV buffers */
	VRING_BAD_ADDR,                   /* buffer outside the memory the device may use */
	VRING_BAD_INDIRECT,               /* bad indirect table (size, nesting, flags) */
	VRING_WRITE_ORDER,                /* a readable buffer after a writable one */
	VRING_BAD_LEN,                    /* zero-length table or a length that overflows */
	VRING_BAD_LAYOUT,                 /* the chain's shape does not fit the device (found
					   * by the device, e.g. no writable status byte) */
};

const char *vring_error_name(enum vring_error e);

/* Sets up a ring at driver addresses desc/avail/used (translated with translate).
 * Returns 0, or -EINVAL when num is not a power of 2 up to VIRTQ_MAX_SIZE or a ring
 * part is not inside the mapped memory. */
int vring_init(struct vring *vr, uint16_t num, uint64_t desc, uint64_t avail, uint64_t used,
	       vring_translate_fn translate, void *opaque);

/* Takes the next available chain. VRING_EMPTY when there is none; another error
 * means the ring is corrupt and the device must be reset (vr is unchanged). */
enum vring_error vring_pop(struct vring *vr, struct vring_chain *chain);

/* Returns a chain to the driver with len bytes written into its writable buffers.
 * Publishes the used element before the index (release ordering). */
void vring_push(struct vring *vr, uint16_t head, uint32_t len);

/* Returns n chains (at most the queue size) at once (the used ring, virtio 2.7.8): every
 * used element written, then the used index moved by n in one store (release ordering).
 * The driver sees all of them or none. */
void vring_push_n(struct vring *vr, const struct virtq_used_elem *elems, unsigned n);

/* Whether the driver wants an interrupt for what was pushed since the last call that
 * returned true (EVENT_IDX used_event, or VIRTQ_AVAIL_F_NO_INTERRUPT): with EVENT_IDX,
 * over every entry pushed since then, however many batches they came in. */
bool vring_need_notify(struct vring *vr);

/* Tells the driver whether to kick: with EVENT_IDX, sets avail_event to last_avail;
 * without, sets or clears VRING_USED_F_NO_NOTIFY. Call with enable=true before
 * sleeping, then re-check vring_pop (the driver may have added work meanwhile). */
void vring_set_notify(struct vring *vr, bool enable);

/* Bytes of each ring part for a queue of num entries, with the EVENT_IDX words. */
size_t vring_desc_size(uint16_t num);
size_t vring_avail_size(uint16_t num);
size_t vring_used_size(uint16_t num);

/* Visits up to len bytes of a chain's writable buffers (write) or readable ones,
 * skipping the first `skip`: fn gets each piece in order. Returns the bytes visited. */
typedef void (*vring_piece_fn)(void *ctx, uint8_t *buf, size_t n);
size_t vring_walk(const struct vring_chain *c, bool write, size_t skip, size_t len,
		  vring_piece_fn fn, void *ctx);

/* Copies between a chain and a flat buffer: out of its readable buffers (skipping
 * `skip` bytes) / into its writable buffers. Return the bytes copied. */
size_t vring_copy_from(const struct vring_chain *c, size_t skip, void *dst, size_t len);
size_t vring_copy_to(const struct vring_chain *c, size_t skip, const void *src, size_t len);

#endif
