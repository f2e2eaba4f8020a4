/*
 * Boot information handed to a bare-metal partition: the monitor fills one page at
 * BH_BOOTINFO_ADDR and passes its address in RDI. The layout is versioned: fields are
 * only ever appended, `size` tells how much the monitor filled in.
 */
#ifndef BULKHEAD_BOOTINFO_H
#define BULKHEAD_BOOTINFO_H

#include <stdint.h>

#define BH_BOOTINFO_MAGIC    0x4f4f424b48554c42ULL  /* "BLUHKBOO" little-endian */
#define BH_BOOTINFO_VERSION  2
#define BH_NAME_MAX          32
#define BH_CMDLINE_MAX       2048
#define BH_BOOTINFO_REGIONS  16

/* A shared region or channel mapped into the partition. */
struct bh_bootinfo_region {
	char     name[BH_NAME_MAX + 1];
	uint8_t  kind;            /* BH_REGION_SHARED, BH_REGION_SAMPLING, BH_REGION_QUEUING */
	uint8_t  writable;
	uint8_t  pad[6];
	uint64_t gpa;
	uint64_t size;
};

enum { BH_REGION_SHARED = 1, BH_REGION_SAMPLING = 2, BH_REGION_QUEUING = 3 };

/* Version 2: this partition's end of a channel, parallel to regions[] (same index). A
 * shared region has no port: name "" and role BH_PORT_NONE. */
struct bh_bootinfo_port {
	char     name[BH_NAME_MAX + 1];  /* the port name the system file gives this end */
	uint8_t  role;            /* BH_PORT_NONE, BH_PORT_SOURCE, BH_PORT_DESTINATION */
	uint8_t  pad[6];
};

enum { BH_PORT_NONE = 0, BH_PORT_SOURCE = 1, BH_PORT_DESTINATION = 2 };

struct bh_bootinfo {
	uint64_t magic;
	uint32_t version;
	uint32_t size;            /* bytes of this struct the monitor filled in */
	uint32_t partition_id;    /* index of the partition in the system file */
	uint32_t nr_vcpus;
	uint64_t mem_size;        /* RAM bytes from guest-physical 0 (and 4 GiB upwards) */
	uint64_t tsc_khz;         /* 0 when the monitor does not know it */
	char     name[BH_NAME_MAX + 1];
	char     pad[7];
	char     cmdline[BH_CMDLINE_MAX];  /* NUL-terminated arguments */
	uint32_t nr_regions;
	uint32_t pad2;
	struct bh_bootinfo_region regions[BH_BOOTINFO_REGIONS];
	/* version 2 */
	struct bh_bootinfo_port ports[BH_BOOTINFO_REGIONS];
};

_Static_assert(sizeof(struct bh_bootinfo_region) == 64, "version 1 layout");
_Static_assert(__builtin_offsetof(struct bh_bootinfo, regions) == 2136, "version 1 layout");
_Static_assert(sizeof(struct bh_bootinfo_port) == 40, "version 2 layout");

_Static_assert(sizeof(struct bh_bootinfo) <= 4096, "bootinfo must fit one page");

#endif
