/* Unit tests for src/ioserver/vu_queue.c's batch completion (vu_queue_push_n): the used
 * index moves once per batch, after every element; a server killed at any store of a
 * batch leaves an inflight region that gives back all of the batch or none of it; and
 * EVENT_IDX notification is decided over the whole batch. Every store to the used ring
 * and the inflight region is seen one at a time: the pages are write-protected, each
 * write faults, is single-stepped (x86 trap flag) and the state after it recorded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <cmocka.h>

#include "ioserver/ioserver.h"

#define QS        8                       /* queue size */
#define PAGE      4096u
#define BASE      0x100000ull             /* driver address of the fake memory */
#define DESC_AT   (BASE)
#define AVAIL_AT  (BASE + 0x200)
#define USED_AT   (BASE + PAGE)           /* the used ring alone on its page */
#define DATA_AT   (BASE + 2 * PAGE)
#define MEM_SIZE  (3 * PAGE)
#define MAX_TRACE 64

/* --- what vu_queue.c needs from the rest of the server ------------------------------ */

static uint8_t *mem;

void ios_log(struct ios *s, const struct vu_dev *d, const char *fmt, ...)
{
}

void ios_event_replay(struct vu_dev *d, int queue, unsigned requests)
{
}

void ios_watch_del(struct ios *s, struct ios_watch *w)
{
}

void vu_dev_fail(struct vu_dev *d, struct vu_queue *vq, enum vring_error e)
{
	fail_msg("the device broke: %s", vring_error_name(e));
}

void vu_dev_fail_reason(struct vu_dev *d, struct vu_queue *vq, const char *reason)
{
	fail_msg("the device broke: %s", reason);
}

static bool in_mem(uint64_t addr, uint64_t len)
{
	return addr >= BASE && len <= MEM_SIZE && addr - BASE <= MEM_SIZE - len;
}

int vu_mem_ua_to_ga(const struct vu_mem *m, uint64_t ua, uint64_t len, uint64_t *ga)
{
	*ga = ua;                         /* frontend and guest addresses alike here */
	return in_mem(ua, len) ? 0 : -EFAULT;
}

void *vu_mem_translate(void *opaque, uint64_t addr, uint64_t len, bool write)
{
	return in_mem(addr, len) ? mem + (addr - BASE) : NULL;
}

/* --- store tracing ------------------------------------------------------------------ */

struct snap {
	uint16_t used_idx;                         /* used->idx after the store */
	struct virtq_used_elem ring[QS];
	uint8_t region[512];                       /* the inflight queue region */
};

static struct {
	void *range[2];
	size_t len[2];
	unsigned n;
	struct vu_inflight_queue *q;               /* snapshot this region too */
	size_t qbytes;
	struct snap s[MAX_TRACE];
	unsigned stores;
} tr;

static struct virtq_used *used_ring(void)
{
	return (struct virtq_used *)(mem + (USED_AT - BASE));
}

static struct virtq_avail *avail_ring(void)
{
	return (struct virtq_avail *)(mem + (AVAIL_AT - BASE));
}

static void tr_protect(int prot)
{
	for (unsigned i = 0; i < tr.n; i++)
		if (mprotect(tr.range[i], tr.len[i], prot))
			abort();
}

static void tr_snap(struct snap *s)
{
	s->used_idx = used_ring()->idx;
	memcpy(s->ring, used_ring()->ring, sizeof(s->ring));
	if (tr.q)
		memcpy(s->region, tr.q, tr.qbytes);
}

/* A write to a traced page: let it through, one instruction only. */
static void tr_segv(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	bool ours = false;

	for (unsigned i = 0; i < tr.n; i++)
		ours |= (uint8_t *)si->si_addr >= (uint8_t *)tr.range[i] &&
			(uint8_t *)si->si_addr < (uint8_t *)tr.range[i] + tr.len[i];
	if (!ours || tr.stores == MAX_TRACE)
		abort();
	tr_protect(PROT_READ | PROT_WRITE);
	uc->uc_mcontext.gregs[REG_EFL] |= 0x100;  /* TF: trap after the store */
}

/* The store is done: record the state, protect again. */
static void tr_trap(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	uc->uc_mcontext.gregs[REG_EFL] &= ~0x100LL;
	tr_snap(&tr.s[tr.stores++]);
	tr_protect(PROT_READ);
}

static void tr_start(struct vu_inflight_map *infl)
{
	struct sigaction sa = { .sa_flags = SA_SIGINFO };

	memset(&tr, 0, sizeof(tr));
	tr.range[tr.n] = used_ring();
	tr.len[tr.n++] = PAGE;
	if (infl && infl->map) {
		tr.q = vu_inflight_queue(infl, 0);
		tr.qbytes = vu_inflight_queue_bytes(QS);
		assert_true(tr.qbytes <= sizeof(tr.s[0].region));
		tr.range[tr.n] = infl->map;
		tr.len[tr.n++] = infl->map_len;
	}
	sa.sa_sigaction = tr_segv;
	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
	sa.sa_sigaction = tr_trap;
	assert_int_equal(sigaction(SIGTRAP, &sa, NULL), 0);
	tr_protect(PROT_READ);
}

