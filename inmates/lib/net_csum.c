/*
 * The Internet checksum (RFC 1071) in as few guest instructions as possible: this host
 * runs a guest about an instruction per microsecond, so the sum goes eight bytes per
 * add-with-carry, 64 bytes per loop iteration, the carry kept in the flag across it.
 */
#include <inmate/net.h>

uint64_t net_csum_add(uint64_t sum, const void *p, size_t len)
{
	const uint8_t *q = p;
	size_t n = len / 64;
	uint64_t tail = 0;

	if (n) {
		/* lea and dec leave CF alone: one carry chain through the whole loop */
		__asm__("clc\n"
			"1:\n\t"
			"adcq 0(%[p]), %[s]\n\t"
			"adcq 8(%[p]), %[s]\n\t"
			"adcq 16(%[p]), %[s]\n\t"
			"adcq 24(%[p]), %[s]\n\t"
			"adcq 32(%[p]), %[s]\n\t"
			"adcq 40(%[p]), %[s]\n\t"
			"adcq 48(%[p]), %[s]\n\t"
			"adcq 56(%[p]), %[s]\n\t"
			"leaq 64(%[p]), %[p]\n\t"
			"decq %[n]\n\t"
			"jnz 1b\n\t"
			"adcq $0, %[s]"
			: [s] "+r"(sum), [p] "+r"(q), [n] "+r"(n)
			: "m"(*(const uint8_t (*)[len])p) : "cc");
	}
	n = (len % 64) / 8;
	if (n) {
		__asm__("clc\n"
			"1:\n\t"
			"adcq (%[p]), %[s]\n\t"
			"leaq 8(%[p]), %[p]\n\t"
			"decq %[n]\n\t"
			"jnz 1b\n\t"
			"adcq $0, %[s]"
			: [s] "+r"(sum), [p] "+r"(q), [n] "+r"(n)
			: "m"(*(const uint8_t (*)[len])p) : "cc");
	}
	/* 0..7 bytes left: each piece at its own byte position, as a zero-padded load. */
	len %= 8;
	if (len & 4)
		tail = *(const net_u32 *)q;
	if (len & 2)
		tail |= (uint64_t)*(const net_u16 *)(q + (len & 4)) << ((len & 4) * 8);
	if (len & 1)
		tail |= (uint64_t)q[len & 6] << ((len & 6) * 8);
	sum += tail;
	return sum + (sum < tail);
}

uint16_t net_csum_fold(uint64_t sum)
{
	sum = (sum & 0xFFFFFFFFu) + (sum >> 32);
	sum = (sum & 0xFFFFFFFFu) + (sum >> 32);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	sum = (sum & 0xFFFFu) + (sum >> 16);
	return (uint16_t)sum;
}

uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
	/* 32-bit words summed in 64 bits cannot overflow; folding handles the carries */
	return (uint64_t)src + dst + net_htons(proto) + net_htons(len);
}
