/*
 * ARINC-653-style ports over the channels of the system file. A port is opened by the
 * name this partition's end has in the system file; the boot information says which
 * region it is and whether this partition is its source or a destination, and the
 * area's own header gives max_message, depth and refresh. Every function returns 0 or
 * a negative PORT_E* code (<bulkhead/ports_core.h>); port_strerror() names it.
 *
 * Sampling: the source overwrites one message; a destination reads the latest, valid
 * while it is no older than refresh (TSC time). Queuing: a FIFO of depth messages from
 * the one source to the one destination. Nothing here waits: a full or empty queue is
 * an error the caller retries. A port that found its channel corrupt stays so.
 */
#ifndef INMATE_PORTS_H
#define INMATE_PORTS_H

#include <stdint.h>
#include <bulkhead/bootinfo.h>
#include <bulkhead/ports_core.h>

enum { PORT_SAMPLING = BH_CHAN_AREA_SAMPLING, PORT_QUEUING = BH_CHAN_AREA_QUEUING };
enum { PORT_SOURCE = BH_PORT_SOURCE, PORT_DESTINATION = BH_PORT_DESTINATION };

_Static_assert((int)PORT_SAMPLING == (int)BH_REGION_SAMPLING &&
	       (int)PORT_QUEUING == (int)BH_REGION_QUEUING,
	       "a channel area's type is its region kind");

struct port {
	volatile struct bh_chan_header *h;
	volatile uint8_t *area;
	char name[BH_NAME_MAX + 1];
	uint8_t type, role;
	int broken;                 /* found corrupt: every later call says so */
	uint32_t max_message, depth;
	uint64_t refresh_ns, refresh_cycles;
	uint64_t own;               /* queuing: our tail (source) or head (destination);
				     * sampling source: the sequence we last wrote */
};

struct port_sample {
	uint32_t length;            /* bytes of the message */
	int valid;                  /* no older than refresh */
	uint64_t age_us;            /* 0 when the source's stamp is ahead of our TSC */
};

/* Open this partition's port `name` as `type` (PORT_SAMPLING, PORT_QUEUING) from the
 * `role` (PORT_SOURCE, PORT_DESTINATION) side. -PORT_ENOENT: no such port here;
 * -PORT_EROLE: this partition is the other end; -PORT_ETYPE: the other kind of
 * channel; -PORT_EHEADER: the area is not a channel that fits its region;
 * -PORT_ECORRUPT: a queue whose counters break the rules. */
int port_open(struct port *p, const char *name, int type, int role);

/* Sampling source: replace the message (len <= max_message). */
int sampling_write(struct port *p, const void *msg, uint32_t len);

/* Sampling destination: the latest message into buf (cap bytes), s filled in.
 * -PORT_EEMPTY: never written; -PORT_ETOOBIG: cap < s->length; -PORT_EBUSY: the source
 * was writing at every try (try again). */
int sampling_read(struct port *p, void *buf, uint32_t cap, struct port_sample *s);

/* Queuing source: append a message. -PORT_EFULL: depth messages wait. */
int queuing_send(struct port *p, const void *msg, uint32_t len);

/* Queuing destination: take the oldest message into buf (cap bytes), its length in
 * *len. -PORT_EEMPTY: none waits; -PORT_ETOOBIG: cap < *len, the message stays. */
int queuing_receive(struct port *p, void *buf, uint32_t cap, uint32_t *len);

const char *port_strerror(int err);

#endif
