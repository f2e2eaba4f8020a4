/*
 * Interrupt dispatch: every vector lands in irq_dispatch, which calls the registered
 * handler, or reports an unhandled CPU exception and stops the partition with a status
 * that names the vector.
 */
#include <inmate/irq.h>
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include "internal.h"

static irq_handler_t irq_handlers[IRQ_NR_VECTORS];
static uint64_t irq_unexpected;

static const char *const exception_names[IRQ_NR_EXCEPTIONS] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor segment overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD error", "#VE virtualisation", "#CP control protection",
	"reserved", "reserved", "reserved", "reserved", "reserved", "reserved",
	"#HV hypervisor injection", "#VC VMM communication", "#SX security", "reserved",
};

int irq_register(unsigned vector, irq_handler_t fn)
{
	if (vector >= IRQ_NR_VECTORS)
		return -1;
	irq_handlers[vector] = fn;
	return 0;
}

uint64_t irq_unexpected_count(void)
{
	return irq_unexpected;
}

static __attribute__((noreturn)) void exception_fatal(const struct irq_frame *f)
{
	printf("\ninmate: unhandled exception %s (vector %lu), error code 0x%lx, rip 0x%lx\n",
	       exception_names[f->vector], f->vector, f->error_code, f->rip);
	if (f->vector == IRQ_VEC_PF)
		printf("inmate:   faulting address (cr2) 0x%lx\n", cpu_read_cr2());
	printf("inmate:   rsp 0x%lx rflags 0x%lx cs 0x%lx\n", f->rsp, f->rflags, f->cs);
	printf("inmate:   rax 0x%lx rbx 0x%lx rcx 0x%lx rdx 0x%lx\n", f->rax, f->rbx, f->rcx, f->rdx);
	printf("inmate:   rsi 0x%lx rdi 0x%lx rbp 0x%lx\n", f->rsi, f->rdi, f->rbp);
	printf("inmate: exiting with status %lu\n", INMATE_STATUS_EXCEPTION_BASE + f->vector);
	bh_exit(INMATE_STATUS_EXCEPTION_BASE + f->vector);
}

void irq_dispatch(struct irq_frame *f)
{
	irq_handler_t fn = irq_handlers[f->vector];

	if (fn) {
		fn(f);
		return;
	}
	if (f->vector < IRQ_NR_EXCEPTIONS)
		exception_fatal(f);
	/* Spurious vectors must not be acknowledged, so no EOI here. */
	if (irq_unexpected++ == 0)
		printf("inmate: interrupt on vector %lu with no handler (ignored)\n", f->vector);
}