static void tr_stop(void)
{
	tr_protect(PROT_READ | PROT_WRITE);
	signal(SIGSEGV, SIG_DFL);
	signal(SIGTRAP, SIG_DFL);
}

/* --- a device with one ring --------------------------------------------------------- */

static const struct ios_backend test_backend = { .name = "test", .nqueues = 1 };

struct fixture {
	struct ios s;
	struct vu_dev d;
	struct vu_queue *vq;
	uint16_t avail_idx;
	int infl_fd;
};

static void fixture_init(struct fixture *f, bool event_idx, bool inflight)
{
	uint64_t size;

	memset(f, 0, sizeof(*f));
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	f->s.ops = &test_backend;
	f->d.s = &f->s;
	f->d.mem.n = 1;
	f->d.features = (1ull << VIRTIO_F_VERSION_1) | (event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0);
	f->infl_fd = -1;
	if (inflight)
		assert_int_equal(vu_inflight_create(&f->d.infl, 1, QS, &f->infl_fd, &size), 0);
	f->vq = &f->d.q[0];
	vu_queue_init(&f->d, f->vq, 0);
	f->vq->num = QS;
	f->vq->desc_ua = DESC_AT;
	f->vq->avail_ua = AVAIL_AT;
	f->vq->used_ua = USED_AT;
	f->vq->addr_set = true;
	f->vq->enabled = true;
	f->vq->call_fd = eventfd(0, EFD_NONBLOCK);
	assert_true(f->vq->call_fd >= 0);
	assert_int_equal(vu_queue_start(f->vq), 0);
	assert_int_equal(f->vq->infl != NULL, inflight);
}

static void fixture_fini(struct fixture *f)
{
	close(f->vq->call_fd);
	vu_inflight_unmap(&f->d.infl);
	if (f->infl_fd >= 0)
		close(f->infl_fd);
	munmap(mem, MEM_SIZE);
}

/* The driver makes head available: one writable 64-byte buffer. */
static void post(struct fixture *f, uint16_t head)
{
	struct virtq_desc *d = (struct virtq_desc *)(mem + (DESC_AT - BASE));

	d[head] = (struct virtq_desc){ DATA_AT + 64 * head, 64, VIRTQ_DESC_F_WRITE, 0 };
	avail_ring()->ring[f->avail_idx % QS] = head;
	avail_ring()->idx = ++f->avail_idx;
}

/* The server takes the next chain, which must be head. */
static void take(struct fixture *f, uint16_t head)
{
	struct vring_chain c;

	assert_true(vu_queue_pop(f->vq, &c));
	assert_int_equal(c.head, head);
}

