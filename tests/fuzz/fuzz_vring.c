/*
 * libFuzzer harness for the descriptor-chain walker (src/common/vring.c): rings built from
 * the input in a fixed driver memory are popped until empty or refused, and every buffer
 * handed out is checked, read and written. Seed corpus: tests/fuzz/vring-corpus/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* Input: [0] log2 of the queue size (mod 10), [1] bit 0 INDIRECT_DESC, bit 1
 * EVENT_IDX, [2..3] the starting last_avail (little endian), then the driver memory
 * from its first byte. Memory is FUZZ_MEM bytes at driver address FUZZ_BASE: the avail
 * ring first, then the descriptor table, then the used ring (room for 512 entries
 * each), so that short inputs already describe whole small rings. */
#define FUZZ_BASE   0x1000ull
#define FUZZ_MEM    0x8000u
#define FUZZ_HDR    4
#define FUZZ_AVAIL  0x0u
#define FUZZ_DESC   0x410u
#define FUZZ_USED   0x2410u

struct fuzz_mem {
	uint8_t *bytes;
};

static void *fuzz_translate(void *opaque, uint64_t addr, uint64_t len, bool write)
{
	struct fuzz_mem *m = opaque;

	if (addr < FUZZ_BASE || len > FUZZ_MEM || addr - FUZZ_BASE > FUZZ_MEM - len)
		return NULL;
	return m->bytes + (addr - FUZZ_BASE);
}

/* What vring_pop promises about a chain it accepted. */
static void fuzz_check_chain(const struct vring *vr, const struct vring_chain *c,
			     const uint8_t *mem)
{
	uint64_t readable = 0, writable = 0;
	bool seen_write = false;

	if (c->head >= vr->num || c->niov > VRING_MAX_IOV)
		abort();
	for (unsigned i = 0; i < c->niov; i++) {
		const struct vring_iov *v = &c->iov[i];
		const uint8_t *p = v->base;

		if (!v->len || p < mem || p + v->len > mem + FUZZ_MEM ||
		    p != mem + (v->addr - FUZZ_BASE))
			abort();
		if (!v->write && seen_write)
			abort();
		seen_write |= v->write;
		if (v->write)
			writable += v->len;
		else
			readable += v->len;
	}
	if (readable != c->readable || writable != c->writable)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vring_chain chain;
	static uint8_t scratch[VRING_MAX_IOV * 64];
	struct fuzz_mem m;
	struct vring vr;
	uint16_t num;

	if (size < FUZZ_HDR)
		return 0;
	num = 1u << (data[0] % 10);
	/* Exactly FUZZ_MEM bytes on the heap: AddressSanitizer catches any access past. */
	m.bytes = calloc(1, FUZZ_MEM);
	if (!m.bytes)
		return 0;
	memcpy(m.bytes, data + FUZZ_HDR, size - FUZZ_HDR < FUZZ_MEM ? size - FUZZ_HDR : FUZZ_MEM);
	if (vring_init(&vr, num, FUZZ_BASE + FUZZ_DESC, FUZZ_BASE + FUZZ_AVAIL,
		       FUZZ_BASE + FUZZ_USED, fuzz_translate, &m))
		abort();
	vr.indirect = data[1] & 1;
	vr.event_idx = data[1] & 2;
	vr.last_avail = (uint16_t)(data[2] | data[3] << 8);
	for (unsigned n = 0; n <= (unsigned)num + 1; n++) {
		uint16_t before = vr.last_avail;
		enum vring_error e = vring_pop(&vr, &chain);

		if (e != VRING_OK) {
			if (vr.last_avail != before || !strcmp(vring_error_name(e), "unknown"))
				abort();
			break;
		}
		fuzz_check_chain(&vr, &chain, m.bytes);
		/* Touch every byte handed out, both ways. */
		vring_copy_from(&chain, 0, scratch, sizeof(scratch));
		vring_copy_to(&chain, 0, scratch, chain.writable < sizeof(scratch) ?
			      chain.writable : sizeof(scratch));
		for (unsigned i = 0; i < chain.niov; i++) {
			volatile uint8_t *p = chain.iov[i].base;
			(void)p[0];
			(void)p[chain.iov[i].len - 1];
		}
		vring_push(&vr, chain.head, (uint32_t)chain.writable);
		vring_need_notify(&vr);
		vring_set_notify(&vr, n & 1);
	}
	free(m.bytes);
	return 0;
}
