/*
 * The rules a channel end applies to what it reads from the channel area (see
 * channels.h): every counter and length there may have been written by another
 * partition, so each is checked against this end's own knowledge before it is used
 * as an index or a size. Pure functions on values already read, so the inmate ports
 * API (inmates/lib/ports.c) and a host unit test (tests/unit/test_ports_core.c) share
 * them. Functions return 0 or a negative PORT_E* code.
 */
#ifndef BULKHEAD_PORTS_CORE_H
#define BULKHEAD_PORTS_CORE_H

#include <stdint.h>

#include "channels.h"

enum port_error {
	PORT_OK = 0,
	PORT_ENOENT,      /* this partition has no port of that name */
	PORT_EROLE,       /* the port's role does not fit the call */
	PORT_ETYPE,       /* a sampling port used as queuing, or the other way round */
	PORT_EHEADER,     /* the area's header does not describe a channel that fits it */
	PORT_EFULL,       /* queuing: depth messages wait already */
	PORT_EEMPTY,      /* queuing: nothing waits; sampling: nothing written yet */
	PORT_ETOOBIG,     /* longer than max_message, or than the caller's buffer */
	PORT_ECORRUPT,    /* the channel's state breaks its rules: the other end wrote it */
	PORT_EBUSY,       /* sampling: the source was writing at every look */
	PORT_EINVAL,      /* a port that is not open */
};

/* The static header, copied out of the area once, against the area's size as the
 * monitor gave it (boot information): a header that promises more than the area holds,
 * or a type other than the caller's, is refused. */
static inline int bh_chan_check_header(const struct bh_chan_header *h, uint32_t type,
				       uint64_t area_size)
{
	if (h->magic != BH_CHAN_MAGIC || h->area_size != area_size || h->max_message == 0 ||
	    h->max_message > BH_CHAN_MAX_MESSAGE)
		return -PORT_EHEADER;
	if (h->type != BH_CHAN_AREA_SAMPLING && h->type != BH_CHAN_AREA_QUEUING)
		return -PORT_EHEADER;
	if (h->type == BH_CHAN_AREA_QUEUING) {
		if (h->depth == 0 || h->depth > BH_CHAN_MAX_DEPTH ||
		    BH_QUEUING_SIZE(h->max_message, h->depth) > area_size)
			return -PORT_EHEADER;
	} else if (h->refresh_ns == 0 || BH_SAMPLING_SIZE(h->max_message) > area_size) {
		return -PORT_EHEADER;
	}
	return h->type == type ? 0 : -PORT_ETYPE;
}

/* Byte offset of the slot for a free-running counter; inside the area once the header
 * passed bh_chan_check_header. */
static inline uint64_t bh_queue_slot(uint64_t counter, uint32_t depth, uint32_t max_message)
{
	return BH_CHAN_HEADER + (counter % depth) * BH_QUEUING_SLOT(max_message);
}

/* Messages waiting, when tail and head obey the rule 0 <= tail - head <= depth (in
 * modular arithmetic, so the counters may wrap); otherwise -PORT_ECORRUPT. */
static inline int64_t bh_queue_waiting(uint64_t head, uint64_t tail, uint32_t depth)
{
	return tail - head <= depth ? (int64_t)(tail - head) : -PORT_ECORRUPT;
}

/* The source may write a slot. `own` is the tail it last wrote: only the source writes
 * the tail, so a shared tail that differs was written by someone else. */
static inline int bh_queue_send_check(uint64_t own, uint64_t tail, uint64_t head,
				      uint32_t depth)
{
	int64_t n = bh_queue_waiting(head, own, depth);

	if (tail != own || n < 0)
		return -PORT_ECORRUPT;
	return n == depth ? -PORT_EFULL : 0;
}

/* The destination may read a slot; `own` is the head it last wrote. */
static inline int bh_queue_recv_check(uint64_t own, uint64_t head, uint64_t tail,
				      uint32_t depth)
{
	int64_t n = bh_queue_waiting(own, tail, depth);

	if (head != own || n < 0)
		return -PORT_ECORRUPT;
	return n == 0 ? -PORT_EEMPTY : 0;
}

/* A message length read from the area (a slot's length word, a sampling length). */
static inline int bh_chan_check_length(uint64_t len, uint32_t max_message)
{
	return len <= max_message ? 0 : -PORT_ECORRUPT;
}

/* refresh in TSC cycles at khz, without a 128-bit product; saturates. */
static inline uint64_t bh_ns_to_cycles(uint64_t ns, uint64_t khz)
{
	uint64_t ms = ns / 1000000, rest = ns % 1000000;

	if (khz && ms > UINT64_MAX / khz)
		return UINT64_MAX;
	return ms * khz + rest * khz / 1000000;
}

/* A sample is valid while no older than refresh. A stamp ahead of `now` (a source whose
 * TSC runs ahead of ours) counts as age 0. */
static inline int bh_sample_valid(uint64_t now, uint64_t stamp, uint64_t refresh_cycles)
{
	return now < stamp || now - stamp <= refresh_cycles;
}

#endif
