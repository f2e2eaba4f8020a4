/*
 * Single x86-64 instructions the runtime needs (interrupt flag, halt, TSC, control
 * registers), wrapped as inline functions. Deliberately no `int n`: software interrupts
 * fail on this machine's KVM, so nothing in the runtime may raise one.
 */
#ifndef INMATE_CPU_H
#define INMATE_CPU_H

#include <stdint.h>

static inline void cpu_sti(void)
{
	__asm__ volatile("sti" : : : "memory");
}

static inline void cpu_cli(void)
{
	__asm__ volatile("cli" : : : "memory");
}

static inline void cpu_hlt(void)
{
	__asm__ volatile("hlt" : : : "memory");
}

/* `sti` delays interrupt recognition by one instruction, so an interrupt that is
 * already pending wakes the `hlt` instead of being taken before it: no lost wake-up. */
static inline void cpu_sti_hlt(void)
{
	__asm__ volatile("sti; hlt" : : : "memory");
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static inline uint64_t cpu_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t cpu_read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline uint64_t cpu_read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v) : : "memory");
	return v;
}

static inline uint16_t cpu_read_cs(void)
{
	uint16_t v;
	__asm__ volatile("mov %%cs, %0" : "=r"(v));
	return v;
}

#define CPU_RFLAGS_IF  (1UL << 9)

/* Descriptor-table register image for lidt/lgdt. */
struct cpu_dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static inline void cpu_lidt(uint64_t base, uint16_t limit)
{
	struct cpu_dtr d = { limit, base };
	__asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

static inline void cpu_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

static inline uint64_t cpu_rdmsr(uint32_t index)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index) : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_wrmsr(uint32_t index, uint64_t value)
{
	__asm__ volatile("wrmsr" : : "c"(index), "a"((uint32_t)value),
			 "d"((uint32_t)(value >> 32)) : "memory");
}

static inline void cpu_ud2(void)
{
	__asm__ volatile("ud2" : : : "memory");
}

static inline __attribute__((noreturn)) void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

#endif
