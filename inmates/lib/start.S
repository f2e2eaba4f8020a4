/*
 * Entry point: the monitor jumps here in 64-bit mode with RDI = boot information,
 * RSP = BH_STACK_TOP and interrupts off. Move to our own stack, go to C.
 * .bss is not cleared here: the monitor's ELF loader zero-fills every segment's
 * p_memsz beyond p_filesz, and on this host each page a guest touches first costs
 * about 1.5 ms, so clearing 77 KiB again would delay the first output by ~35 ms.
 */
	.section .text.entry, "ax"
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	lea	inmate_stack_top(%rip), %rsp
	xor	%ebp, %ebp		/* terminates frame-pointer walks */
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
