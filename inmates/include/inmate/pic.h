/*
 * The legacy 8259A pair (KVM's in-kernel PIC). pic_init remaps IRQ 0-15 to vectors
 * PIC_VECTOR_BASE.. so they cannot collide with CPU exceptions, and masks every line.
 */
#ifndef INMATE_PIC_H
#define INMATE_PIC_H

#define PIC_VECTOR_BASE   0x20   /* IRQ n arrives on vector PIC_VECTOR_BASE + n */
#define PIC_NR_IRQS       16

#define PIC_VECTOR(irq)   (PIC_VECTOR_BASE + (irq))

void pic_init(void);          /* idempotent */
void pic_unmask(unsigned irq);
void pic_mask(unsigned irq);
void pic_eoi(unsigned irq);   /* call from the handler of a PIC interrupt */

#endif
