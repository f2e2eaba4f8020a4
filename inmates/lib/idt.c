/*
 * The interrupt descriptor table: 256 interrupt gates pointing at the stubs in
 * vectors.S, using the code segment the monitor's GDT gave us (no GDT of our own).
 */
#include <stdint.h>
#include <inmate/cpu.h>
#include <inmate/irq.h>
#include "internal.h"

#define IDT_STUB_SIZE          16      /* must match IRQ_STUB_SIZE in vectors.S */
#define IDT_TYPE_INTR_GATE64   0x0E    /* interrupt gate: IF cleared on entry */
#define IDT_PRESENT            0x80
#define IDT_DPL0               0x00

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t  ist;
	uint8_t  type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gates are 16 bytes");

extern const char irq_stubs[];

static struct idt_gate idt[IRQ_NR_VECTORS] __attribute__((aligned(16)));

void idt_init(void)
{
	/* Whatever selector we run on is the 64-bit code segment (BH_GDT_ADDR's 0x08). */
	uint16_t cs = cpu_read_cs();

	for (unsigned v = 0; v < IRQ_NR_VECTORS; v++) {
		uint64_t target = (uint64_t)(uintptr_t)(irq_stubs + v * IDT_STUB_SIZE);

		idt[v] = (struct idt_gate){
			.offset_lo = target & 0xffff,
			.selector = cs,
			.ist = 0,
			.type_attr = IDT_PRESENT | IDT_DPL0 | IDT_TYPE_INTR_GATE64,
			.offset_mid = (target >> 16) & 0xffff,
			.offset_hi = target >> 32,
		};
	}
	cpu_lidt((uint64_t)(uintptr_t)idt, sizeof(idt) - 1);
}
