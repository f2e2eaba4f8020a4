/*
 * Interrupts and exceptions: a 256-gate IDT installed at start-up, a handler table,
 * and the saved-register frame handlers receive. Unhandled CPU exceptions print the
 * vector, error code and RIP, then exit with INMATE_STATUS_EXCEPTION_BASE + vector.
 */
#ifndef INMATE_IRQ_H
#define INMATE_IRQ_H

#include <stdint.h>
#include <inmate/cpu.h>

#define IRQ_NR_VECTORS        256
#define IRQ_NR_EXCEPTIONS     32    /* vectors 0..31 are CPU exceptions */

/* CPU exception vectors the runtime names. */
#define IRQ_VEC_DE   0    /* divide error */
#define IRQ_VEC_NMI  2
#define IRQ_VEC_UD   6    /* invalid opcode */
#define IRQ_VEC_DF   8    /* double fault */
#define IRQ_VEC_GP   13   /* general protection */
#define IRQ_VEC_PF   14   /* page fault */

/* Register state at the interrupt, lowest address first. A handler may change it
 * (e.g. advance rip past a faulting instruction); iretq resumes from it. */
struct irq_frame {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t vector;
	uint64_t error_code;   /* 0 for vectors without one */
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*irq_handler_t)(struct irq_frame *frame);

/* Install fn for vector (NULL restores the default). Device interrupt handlers must
 * send their own EOI (pic_eoi / lapic_eoi): only they know where the interrupt came
 * from. Returns 0, or -1 for a vector out of range. */
int irq_register(unsigned vector, irq_handler_t fn);

/* Interrupts that arrived on a vector with no handler (spurious PIC IRQ 7/15, the
 * LAPIC spurious vector, ...). They are counted and otherwise ignored. */
uint64_t irq_unexpected_count(void);

static inline void irq_enable(void)
{
	cpu_sti();
}

static inline void irq_disable(void)
{
	cpu_cli();
}

#endif
