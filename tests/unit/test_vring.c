/* Unit tests for src/common/vring.c: normal operation of a split virtqueue, EVENT_IDX
 * both ways, and every way a driver can corrupt its ring (each vring_error). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/vring.h"

/* Driver memory: MEM_SIZE bytes at driver address MEM_BASE. */
#define MEM_BASE  0x100000ull
#define MEM_SIZE  (1u << 20)
#define DESC_AT   MEM_BASE
#define AVAIL_AT  (MEM_BASE + 0x10000)
#define USED_AT   (MEM_BASE + 0x20000)
#define DATA_AT   (MEM_BASE + 0x40000)

struct fake {
	uint8_t *mem;
	struct vring vr;
	struct vring_chain chain;
	uint16_t avail_idx;
};

static void *fake_translate(void *opaque, uint64_t addr, uint64_t len, bool write)
{
	struct fake *f = opaque;

	if (addr < MEM_BASE || len > MEM_SIZE || addr - MEM_BASE > MEM_SIZE - len)
		return NULL;
	return f->mem + (addr - MEM_BASE);
}

static struct virtq_desc *desc_at(struct fake *f, uint64_t addr)
{
	return (struct virtq_desc *)(f->mem + (addr - MEM_BASE));
}

static struct virtq_avail *avail(struct fake *f)
{
	return (struct virtq_avail *)(f->mem + (AVAIL_AT - MEM_BASE));
}

static struct virtq_used *used(struct fake *f)
{
	return (struct virtq_used *)(f->mem + (USED_AT - MEM_BASE));
}

static struct fake *fake_new(uint16_t num, bool indirect, bool event_idx)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mem = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(f->mem);
	memset(f->mem, 0, MEM_SIZE);
	assert_int_equal(vring_init(&f->vr, num, DESC_AT, AVAIL_AT, USED_AT, fake_translate, f), 0);
	f->vr.indirect = indirect;
	f->vr.event_idx = event_idx;
	return f;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	if (f) {
		free(f->mem);
		free(f);
	}
	return 0;
}

