/*
 * 8259A master/slave driver: initialisation (ICW1-4) with the vector remap, per-line
 * masking and end-of-interrupt. Both chips are cascaded on master IRQ 2.
 */
#include <inmate/io.h>
#include <inmate/pic.h>

#define PIC_MASTER_CMD    0x20
#define PIC_MASTER_DATA   0x21
#define PIC_SLAVE_CMD     0xA0
#define PIC_SLAVE_DATA    0xA1

#define PIC_ICW1_INIT     0x10
#define PIC_ICW1_ICW4     0x01
#define PIC_ICW4_8086     0x01
#define PIC_OCW2_EOI      0x20   /* non-specific end of interrupt */

#define PIC_CASCADE_IRQ   2      /* slave hangs off master line 2 */
#define PIC_IRQS_PER_CHIP 8
#define PIC_ALL_MASKED    0xFF

static int pic_ready;
static uint8_t pic_mask_master = PIC_ALL_MASKED;
static uint8_t pic_mask_slave = PIC_ALL_MASKED;

static void pic_write_masks(void)
{
	outb(PIC_MASTER_DATA, pic_mask_master);
	outb(PIC_SLAVE_DATA, pic_mask_slave);
}

void pic_init(void)
{
	if (pic_ready)
		return;
	outb(PIC_MASTER_CMD, PIC_ICW1_INIT | PIC_ICW1_ICW4);
	outb(PIC_SLAVE_CMD, PIC_ICW1_INIT | PIC_ICW1_ICW4);
	outb(PIC_MASTER_DATA, PIC_VECTOR_BASE);                        /* ICW2 */
	outb(PIC_SLAVE_DATA, PIC_VECTOR_BASE + PIC_IRQS_PER_CHIP);
	outb(PIC_MASTER_DATA, 1 << PIC_CASCADE_IRQ);                   /* ICW3 */
	outb(PIC_SLAVE_DATA, PIC_CASCADE_IRQ);
	outb(PIC_MASTER_DATA, PIC_ICW4_8086);                          /* ICW4 */
	outb(PIC_SLAVE_DATA, PIC_ICW4_8086);
	pic_mask_master = PIC_ALL_MASKED;
	pic_mask_slave = PIC_ALL_MASKED;
	pic_write_masks();
	pic_ready = 1;
}

void pic_unmask(unsigned irq)
{
	if (irq >= PIC_NR_IRQS)
		return;
	pic_init();
	if (irq >= PIC_IRQS_PER_CHIP) {
		pic_mask_slave &= ~(1u << (irq - PIC_IRQS_PER_CHIP));
		pic_mask_master &= ~(1u << PIC_CASCADE_IRQ);
	} else {
		pic_mask_master &= ~(1u << irq);
	}
	pic_write_masks();
}

void pic_mask(unsigned irq)
{
	if (irq >= PIC_NR_IRQS)
		return;
	pic_init();
	if (irq >= PIC_IRQS_PER_CHIP)
		pic_mask_slave |= 1u << (irq - PIC_IRQS_PER_CHIP);
	else
		pic_mask_master |= 1u << irq;
	pic_write_masks();
}

void pic_eoi(unsigned irq)
{
	if (irq >= PIC_IRQS_PER_CHIP)
		outb(PIC_SLAVE_CMD, PIC_OCW2_EOI);
	outb(PIC_MASTER_CMD, PIC_OCW2_EOI);
}
