/*
 * Memory layout of ARINC-653-style channels: each channel is a shared memory area that
 * the source writes and the destinations read. The configuration checker sizes the
 * areas with these macros and the inmate ports API lays them out the same way.
 */
#ifndef BULKHEAD_CHANNELS_H
#define BULKHEAD_CHANNELS_H

#define BH_CHAN_HEADER       64ULL                    /* one cache line of control data */
#define BH_CHAN_ALIGN8(x)    (((x) + 7ULL) & ~7ULL)
#define BH_CHAN_PAGE(x)      (((x) + 4095ULL) & ~4095ULL)

/* Sampling: header (sequence, length, timestamp) then one message slot. */
#define BH_SAMPLING_SIZE(max_message) \
	BH_CHAN_PAGE(BH_CHAN_HEADER + BH_CHAN_ALIGN8(max_message))

/* Queuing: header (head, tail) then `depth` slots, each a length word and the message. */
#define BH_QUEUING_SIZE(max_message, depth) \
	BH_CHAN_PAGE(BH_CHAN_HEADER + (unsigned long long)(depth) * (8ULL + BH_CHAN_ALIGN8(max_message)))

#endif