static void set_desc(struct virtq_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void post(struct fake *f, uint16_t head)
{
	avail(f)->ring[f->avail_idx % f->vr.num] = head;
	avail(f)->idx = ++f->avail_idx;
}

static enum vring_error pop(struct fake *f)
{
	return vring_pop(&f->vr, &f->chain);
}

/* Checks that a failed pop left the ring as it was, and returns the error. */
static enum vring_error pop_fails(struct fake *f)
{
	uint16_t before = f->vr.last_avail;
	enum vring_error e = pop(f);

	assert_int_not_equal(e, VRING_OK);
	assert_int_equal(f->vr.last_avail, before);
	assert_int_equal(pop(f), e);      /* and stays failed: the ring is corrupt */
	return e;
}

static void init_checks_size_and_placement(void **state)
{
	struct fake f0 = { 0 };
	struct vring vr;

	f0.mem = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(f0.mem);
	assert_int_equal(vring_init(&vr, 0, DESC_AT, AVAIL_AT, USED_AT, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vring_init(&vr, 3, DESC_AT, AVAIL_AT, USED_AT, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vring_init(&vr, 65535, DESC_AT, AVAIL_AT, USED_AT, fake_translate,
				    &f0), -EINVAL);
	assert_int_equal(vring_init(&vr, 4, DESC_AT, AVAIL_AT, USED_AT, NULL, &f0), -EINVAL);
	/* outside the memory, partly outside, misaligned */
	assert_int_equal(vring_init(&vr, 4, 0x1000, AVAIL_AT, USED_AT, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vring_init(&vr, 256, DESC_AT, AVAIL_AT,
				    MEM_BASE + MEM_SIZE - 64, fake_translate, &f0), -EINVAL);
	assert_int_equal(vring_init(&vr, 4, DESC_AT + 8, AVAIL_AT, USED_AT, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vring_init(&vr, 4, DESC_AT, AVAIL_AT + 1, USED_AT, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vring_init(&vr, 4, DESC_AT, AVAIL_AT, USED_AT + 2, fake_translate, &f0),
			 -EINVAL);
	assert_int_equal(vr.num, 0);
	assert_int_equal(vring_pop(&vr, &(struct vring_chain){ 0 }), VRING_EMPTY);
	assert_int_equal(vring_init(&vr, 32768, MEM_BASE, MEM_BASE + 0x80000, MEM_BASE + 0x90000,
				    fake_translate, &f0), 0);
	assert_int_equal(vr.num, 32768);
	assert_int_equal(vr.last_avail, 0);
	free(f0.mem);
}

static void ring_part_sizes(void **state)
{
	assert_int_equal(vring_desc_size(256), 4096);
	assert_int_equal(vring_avail_size(256), 6 + 512);
	assert_int_equal(vring_used_size(256), 6 + 2048);
}

static void error_names(void **state)
{
	assert_string_equal(vring_error_name(VRING_OK), "ok");
	assert_string_equal(vring_error_name(VRING_EMPTY), "empty");
	assert_string_equal(vring_error_name(VRING_BAD_AVAIL_IDX), "bad_avail_idx");
	assert_string_equal(vring_error_name(VRING_BAD_HEAD), "bad_head");
	assert_string_equal(vring_error_name(VRING_LOOP), "loop");
	assert_string_equal(vring_error_name(VRING_TOO_LONG), "too_long");
	assert_string_equal(vring_error_name(VRING_BAD_ADDR), "bad_addr");
	assert_string_equal(vring_error_name(VRING_BAD_INDIRECT), "bad_indirect");
	assert_string_equal(vring_error_name(VRING_WRITE_ORDER), "write_order");
	assert_string_equal(vring_error_name(VRING_BAD_LEN), "bad_len");
	assert_string_equal(vring_error_name(VRING_BAD_LAYOUT), "bad_layout");
	assert_string_equal(vring_error_name((enum vring_error)99), "unknown");
}

static void pop_push_round_trip(void **state)
{
	struct fake *f = *state = fake_new(8, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);
	char out[32] = { 0 };

	assert_int_equal(pop(f), VRING_EMPTY);
	memcpy(f->mem + (DATA_AT - MEM_BASE), "hello, ", 7);
	memcpy(f->mem + (DATA_AT + 0x100 - MEM_BASE), "world", 5);
	set_desc(&d[2], DATA_AT, 7, VIRTQ_DESC_F_NEXT, 5);
	set_desc(&d[5], DATA_AT + 0x100, 5, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT + 0x200, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 7);
	set_desc(&d[7], DATA_AT + 0x300, 4, VIRTQ_DESC_F_WRITE, 0);
	post(f, 2);
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.head, 2);
	assert_int_equal(f->chain.niov, 4);
	assert_int_equal(f->chain.readable, 12);
	assert_int_equal(f->chain.writable, 20);
	assert_false(f->chain.iov[1].write);
	assert_true(f->chain.iov[2].write);
	assert_int_equal(f->chain.iov[1].addr, DATA_AT + 0x100);
	assert_ptr_equal(f->chain.iov[0].base, f->mem + (DATA_AT - MEM_BASE));
	assert_int_equal(vring_copy_from(&f->chain, 0, out, sizeof(out)), 12);
	assert_memory_equal(out, "hello, world", 12);
	assert_int_equal(vring_copy_from(&f->chain, 5, out, 4), 4);
	assert_memory_equal(out, ", wo", 4);
	assert_int_equal(vring_copy_from(&f->chain, 12, out, 4), 0);
	/* 18 bytes across the two writable buffers, skipping 2 */
	assert_int_equal(vring_copy_to(&f->chain, 2, "abcdefghijklmnopqr", 18), 18);
	assert_memory_equal(f->mem + (DATA_AT + 0x202 - MEM_BASE), "abcdefghijklmn", 14);
	assert_memory_equal(f->mem + (DATA_AT + 0x300 - MEM_BASE), "opqr", 4);
	assert_int_equal(vring_copy_to(&f->chain, 19, "xy", 2), 1);
	assert_int_equal(pop(f), VRING_EMPTY);

	vring_push(&f->vr, 2, 20);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 2);
	assert_int_equal(used(f)->ring[0].len, 20);
}

static void zero_length_buffers_are_skipped(void **state)
{
	struct fake *f = *state = fake_new(4, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	/* a zero-length buffer needs no address: not translated, not handed out */
	set_desc(&d[0], 0xdead000000000000ull, 0, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT, 8, VIRTQ_DESC_F_WRITE, 0);
	post(f, 0);
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.niov, 1);
	assert_int_equal(f->chain.writable, 8);
}

static void indices_wrap_around(void **state)
{
	struct fake *f = *state = fake_new(4, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	set_desc(&d[3], DATA_AT, 1, 0, 0);
	f->vr.last_avail = f->avail_idx = 65534;
	f->vr.used_idx = 65534;
	for (int i = 0; i < 4; i++)
		post(f, 3);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pop(f), VRING_OK);
		vring_push(&f->vr, f->chain.head, 0);
	}
	assert_int_equal(pop(f), VRING_EMPTY);
	assert_int_equal(f->vr.last_avail, 2);
	assert_int_equal(used(f)->idx, 2);
	assert_int_equal(used(f)->ring[1].id, 3);
}

static void indirect_table(void **state)
{
	struct fake *f = *state = fake_new(8, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);
	uint64_t table_at = DATA_AT + 0x1008;     /* indirect tables need no alignment */
	struct virtq_desc t[3];

	set_desc(&t[0], DATA_AT, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(&t[2], DATA_AT + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set_desc(&t[1], DATA_AT + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	memcpy(f->mem + (table_at - MEM_BASE), t, sizeof(t));
	/* WRITE on the descriptor that points to the table is ignored */
	set_desc(&d[0], table_at, sizeof(t), VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	post(f, 0);
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.niov, 3);
	assert_int_equal(f->chain.readable, 16);
	assert_int_equal(f->chain.writable, 513);
	assert_int_equal(f->chain.iov[2].addr, DATA_AT + 0x400);

	/* a direct buffer may precede the indirect one */
	set_desc(&d[1], DATA_AT + 0x800, 4, VIRTQ_DESC_F_NEXT, 2);
	set_desc(&d[2], table_at, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
	post(f, 1);
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.niov, 4);
	assert_int_equal(f->chain.readable, 20);
}

static void avail_idx_running_ahead(void **state)
{
	struct fake *f = *state = fake_new(8, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	set_desc(&d[0], DATA_AT, 1, 0, 0);
	avail(f)->idx = 8;                /* exactly a full ring: fine */
	assert_int_equal(pop(f), VRING_OK);
	f->vr.last_avail = 0;
	avail(f)->idx = 9;
	assert_int_equal(pop_fails(f), VRING_BAD_AVAIL_IDX);
	avail(f)->idx = 65535;            /* "behind": as far ahead as 65535 entries */
	assert_int_equal(pop_fails(f), VRING_BAD_AVAIL_IDX);
}

static void head_and_next_beyond_queue(void **state)
{
	struct fake *f = *state = fake_new(8, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	post(f, 8);
	assert_int_equal(pop_fails(f), VRING_BAD_HEAD);
	avail(f)->ring[0] = 0xffff;
	assert_int_equal(pop_fails(f), VRING_BAD_HEAD);
	avail(f)->ring[0] = 0;
	set_desc(&d[0], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 8);
	assert_int_equal(pop_fails(f), VRING_BAD_HEAD);
}

static void loops(void **state)
{
	struct fake *f = *state = fake_new(8, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);
	struct virtq_desc t[4] = { 0 };

	set_desc(&d[0], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 0);        /* onto itself */
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_LOOP);
	set_desc(&d[0], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 2);
	set_desc(&d[2], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 0);        /* 0 → 1 → 2 → 0 */
	assert_int_equal(pop_fails(f), VRING_LOOP);
	/* a loop inside an indirect table */
	set_desc(&t[0], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&t[1], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	set_desc(&d[0], DATA_AT + 0x1000, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_LOOP);
	/* an indirect table is its own bound: 9 entries behind one ring descriptor in a
	 * queue of 8, as Linux fills them when the queue is small */
	struct virtq_desc big[9];
	for (int i = 0; i < 9; i++)
		set_desc(&big[i], DATA_AT, 1, i < 8 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	memcpy(f->mem + (DATA_AT + 0x2000 - MEM_BASE), big, sizeof(big));
	set_desc(&d[0], DATA_AT + 0x2000, sizeof(big), VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.niov, 9);
	/* a loop through all of the table */
	big[8].flags = VIRTQ_DESC_F_NEXT;
	big[8].next = 0;
	memcpy(f->mem + (DATA_AT + 0x2000 - MEM_BASE), big, sizeof(big));
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_LOOP);
	/* a table larger than VRING_MAX_INDIRECT entries is refused before it is walked */
	set_desc(&d[0], DATA_AT + 0x2000, (VRING_MAX_INDIRECT + 1) * sizeof(struct virtq_desc),
		 VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);
}

static void too_many_buffers(void **state)
{
	struct fake *f = *state = fake_new(512, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	for (int i = 0; i < VRING_MAX_IOV; i++)
		set_desc(&d[i], DATA_AT, 1, VIRTQ_DESC_F_NEXT, i + 1);
	set_desc(&d[VRING_MAX_IOV], DATA_AT, 1, 0, 0);
	post(f, 1);                      /* VRING_MAX_IOV buffers: the most allowed */
	assert_int_equal(pop(f), VRING_OK);
	assert_int_equal(f->chain.niov, VRING_MAX_IOV);
	post(f, 0);                      /* one more */
	assert_int_equal(pop_fails(f), VRING_TOO_LONG);
	/* past VRING_MAX_IOV and then round in a circle: still a loop */
	set_desc(&d[VRING_MAX_IOV], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 0);
	assert_int_equal(pop_fails(f), VRING_LOOP);
	/* a two-descriptor loop in a queue larger than VRING_MAX_IOV */
	set_desc(&d[0], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT, 1, VIRTQ_DESC_F_NEXT, 0);
	assert_int_equal(pop_fails(f), VRING_LOOP);
	/* past VRING_MAX_IOV, then a bad address: the first error found */
	for (int i = 0; i < 300; i++)
		set_desc(&d[i], DATA_AT, 1, VIRTQ_DESC_F_NEXT, i + 1);
	set_desc(&d[300], 0x10, 1, 0, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_ADDR);
}

static void addresses_outside_memory(void **state)
{
	struct fake *f = *state = fake_new(4, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	set_desc(&d[0], MEM_BASE - 1, 2, 0, 0);                     /* starts before */
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_ADDR);
	set_desc(&d[0], MEM_BASE + MEM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0);   /* runs past */
	assert_int_equal(pop_fails(f), VRING_BAD_ADDR);
	set_desc(&d[0], DATA_AT, 8, VIRTQ_DESC_F_NEXT, 1);          /* the second one */
	set_desc(&d[1], 0x10, 8, 0, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_ADDR);
	set_desc(&d[0], 0x10, 32, VIRTQ_DESC_F_INDIRECT, 0);        /* the table itself */
	assert_int_equal(pop_fails(f), VRING_BAD_ADDR);
}

static void bad_indirect_tables(void **state)
{
	struct fake *f = *state = fake_new(8, false, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);
	struct virtq_desc t[2];

	set_desc(&t[0], DATA_AT, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&t[1], DATA_AT, 8, VIRTQ_DESC_F_WRITE, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	set_desc(&d[0], DATA_AT + 0x1000, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);     /* not negotiated */
	f->vr.indirect = true;
	assert_int_equal(pop(f), VRING_OK);
	f->vr.last_avail = 0;

	d[0].flags = VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT; /* INDIRECT with NEXT */
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);
	set_desc(&d[0], DATA_AT + 0x1000, 24, VIRTQ_DESC_F_INDIRECT, 0);   /* not n * 16 */
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);
	/* nested: the table points to another table */
	set_desc(&t[1], DATA_AT + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	set_desc(&d[0], DATA_AT + 0x1000, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);
	/* next beyond the table */
	set_desc(&t[0], DATA_AT, 8, VIRTQ_DESC_F_NEXT, 2);
	set_desc(&t[1], DATA_AT, 8, VIRTQ_DESC_F_WRITE, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	assert_int_equal(pop_fails(f), VRING_BAD_INDIRECT);
}

static void readable_after_writable(void **state)
{
	struct fake *f = *state = fake_new(8, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);
	struct virtq_desc t[2];

	set_desc(&d[0], DATA_AT, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT, 8, 0, 0);
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_WRITE_ORDER);
	/* also inside an indirect table, and across the direct/indirect boundary */
	set_desc(&t[0], DATA_AT, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(&t[1], DATA_AT, 8, 0, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	set_desc(&d[0], DATA_AT + 0x1000, sizeof(t), VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_WRITE_ORDER);
	set_desc(&t[0], DATA_AT, 8, 0, 0);
	memcpy(f->mem + (DATA_AT + 0x1000 - MEM_BASE), t, sizeof(t));
	set_desc(&d[0], DATA_AT, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], DATA_AT + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_WRITE_ORDER);
}

static void bad_lengths(void **state)
{
	struct fake *f = *state = fake_new(8, true, false);
	struct virtq_desc *d = desc_at(f, DESC_AT);

	set_desc(&d[0], DATA_AT, 0, VIRTQ_DESC_F_INDIRECT, 0);        /* empty table */
	post(f, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_LEN);
	set_desc(&d[0], 0xfffffffffffff000ull, 0x2000, 0, 0);         /* addr + len wraps */
	assert_int_equal(pop_fails(f), VRING_BAD_LEN);
	set_desc(&d[0], 0xffffffffffffff00ull, 0x200, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop_fails(f), VRING_BAD_LEN);
}

static void notify_without_event_idx(void **state)
{
	struct fake *f = *state = fake_new(8, false, false);

	assert_false(vring_need_notify(&f->vr));     /* nothing pushed yet... */
	vring_push(&f->vr, 0, 0);
	assert_true(vring_need_notify(&f->vr));
	assert_false(vring_need_notify(&f->vr));     /* ...nothing new since */
	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	vring_push(&f->vr, 0, 0);
	assert_false(vring_need_notify(&f->vr));
	avail(f)->flags = 0;
	assert_true(vring_need_notify(&f->vr));      /* still owed for the last push */

	vring_set_notify(&f->vr, false);
	assert_int_equal(used(f)->flags, VIRTQ_USED_F_NO_NOTIFY);
	vring_set_notify(&f->vr, true);
	assert_int_equal(used(f)->flags, 0);
}

static void notify_with_event_idx(void **state)
{
	struct fake *f = *state = fake_new(8, false, true);
	uint16_t *used_event = &avail(f)->ring[8];
	uint16_t *avail_event = (uint16_t *)&used(f)->ring[8];

	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;   /* ignored with EVENT_IDX */
	vring_push(&f->vr, 0, 0);
	assert_true(vring_need_notify(&f->vr));         /* the first one always */
	*used_event = 2;                                /* "interrupt me when idx passes 2" */
	vring_push(&f->vr, 0, 0);                       /* used idx 2 */
	assert_false(vring_need_notify(&f->vr));
	vring_push(&f->vr, 0, 0);                       /* used idx 3: 2 was passed */
	assert_true(vring_need_notify(&f->vr));
	*used_event = 10;
	for (int i = 0; i < 4; i++)
		vring_push(&f->vr, 0, 0);               /* to 7 */
	assert_false(vring_need_notify(&f->vr));
	for (int i = 0; i < 4; i++)
		vring_push(&f->vr, 0, 0);               /* to 11 */
	assert_true(vring_need_notify(&f->vr));

	f->vr.last_avail = 1234;
	vring_set_notify(&f->vr, true);
	assert_int_equal(*avail_event, 1234);
	f->vr.last_avail = 1300;
	vring_set_notify(&f->vr, false);                /* leaves it behind */
	assert_int_equal(*avail_event, 1234);
	assert_int_equal(used(f)->flags, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_checks_size_and_placement),
		cmocka_unit_test(ring_part_sizes),
		cmocka_unit_test(error_names),
		cmocka_unit_test_teardown(pop_push_round_trip, fake_teardown),
		cmocka_unit_test_teardown(zero_length_buffers_are_skipped, fake_teardown),
		cmocka_unit_test_teardown(indices_wrap_around, fake_teardown),
		cmocka_unit_test_teardown(indirect_table, fake_teardown),
		cmocka_unit_test_teardown(avail_idx_running_ahead, fake_teardown),
		cmocka_unit_test_teardown(head_and_next_beyond_queue, fake_teardown),
		cmocka_unit_test_teardown(loops, fake_teardown),
		cmocka_unit_test_teardown(too_many_buffers, fake_teardown),
		cmocka_unit_test_teardown(addresses_outside_memory, fake_teardown),
		cmocka_unit_test_teardown(bad_indirect_tables, fake_teardown),
		cmocka_unit_test_teardown(readable_after_writable, fake_teardown),
		cmocka_unit_test_teardown(bad_lengths, fake_teardown),
		cmocka_unit_test_teardown(notify_without_event_idx, fake_teardown),
		cmocka_unit_test_teardown(notify_with_event_idx, fake_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
