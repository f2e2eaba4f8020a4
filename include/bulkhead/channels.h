/*
 * Memory layout of ARINC-653-style channels: each channel is a shared memory area that
 * the source writes and the destinations read. The configuration checker sizes the
 * areas with these macros, the supervisor writes the static half of the header when it
 * allocates the area (so the area describes itself), and the inmate ports API
 * (inmates/lib/ports.c, checks in <bulkhead/ports_core.h>) lays messages out in it.
 * Freestanding (<stdint.h> only): the host and the inmates both include it.
 *
 *   sampling:  header | message (max_message bytes, 8-byte aligned)
 *   queuing:   header | depth slots of (uint64_t length | message, 8-byte aligned)
 */
#ifndef BULKHEAD_CHANNELS_H
#define BULKHEAD_CHANNELS_H

#include <stddef.h>
#include <stdint.h>

#define BH_CHAN_HEADER       64ULL                    /* one cache line of control data */
#define BH_CHAN_ALIGN8(x)    (((x) + 7ULL) & ~7ULL)
#define BH_CHAN_PAGE(x)      (((x) + 4095ULL) & ~4095ULL)

/* Sampling: header (sequence, length, timestamp) then one message slot. */
#define BH_SAMPLING_SIZE(max_message) \
	BH_CHAN_PAGE(BH_CHAN_HEADER + BH_CHAN_ALIGN8(max_message))

/* Bytes of one queuing slot: a length word, then the message. */
#define BH_QUEUING_SLOT(max_message) (8ULL + BH_CHAN_ALIGN8(max_message))

/* Queuing: header (head, tail) then `depth` slots, each a length word and the message. */
#define BH_QUEUING_SIZE(max_message, depth) \
	BH_CHAN_PAGE(BH_CHAN_HEADER + (unsigned long long)(depth) * BH_QUEUING_SLOT(max_message))

/* The system file's limits (the checker's BH_MAX_MESSAGE and BH_MAX_DEPTH). */
#define BH_CHAN_MAX_MESSAGE  (1u << 20)
#define BH_CHAN_MAX_DEPTH    4096u

#define BH_CHAN_MAGIC        0x4e414843u              /* "CHAN" little-endian */

/* Same values as the boot information's region kinds (BH_REGION_SAMPLING, _QUEUING). */
enum { BH_CHAN_AREA_SAMPLING = 2, BH_CHAN_AREA_QUEUING = 3 };

/*
 * The first 32 bytes are static: written once by the supervisor from the system file,
 * never by the ends. The rest is the runtime state. Whoever can write the area (a
 * sampling source, both ends of a queuing channel) could rewrite any of it, so every
 * end checks what it reads against the area's size from its boot information.
 */
struct bh_chan_header {
	uint32_t magic;           /* BH_CHAN_MAGIC */
	uint32_t type;            /* BH_CHAN_AREA_SAMPLING or BH_CHAN_AREA_QUEUING */
	uint32_t max_message;     /* bytes */
	uint32_t depth;           /* queuing: slots; sampling: 0 */
	uint64_t refresh_ns;      /* sampling: a message older than this is invalid; queuing: 0 */
	uint64_t area_size;       /* bytes of the whole area, header included */
	union {
		struct {
			uint64_t seq;     /* even: stable; odd: the source is writing */
			uint32_t length;  /* bytes of the current message */
			uint32_t pad;
			uint64_t stamp;   /* source's TSC when it wrote the message */
		} sampling;           /* seq 0: nothing written yet */
		struct {
			/* Free-running counters; slot = counter % depth. tail - head is the
			 * number of messages waiting, at most depth. */
			uint64_t head;    /* written by the destination: next slot to read */
			uint64_t tail;    /* written by the source: next slot to write */
		} queuing;
	};
	uint8_t  reserved[8];
};

_Static_assert(sizeof(struct bh_chan_header) == BH_CHAN_HEADER, "one cache line");
_Static_assert(offsetof(struct bh_chan_header, sampling.seq) == 32, "static half is 32 bytes");
_Static_assert(offsetof(struct bh_chan_header, queuing.tail) == 40, "tail after head");
_Static_assert(offsetof(struct bh_chan_header, sampling.stamp) == 48, "sampling layout");
_Static_assert(BH_QUEUING_SLOT(1) == 16 && BH_QUEUING_SLOT(8) == 16 && BH_QUEUING_SLOT(9) == 24,
	       "a slot is a length word and the message rounded up to 8 bytes");

#endif
