/*
 * Shared between the virtio transport (virtio_pci.c) and the split-virtqueue code
 * (virtqueue.c): register access to one mapped structure, barriers, and the queue
 * programming the transport does for the ring code. Not part of the inmate API.
 */
#ifndef INMATE_VIRTIO_INTERNAL_H
#define INMATE_VIRTIO_INTERNAL_H

#include <inmate/io.h>
#include <inmate/virtio.h>

#define VIRTIO_NO_VECTOR 0xFFFF

/* Full barrier without SSE (mfence is off limits here): a locked no-op on the stack.
 * Orders the avail->idx store before the avail_event/flags load in a kick, and the
 * used_event store before the used->idx re-check when enabling interrupts. */
static inline void virtio_mb(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" : : : "memory", "cc");
}

/* x86 keeps stores in order and loads in order: a compiler barrier suffices. */
static inline void virtio_wmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void virtio_rmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline uint8_t vreg_read8(const struct virtio_region *r, uint32_t off)
{
	return r->is_io ? inb(r->base + off) : mmio_read8(r->base + off);
}

static inline uint16_t vreg_read16(const struct virtio_region *r, uint32_t off)
{
	return r->is_io ? inw(r->base + off) : mmio_read16(r->base + off);
}

static inline uint32_t vreg_read32(const struct virtio_region *r, uint32_t off)
{
	return r->is_io ? inl(r->base + off) : mmio_read32(r->base + off);
}

static inline void vreg_write8(const struct virtio_region *r, uint32_t off, uint8_t v)
{
	if (r->is_io)
		outb(r->base + off, v);
	else
		mmio_write8(r->base + off, v);
}

static inline void vreg_write16(const struct virtio_region *r, uint32_t off, uint16_t v)
{
	if (r->is_io)
		outw(r->base + off, v);
	else
		mmio_write16(r->base + off, v);
}

static inline void vreg_write32(const struct virtio_region *r, uint32_t off, uint32_t v)
{
	if (r->is_io)
		outl(r->base + off, v);
	else
		mmio_write32(r->base + off, v);
}

/* What the transport needs to program one queue, and what it hands back. */
struct virtio_queue_regs {
	uint16_t index, size;
	uint64_t desc, driver, device;       /* guest-physical ring addresses */
	uint16_t msix_entry;                 /* VIRTIO_NO_VECTOR: none */
	uintptr_t notify_addr;               /* out */
	uint8_t notify_is_io;                /* out */
	uint16_t msix_entry_set;             /* out: what the device accepted */
};

/* The device's maximum size for queue `index` (0: no such queue). */
uint16_t virtio_pci_queue_max(struct virtio_dev *d, uint16_t index);
/* Writes size, ring addresses and the MSI-X entry, computes the doorbell, enables. */
int virtio_pci_queue_program(struct virtio_dev *d, struct virtio_queue_regs *q);
/* The MSI-X entry virtio_setup_irqs chose for queue `index` (VIRTIO_NO_VECTOR: none). */
uint16_t virtio_irq_queue_entry(const struct virtio_dev *d, uint16_t index);
/* Maps configuration changes to MSI-X entry `entry`; *set is what the device kept. */
void virtio_pci_set_config_vector(struct virtio_dev *d, uint16_t entry, uint16_t *set);
/* Reads (and so clears) the ISR status byte. */
uint8_t virtio_pci_read_isr(const struct virtio_dev *d);
/* Whether a halt may wait for an interrupt for this queue. */
int virtio_irq_can_sleep(const struct virtqueue *vq);

#endif
