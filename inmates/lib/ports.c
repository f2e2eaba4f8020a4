/*
 * Sampling and queuing ports over channel areas (layout: <bulkhead/channels.h>).
 *
 * The other end is another partition: every counter and length is read from the area
 * once, into a local, checked by <bulkhead/ports_core.h>, and only then used. The static
 * header is copied and checked at open; later calls use the copy.
 *
 * Ordering. x86 keeps loads in order with loads, stores with stores, and a load before
 * a later store; only a store followed by a load may pass. The protocols here need no
 * more than that:
 *  - queuing: the source fills a slot, then stores the tail; the destination loads the
 *    tail, then the slot, then stores the head; the source loads the head before it
 *    overwrites a slot. Each pair is store-store, load-load or load-store.
 *  - sampling (a seqlock): the source stores seq odd, the message, seq even; a reader
 *    loads seq, the message, seq again and keeps the copy only if both were the same
 *    even value. Store-store and load-load again.
 * So a compiler barrier between the steps is all that is needed, plus volatile accesses
 * so each counter is loaded or stored exactly once. memcpy's string instructions may
 * order their own accesses freely (Intel SDM vol. 3, "Fast-String Operation and
 * Out-of-Order Stores"), which is why the counters are separate, ordinary moves
 * after (or before) the copy.
 */
#include <inmate/ports.h>
#include <inmate/runtime.h>
#include <inmate/string.h>
#include <inmate/tsc.h>

#define SAMPLING_TRIES  100     /* a source preempted mid-write longer makes it EBUSY */

#define barrier()       __asm__ volatile("" : : : "memory")

static const struct bh_bootinfo_port *find_port(const char *name, unsigned *index)
{
	const struct bh_bootinfo *bi = bh_bootinfo();

	for (unsigned i = 0; i < bi->nr_regions; i++)
		if (bi->ports[i].role && !strcmp(bi->ports[i].name, name)) {
			*index = i;
			return &bi->ports[i];
		}
	return 0;
}

int port_open(struct port *p, const char *name, int type, int role)
{
	const struct bh_bootinfo *bi = bh_bootinfo();
	const struct bh_bootinfo_port *bp;
	struct bh_chan_header h;
	unsigned i;
	int err;

	memset(p, 0, sizeof(*p));
	bp = find_port(name, &i);
	if (!bp)
		return -PORT_ENOENT;
	if (bp->role != role)
		return -PORT_EROLE;
	p->h = (volatile struct bh_chan_header *)bi->regions[i].gpa;
	p->area = (volatile uint8_t *)bi->regions[i].gpa;
	memcpy(&h, (const void *)p->h, sizeof(h));
	err = bh_chan_check_header(&h, (uint32_t)type, bi->regions[i].size);
	if (err)
		return err;
	memcpy(p->name, bp->name, sizeof(p->name));
	p->type = (uint8_t)type;
	p->role = (uint8_t)role;
	p->max_message = h.max_message;
	p->depth = h.depth;
	p->refresh_ns = h.refresh_ns;
	p->refresh_cycles = bh_ns_to_cycles(h.refresh_ns, tsc_khz());  /* bootinfo's first */
	/* A restarted end carries on from the counters it left: the area outlives it. */
	if (type == PORT_QUEUING) {
		uint64_t head = p->h->queuing.head, tail = p->h->queuing.tail;

		if (bh_queue_waiting(head, tail, p->depth) < 0)
			return -PORT_ECORRUPT;
		p->own = role == PORT_SOURCE ? tail : head;
	} else if (role == PORT_SOURCE) {
		p->own = (p->h->sampling.seq + 1) & ~1ULL;
	}
	return 0;
}

static int check_port(const struct port *p, int type, int role)
{
	if (!p->h)
		return -PORT_EINVAL;
	if (p->type != type)
		return -PORT_ETYPE;
	if (p->role != role)
		return -PORT_EROLE;
	return p->broken ? -PORT_ECORRUPT : 0;
}

static int broken(struct port *p)
{
	p->broken = 1;
	return -PORT_ECORRUPT;
}

