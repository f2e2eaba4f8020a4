/*
 * Entry point: the monitor jumps here in 64-bit mode with RDI = boot information,
 * RSP = BH_STACK_TOP and interrupts off. Clear .bss, move to our own stack, go to C.
 */
	.section .text.entry, "ax"
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	mov	%rdi, %r12		/* callee-saved: survives the clearing below */

	/* .bss holds our stack, so it is cleared while still on the monitor's stack. */
	lea	__bss_start(%rip), %rdi
	lea	__bss_end(%rip), %rcx
	sub	%rdi, %rcx
	xor	%eax, %eax
	rep stosb

	lea	inmate_stack_top(%rip), %rsp
	xor	%ebp, %ebp		/* terminates frame-pointer walks */
	mov	%r12, %rdi
	call	inmate_start
1:	cli
	hlt
	jmp	1b
	.size _start, . - _start

	.section .bss.stack, "aw", @nobits
	.balign 16
inmate_stack:
	.skip	INMATE_STACK_SIZE
inmate_stack_top:

	.section .note.GNU-stack, "", @progbits
