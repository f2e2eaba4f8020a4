/*
 * virtio 1.x over PCI (the modern transport) and split virtqueues, as a driver sees
 * them: find a device, map its structures through the vendor capabilities, negotiate
 * features, set up queues, take interrupts (MSI-X, else INTx, else polling), and move
 * buffer chains through the rings. Device drivers (virtio_blk.h, virtio_console.h,
 * virtio_rng.h) sit on top. The virtio ABI itself (feature bits, status, ring layout)
 * is <bulkhead/virtio.h>. Functions return 0 or a negative errno-style code.
 */
#ifndef INMATE_VIRTIO_H
#define INMATE_VIRTIO_H

#include <stdint.h>
#include <stddef.h>
#include <bulkhead/virtio.h>
#include <inmate/pci.h>

/* Error codes (negated), the Linux values so they read familiarly in messages. */
#define VIRTIO_EIO        5
#define VIRTIO_ENOMEM     12
#define VIRTIO_ENODEV     19
#define VIRTIO_EINVAL     22
#define VIRTIO_ENOSPC     28
#define VIRTIO_ETIMEDOUT  110

/* The inmate API's older name of VIRTIO_STATUS_DEVICE_NEEDS_RESET (programs use it). */
#define VIRTIO_STATUS_NEEDS_RESET  VIRTIO_STATUS_DEVICE_NEEDS_RESET

/* Feature bit number n as a mask. */
#define VIRTIO_BIT(n)              (1ULL << (n))

/* How the driver learns about used buffers. AUTO: MSI-X if the device has it, else
 * INTx if it has an interrupt pin with a routed line, else polling. */
enum virtio_irq_mode { VIRTIO_IRQ_AUTO, VIRTIO_IRQ_MSIX, VIRTIO_IRQ_INTX, VIRTIO_IRQ_POLL };

/* Driver choices a program may change, mainly for tests. */
struct virtio_opts {
	unsigned index;              /* which device of its type (0 = the first) */
	uint64_t features_off;       /* offered features not to take, e.g. EVENT_IDX */
	enum virtio_irq_mode irq;
	uint16_t queue_size;         /* 0: the device's maximum, capped at VIRTIO_QUEUE_DEFAULT */
	int verbose;                 /* print what was found and negotiated */
};

#define VIRTIO_QUEUE_DEFAULT 256
#define VIRTIO_MAX_QUEUES    4       /* queues a device here may have set up */

/* One virtio structure, reached through a memory or an I/O BAR. */
struct virtio_region {
	uint64_t base;               /* address (memory) or port (I/O); 0: absent */
	uint32_t len;
	uint8_t is_io;
	uint8_t bar;
	uint32_t offset;             /* within the BAR, as the capability said */
};

struct virtqueue;

struct virtio_dev {
	struct pci_dev pci;
	uint16_t type;                       /* virtio device id */
	struct virtio_region common, notify, isr, device;
	uint32_t notify_mult;                /* notify_off_multiplier */
	uint64_t offered, features;          /* device features; negotiated features */
	uint16_t num_queues;
	struct virtio_opts opts;
	enum virtio_irq_mode irq;            /* in use after virtio_setup_irqs */
	uint8_t msix_cap;                    /* config-space offset, 0 if none */
	uint16_t msix_size;                  /* table entries */
	uintptr_t msix_table;
	uint16_t msix_config_entry;          /* 0xFFFF: none */
	uint16_t msix_queue_entry[VIRTIO_MAX_QUEUES];
	uint8_t intx_gsi, intx_vector;
	volatile uint64_t irq_count;         /* interrupts taken for this device */
	volatile uint64_t config_irqs;       /* configuration-change notifications */
	struct virtqueue *vqs[VIRTIO_MAX_QUEUES];
};

/* --- transport (lib/virtio_pci.c) -------------------------------------------------- */

/* Parses one program argument meant for the virtio core: `dev=N`, `no-event-idx`,
 * `no-indirect`, `irq=auto|msix|intx|poll`, `qsize=N`, `verbose`. Returns 1 if it was
 * one of these (and applied it), 0 otherwise. */
int virtio_parse_opt(struct virtio_opts *o, const char *arg);

/* Finds the opts->index-th device of `type`, maps its structures from the virtio
 * capabilities (never assuming a BAR or an offset), enables decoding and bus
 * mastering, resets it and sets ACKNOWLEDGE|DRIVER. */
int virtio_pci_open(struct virtio_dev *d, uint16_t type, const struct virtio_opts *opts);

/* Negotiates: takes `wanted` & offered & ~opts->features_off, plus VERSION_1
 * (required), EVENT_IDX and INDIRECT_DESC when offered and not switched off. Sets
 * FEATURES_OK and checks that the device kept it. */
int virtio_negotiate(struct virtio_dev *d, uint64_t wanted);

static inline int virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return !!(d->features & VIRTIO_BIT(bit));
}

/* Chooses the interrupt mode and, with MSI-X, programs the table (an entry for the
 * configuration change and one per queue when the table is big enough, else one
 * shared). Call after virtio_negotiate and before virtio_queue_setup. */
int virtio_setup_irqs(struct virtio_dev *d, unsigned nr_queues);

/* Sets DRIVER_OK: the device is live. */
void virtio_driver_ok(struct virtio_dev *d);

