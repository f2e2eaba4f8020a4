/*
 * The 256 interrupt entry stubs, IRQ_STUB_SIZE bytes apart so C can compute a gate's
 * target. Each pushes a uniform frame (dummy error code where the CPU gives none, then
 * the vector), saves the general registers and calls irq_dispatch(frame).
 */
#define IRQ_STUB_SIZE 16

	.text
	.balign IRQ_STUB_SIZE
	.globl irq_stubs
irq_stubs:
	.set vec, 0
	.rept 256
	/* Vectors for which the CPU pushes an error code itself. */
	.if !((vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
	pushq	$0
	.endif
	pushq	$vec
	jmp	irq_common
	/* Pads with hlt (never int3) to the next slot; refused if a stub outgrew it. */
	.org	irq_stubs + (vec + 1) * IRQ_STUB_SIZE, 0xf4
	.set vec, vec + 1
	.endr

/* The CPU aligned RSP to 16 before its pushes; 5 + 2 + 15 quadwords keep it aligned
 * for the call. The order matches struct irq_frame (rax at the lowest address). */
irq_common:
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%r11
	push	%r10
	push	%r9
	push	%r8
	push	%rbp
	push	%rdi
	push	%rsi
	push	%rdx
	push	%rcx
	push	%rbx
	push	%rax
	cld			/* the C ABI wants DF clear; iretq restores the old value */
	mov	%rsp, %rdi
	call	irq_dispatch
	pop	%rax
	pop	%rbx
	pop	%rcx
	pop	%rdx
	pop	%rsi
	pop	%rdi
	pop	%rbp
	pop	%r8
	pop	%r9
	pop	%r10
	pop	%r11
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	add	$16, %rsp	/* vector and error code */
	iretq

	.section .note.GNU-stack, "", @progbits