/* How many times the driver was signalled since the last call. */
static uint64_t calls(struct fixture *f)
{
	uint64_t v = 0;

	if (read(f->vq->call_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* --- tests -------------------------------------------------------------------------- */

static const struct virtq_used_elem batch[3] = { { 5, 100 }, { 2, 64 }, { 6, 12 } };

/* The used index goes from 0 to 3 in one store, the last one, when all three elements
 * are already in the ring; single pushes move it once each (the trace sees them). */
static void batch_moves_the_used_index_once(void **state)
{
	struct fixture f;
	unsigned moves = 0;

	fixture_init(&f, false, false);
	for (unsigned i = 0; i < 3; i++) {
		post(&f, (uint16_t)batch[i].id);
		take(&f, (uint16_t)batch[i].id);
	}
	tr_start(NULL);
	vu_queue_push_n(f.vq, batch, 3);
	tr_stop();
	assert_int_equal(tr.stores, 3 * 2 + 1);        /* id and len each, then the index */
	for (unsigned i = 0; i < tr.stores; i++)
		assert_int_equal(tr.s[i].used_idx, i + 1 < tr.stores ? 0 : 3);
	assert_memory_equal(tr.s[tr.stores - 1].ring, batch, sizeof(batch));
	assert_int_equal(f.vq->vr.used_idx, 3);

	/* The same three one at a time: three moves of the index. */
	for (unsigned i = 0; i < 3; i++) {
		post(&f, (uint16_t)batch[i].id);
		take(&f, (uint16_t)batch[i].id);
	}
	tr_start(NULL);
	for (unsigned i = 0; i < 3; i++)
		vu_queue_push(f.vq, (uint16_t)batch[i].id, batch[i].len);
	tr_stop();
	for (unsigned i = 1; i < tr.stores; i++)
		moves += tr.s[i].used_idx != tr.s[i - 1].used_idx;
	assert_int_equal(moves + (tr.s[0].used_idx != 3), 3);
	assert_int_equal(used_ring()->idx, 6);

	/* An empty batch touches nothing. */
	tr_start(NULL);
	vu_queue_push_n(f.vq, batch, 0);
	tr_stop();
	assert_int_equal(tr.stores, 0);
	assert_false(calls(&f));
	fixture_fini(&f);
}

/* What a server started on a copy of the region taken at some instant, with the used
 * index of that instant, resubmits. */
static unsigned recover_at(const struct snap *s, struct vu_inflight_head *out)
{
	uint8_t copy[sizeof(s->region)];
	uint64_t next;
	uint16_t bh;
	unsigned n;

	memcpy(copy, s->region, sizeof(copy));
	assert_int_equal(vu_inflight_recover((struct vu_inflight_queue *)copy, QS, QS,
					     s->used_idx, out, &n, &next, &bh), 0);
	return n;
}

static bool has(const struct vu_inflight_head *out, unsigned n, uint16_t head)
{
	for (unsigned i = 0; i < n; i++)
		if (out[i].head == head)
			return true;
	return false;
}

/* A server killed after any store of a batch (or before the first): the next one
 * resubmits all three chains of the batch (index not moved) or none (moved), never
 * some; chain 1, taken and not completed, always comes back. */
static void a_kill_anywhere_in_a_batch_is_all_or_nothing(void **state)
{
	struct vu_inflight_head out[QS];
	struct snap before;
	struct fixture f;

	fixture_init(&f, false, true);
	/* A completed chain first: the region has a previous batch to link to. */
	post(&f, 3);
	take(&f, 3);
	vu_queue_push(f.vq, 3, 0);
	for (unsigned i = 0; i < 3; i++) {
		post(&f, (uint16_t)batch[i].id);
		take(&f, (uint16_t)batch[i].id);
	}
	post(&f, 1);
	take(&f, 1);
	tr_start(&f.d.infl);
	tr_snap(&before);
	vu_queue_push_n(f.vq, batch, 3);
	tr_stop();
	assert_true(tr.stores > 3 * 2 + 1);            /* the region was written too */
	for (unsigned i = 0; i <= tr.stores; i++) {
		const struct snap *s = i ? &tr.s[i - 1] : &before;
		unsigned n = recover_at(s, out), in = 0;

		for (unsigned k = 0; k < 3; k++)
			in += has(out, n, (uint16_t)batch[k].id);
		assert_true(has(out, n, 1));
		if (s->used_idx == 1) {
			assert_int_equal(in, 3);
			assert_int_equal(n, 4);
		} else {
			assert_int_equal(s->used_idx, 4);
			assert_int_equal(in, 0);
			assert_int_equal(n, 1);
		}
	}
	/* Resubmission order is pop order: the batch as taken, then chain 1. */
	assert_int_equal(recover_at(&before, out), 4);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(out[k].head, batch[k].id);
	assert_int_equal(out[3].head, 1);
	fixture_fini(&f);
}

/* The server takes k new chains and completes them as one batch; the loop's
 * end-of-turn notification follows. */
static void push_batch(struct fixture *f, unsigned k, uint16_t *head)
{
	struct virtq_used_elem e[QS];

	for (unsigned i = 0; i < k; i++) {
		post(f, *head);
		take(f, *head);
		e[i] = (struct virtq_used_elem){ *head, 0 };
		*head = (uint16_t)((*head + 1) % QS);
	}
	vu_queue_push_n(f->vq, e, k);
	vu_queue_notify(f->vq);
}

/* Notification is decided over everything pushed since the driver was last signalled,
 * one signal for a whole batch. */
static void event_idx_is_decided_over_the_batch(void **state)
{
	static const struct {
		uint16_t used_event;          /* what the driver asks for before the batch */
		unsigned k;                   /* the batch */
		uint16_t idx;                 /* used->idx after it */
		uint64_t calls;               /* signals for it */
	} steps[] = {
		/* The first notification is always sent (nothing signalled to compare). */
		{ 0, 1, 1, 1 },
		/* Entry 2 asked for, the middle of the batch 1..3: the index moves 1 -> 4
		 * in one store, past it. One signal. */
		{ 2, 3, 4, 1 },
		/* Entry 6 asked for, a batch 4..5: not reached, no signal. */
		{ 6, 2, 6, 0 },
		/* A batch 6..7 passes it: signalled, though the batch before did not. */
		{ 6, 2, 8, 1 },
		/* Entry 7, behind (the driver is busy): nothing until it asks again. */
		{ 7, 4, 12, 0 },
		/* Entry 10, inside what was pushed (8..11) but never signalled: the batch 12
		 * is judged with 8..12 and signals. */
		{ 10, 1, 13, 1 },
	};
	struct fixture f;
	uint16_t head = 0;

	fixture_init(&f, true, false);
	for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		avail_ring()->ring[QS] = steps[i].used_event;       /* used_event */
		push_batch(&f, steps[i].k, &head);
		assert_int_equal(used_ring()->idx, steps[i].idx);
		assert_int_equal(calls(&f), steps[i].calls);
	}
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(batch_moves_the_used_index_once),
		cmocka_unit_test(a_kill_anywhere_in_a_batch_is_all_or_nothing),
		cmocka_unit_test(event_idx_is_decided_over_the_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