int sampling_write(struct port *p, const void *msg, uint32_t len)
{
	int err = check_port(p, PORT_SAMPLING, PORT_SOURCE);

	if (err)
		return err;
	if (len > p->max_message)
		return -PORT_ETOOBIG;
	p->h->sampling.seq = p->own + 1;
	barrier();
	memcpy((void *)(p->area + BH_CHAN_HEADER), msg, len);
	p->h->sampling.length = len;
	p->h->sampling.stamp = tsc_now();
	barrier();
	p->own += 2;
	p->h->sampling.seq = p->own;
	return 0;
}

int sampling_read(struct port *p, void *buf, uint32_t cap, struct port_sample *s)
{
	int err = check_port(p, PORT_SAMPLING, PORT_DESTINATION);

	if (err)
		return err;
	for (unsigned t = 0; t < SAMPLING_TRIES; t++, cpu_relax()) {
		uint64_t seq = p->h->sampling.seq, stamp, now;
		uint32_t len;

		if (seq == 0)
			return -PORT_EEMPTY;
		if (seq & 1)
			continue;
		barrier();
		len = p->h->sampling.length;
		stamp = p->h->sampling.stamp;
		err = bh_chan_check_length(len, p->max_message);
		if (!err && len > cap)
			err = -PORT_ETOOBIG;
		if (!err)
			memcpy(buf, (const void *)(p->area + BH_CHAN_HEADER), len);
		barrier();
		if (p->h->sampling.seq != seq)
			continue;       /* torn: the source wrote meanwhile */
		s->length = len;
		if (err)
			return err == -PORT_ECORRUPT ? broken(p) : err;
		now = tsc_now();
		s->valid = bh_sample_valid(now, stamp, p->refresh_cycles);
		s->age_us = now > stamp ? tsc_to_us(now - stamp) : 0;
		return 0;
	}
	return -PORT_EBUSY;
}

int queuing_send(struct port *p, const void *msg, uint32_t len)
{
	int err = check_port(p, PORT_QUEUING, PORT_SOURCE);
	volatile uint8_t *slot;

	if (err)
		return err;
	if (len > p->max_message)
		return -PORT_ETOOBIG;
	err = bh_queue_send_check(p->own, p->h->queuing.tail, p->h->queuing.head, p->depth);
	if (err)
		return err == -PORT_ECORRUPT ? broken(p) : err;
	barrier();
	slot = p->area + bh_queue_slot(p->own, p->depth, p->max_message);
	*(volatile uint64_t *)slot = len;
	memcpy((void *)(slot + 8), msg, len);
	barrier();
	p->own++;
	p->h->queuing.tail = p->own;
	return 0;
}

int queuing_receive(struct port *p, void *buf, uint32_t cap, uint32_t *len)
{
	int err = check_port(p, PORT_QUEUING, PORT_DESTINATION);
	volatile uint8_t *slot;
	uint64_t n;

	if (err)
		return err;
	err = bh_queue_recv_check(p->own, p->h->queuing.head, p->h->queuing.tail, p->depth);
	if (err)
		return err == -PORT_ECORRUPT ? broken(p) : err;
	barrier();
	slot = p->area + bh_queue_slot(p->own, p->depth, p->max_message);
	n = *(volatile uint64_t *)slot;
	if (bh_chan_check_length(n, p->max_message))
		return broken(p);
	*len = (uint32_t)n;
	if (n > cap)
		return -PORT_ETOOBIG;
	memcpy(buf, (const void *)(slot + 8), n);
	barrier();
	p->own++;
	p->h->queuing.head = p->own;
	return 0;
}

const char *port_strerror(int err)
{
	static const char *const names[] = {
		[PORT_OK] = "success",
		[PORT_ENOENT] = "no such port in this partition",
		[PORT_EROLE] = "wrong role: this partition is the other end",
		[PORT_ETYPE] = "wrong type of channel",
		[PORT_EHEADER] = "the channel's header does not fit its area",
		[PORT_EFULL] = "queue full",
		[PORT_EEMPTY] = "empty",
		[PORT_ETOOBIG] = "message too long",
		[PORT_ECORRUPT] = "corrupt channel",
		[PORT_EBUSY] = "source busy writing",
		[PORT_EINVAL] = "port not open",
	};
	unsigned e = err < 0 ? (unsigned)-err : (unsigned)err;

	return e < sizeof(names) / sizeof(names[0]) && names[e] ? names[e] : "unknown error";
}