/* Writes 0 to device_status and waits until it reads back 0; interrupts off. */
int virtio_reset(struct virtio_dev *d);
uint8_t virtio_status(const struct virtio_dev *d);
void virtio_set_failed(struct virtio_dev *d);
static inline int virtio_needs_reset(const struct virtio_dev *d)
{
	return !!(virtio_status(d) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* Device-specific configuration, read with the generation counter so multi-field
 * reads are consistent. Out-of-range offsets read as 0. */
uint8_t virtio_cfg_read8(const struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg_read16(const struct virtio_dev *d, uint32_t off);
uint32_t virtio_cfg_read32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg_read64(const struct virtio_dev *d, uint32_t off);
void virtio_cfg_write8(const struct virtio_dev *d, uint32_t off, uint8_t v);

const char *virtio_irq_mode_name(enum virtio_irq_mode m);
const char *virtio_strerror(int err);

/* --- split virtqueues (lib/virtqueue.c) -------------------------------------------- */

/* One buffer of a chain: driver memory (its address is its guest-physical address). */
struct virtq_buf {
	void *addr;
	uint32_t len;
};

/* Driver-private bookkeeping per chain head; the rings themselves are shared. */
struct virtq_slot {
	void *token;                 /* what virtq_add was given; NULL: free */
	uint16_t ndesc;              /* ring descriptors the chain holds */
	uint32_t writable;           /* bytes the device may write (bounds used.len) */
};

struct virtqueue {
	struct virtio_dev *dev;
	uint16_t index, num;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	volatile uint16_t *used_event;       /* &avail->ring[num] */
	volatile uint16_t *avail_event;      /* &used->ring[num] */
	int event_idx, indirect;             /* negotiated, for this queue */
	uint16_t indirect_max;               /* descriptors per indirect table; 0: none */
	struct virtq_desc *indirect_tables;  /* num tables of indirect_max */
	uint16_t *next;                      /* private copy of each descriptor's next */
	struct virtq_slot *slots;
	uint16_t free_head, num_free;
	uint16_t avail_idx;                  /* private shadow of avail->idx */
	uint16_t kicked_idx;                 /* avail_idx at the last notification */
	uint16_t last_used;                  /* next used entry to read */
	int cb_enabled;                      /* interrupts requested from the device */
	uintptr_t notify_addr;               /* memory address or port of the doorbell */
	uint8_t notify_is_io;
	uint16_t msix_entry;                 /* 0xFFFF: none */
	volatile uint64_t irqs;              /* interrupts seen for this queue */
	uint64_t kicks, kicks_suppressed, added, completed;
	int broken;                          /* the device returned a bad used element */
	const char *broken_why;
};

/* Allocates and programs queue `index` with up to `size` entries (0: the device's
 * maximum capped by opts.queue_size / VIRTIO_QUEUE_DEFAULT) and `indirect_max`
 * descriptors per indirect table (0: no indirect tables for this queue), then enables
 * it. Call after virtio_setup_irqs and before virtio_driver_ok. */
int virtio_queue_setup(struct virtio_dev *d, struct virtqueue *vq, uint16_t index,
		       uint16_t size, uint16_t indirect_max);

/* Adds a chain: `nout` device-readable buffers then `nin` device-writable ones, in
 * that order. Uses an indirect table when the queue has them and the chain has more
 * than one buffer. Returns 0, -VIRTIO_ENOSPC when the ring is full (reap, then retry)
 * or -VIRTIO_EINVAL. Publishes the chain (avail->idx) but does not notify. */
int virtq_add(struct virtqueue *vq, const struct virtq_buf *bufs, unsigned nout,
	      unsigned nin, void *token);

/* Notifies the device of what was added, unless it asked not to be (EVENT_IDX
 * avail_event, or VIRTQ_USED_F_NO_NOTIFY). Returns 1 if it notified. */
int virtq_kick(struct virtqueue *vq);
/* Notifies unconditionally (writes the queue index to its doorbell). */
void virtq_notify(struct virtqueue *vq);

/* Takes the next used chain: returns its token and sets *len to the bytes the device
 * says it wrote, or returns NULL when there is none (or the queue is broken: a used
 * id or length the driver never offered). */
void *virtq_get(struct virtqueue *vq, uint32_t *len);
int virtq_has_used(const struct virtqueue *vq);
static inline unsigned virtq_in_flight(const struct virtqueue *vq)
{
	return (unsigned)(vq->added - vq->completed);
}

/* Asks for / stops asking for used-buffer interrupts. virtq_enable_cb returns 1 when
 * used buffers are already waiting (so the caller must not sleep). */
int virtq_enable_cb(struct virtqueue *vq);
void virtq_disable_cb(struct virtqueue *vq);

/* Waits until a used chain is waiting, polling briefly and then halting until an
 * interrupt (a LAPIC one-shot bounds every halt). Returns 0, -VIRTIO_ETIMEDOUT, or
 * -VIRTIO_EIO when the queue is broken or the device set DEVICE_NEEDS_RESET. */
int virtq_wait(struct virtqueue *vq, uint64_t timeout_us);

#define VIRTQ_POLL_US    50u      /* spin this long before sleeping */
#define VIRTQ_TIMEOUT_US 5000000u /* the drivers' default request timeout */

#endif
