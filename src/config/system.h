/*
 * The compiled system: what a system file says, with defaults filled in, references
 * resolved to indices and derived facts (memory maps, PCI slots, MACs) made explicit.
 * Produced once by cfg_load(); everything downstream trusts it and never re-validates.
 */
#ifndef BH_SYSTEM_H
#define BH_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"

#define BH_MAX_NAME        32
#define BH_MAX_CPUS        1024
#define BH_MAX_PARTITIONS  64
#define BH_MAX_SERVERS     32
#define BH_MAX_NETWORKS    32
#define BH_MAX_REGIONS     64
#define BH_MAX_CHANNELS    128
#define BH_MAX_DISKS       16    /* per blk server */
#define BH_MAX_DEVICES     16    /* per partition */
#define BH_MAX_SERVER_CONNS 64   /* devices one I/O server serves (its --conn limit) */
#define BH_MAX_SLOTS       256
#define BH_MAX_PEERS       BH_MAX_PARTITIONS
#define BH_MIN_SLOT_NS     100000ULL          /* 100us: shorter slots cannot be honoured */
#define BH_MEM_ALIGN       (2ULL << 20)
#define BH_MAX_MESSAGE     (1u << 20)
#define BH_MAX_DEPTH       4096
#define BH_MAX_MEMMAP      (2 + BH_MAX_REGIONS + BH_MAX_CHANNELS)
#define BH_DEFAULT_BURST   (64ULL << 10)
#define BH_MIN_BURST       1518ULL            /* one Ethernet frame must fit */
#define BH_SECTOR          512ULL

struct bh_cpuset {
	uint64_t bits[BH_MAX_CPUS / 64];
};

static inline void bh_cpuset_set(struct bh_cpuset *s, unsigned cpu)
{
	s->bits[cpu / 64] |= 1ULL << (cpu % 64);
}

static inline bool bh_cpuset_has(const struct bh_cpuset *s, unsigned cpu)
{
	return cpu < BH_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}

enum bh_sched { BH_SCHED_DEDICATED, BH_SCHED_CYCLIC };
enum bh_class { BH_CLASS_CONSOLE, BH_CLASS_RNG, BH_CLASS_BLK, BH_CLASS_NET };
enum bh_restart { BH_RESTART_ALWAYS, BH_RESTART_NEVER };
enum bh_engine { BH_ENGINE_KVM, BH_ENGINE_QEMU };
enum bh_isolation { BH_ISOLATION_WINDOW, BH_ISOLATION_SHARED };
enum bh_on_fault { BH_FAULT_HALT, BH_FAULT_RESTART, BH_FAULT_IGNORE };
enum bh_chan_type { BH_CHAN_SAMPLING, BH_CHAN_QUEUING };

extern const char *const bh_sched_names[];
extern const char *const bh_class_names[];
extern const char *const bh_restart_names[];
extern const char *const bh_engine_names[];
extern const char *const bh_isolation_names[];
extern const char *const bh_on_fault_names[];
extern const char *const bh_chan_type_names[];

/* A reference by name to another object; idx is -1 until resolved. */
struct bh_ref {
	char *name;
	int idx;
	struct bh_loc at;
};

struct bh_slot {
	struct bh_ref partition;
	uint64_t start_ns, duration_ns;
	struct bh_loc at, start_at, duration_at;
};

struct bh_disk {
	char *name;
	char *file;             /* resolved against the system file's directory */
	uint64_t size;          /* from the file when `size` is not given */
	bool create;
	bool exists;            /* the file exists now */
	struct bh_loc at, name_at, file_at, size_at;
};

struct bh_ioserver {
	char *name;
	enum bh_class class;
	enum bh_restart restart;
	bool standby;
	struct bh_disk *disks;
	unsigned ndisks;
	struct bh_loc at, name_at, class_at, standby_at, disks_at;
};

struct bh_network {
	char *name;
	struct bh_ref server;
	char *uplink_tap;       /* a TAP interface joined to the network; NULL: none */
	struct bh_loc at, name_at, uplink_at;
};

struct bh_region {
	char *name;
	uint64_t size;
	struct bh_ref *peers;
	unsigned npeers;
	struct bh_loc at, name_at, size_at, peers_at;
};

struct bh_port {
	struct bh_ref partition;
	char *port;
	struct bh_loc at, port_at;
};

struct bh_channel {
	char *name;
	enum bh_chan_type type;
	uint64_t max_message;
	uint64_t refresh_ns;    /* sampling; 0 when not given */
	uint32_t depth;         /* queuing */
	struct bh_port source;
	struct bh_port *dests;
	unsigned ndests;
	uint64_t size;          /* derived: bytes of the channel's shared memory */
	struct bh_loc at, name_at, type_at, max_message_at, refresh_at, depth_at, dests_at;
};

struct bh_health {
	enum bh_on_fault on_fault;
	uint32_t max_restarts;
	uint64_t watchdog_ns;   /* 0: no watchdog */
	struct bh_loc at, max_restarts_at, watchdog_at;
};

struct bh_rate {
	uint64_t bytes_per_sec, burst;
	struct bh_loc at, bytes_per_sec_at, burst_at;
};

/* Same order as enum bh_class: a device's type must equal its server's class. */
enum bh_device_type { BH_DEV_CONSOLE, BH_DEV_RNG, BH_DEV_BLK, BH_DEV_NET };
extern const char *const bh_device_type_names[];

struct bh_device {
	enum bh_device_type type;
	struct bh_ref server;   /* net: derived from the network */
	struct bh_ref network;  /* net only */
	struct bh_ref disk;     /* blk only: index into the server's disks */
	uint64_t offset, size;  /* blk slice; size defaults to the rest of the disk */
	bool readonly;
	uint8_t mac[6];         /* net; derived when not given */
	struct bh_rate rate;
	unsigned pci_slot;      /* derived: device number on PCI bus 0 */
	struct bh_loc at, type_at, offset_at, size_at, readonly_at, mac_at;
};

enum bh_map_kind { BH_MAP_RAM, BH_MAP_SHARED, BH_MAP_SAMPLING, BH_MAP_QUEUING };
extern const char *const bh_map_kind_names[];

/* One entry of a partition's guest-physical memory map. */
struct bh_map_entry {
	enum bh_map_kind kind;
	const char *name;       /* region or channel name; "ram" for RAM */
	int object;             /* index of the region or channel; -1 for RAM */
	uint64_t gpa, size;
	bool writable;
};

struct bh_partition {
	char *name;
	char *image, *kernel, *initrd, *cmdline;   /* paths resolved; NULL when absent */
	enum bh_engine engine;
	struct bh_cpuset cpus;
	unsigned ncpus;
	uint64_t memory;
	enum bh_isolation isolation;
	struct bh_health health;
	struct bh_device *devices;
	unsigned ndevices;
	struct bh_map_entry memmap[BH_MAX_MEMMAP];  /* derived */
	unsigned nmemmap;
	struct bh_loc at, name_at, image_at, kernel_at, initrd_at, cmdline_at, engine_at,
		cpus_at, memory_at, isolation_at, devices_at;
};

struct bh_system {
	char *file;             /* the system file as given */
	char *dir;              /* its directory: relative paths are resolved from here */
	char *name;
	struct bh_cpuset cpus;  /* defaults to every online CPU */
	unsigned ncpus;
	enum bh_sched scheduling;
	uint64_t major_frame_ns;
	struct bh_slot *slots;
	unsigned nslots;
	char *log_dir, *control_socket;

	struct bh_ioserver *servers;
	unsigned nservers;
	struct bh_network *networks;
	unsigned nnetworks;
	struct bh_region *regions;
	unsigned nregions;
	struct bh_channel *channels;
	unsigned nchannels;
	struct bh_partition *partitions;
	unsigned npartitions;

	struct bh_loc file_at, at, name_at, cpus_at, scheduling_at, plan_at, major_frame_at,
		slots_at, log_dir_at, partitions_at;
};

/* What the checker needs to know about the machine it runs on. */
struct bh_host {
	struct bh_cpuset online;
	unsigned ncpus;
	uint64_t mem_bytes;
};

/* Reads the running machine's CPUs and memory. */
int cfg_host_probe(struct bh_host *host);

/* Reads a file of at most YTREE_MAX_BYTES + 1 bytes (so oversize files are seen as
 * such) into a NUL-terminated buffer. Returns 0 or -errno. */
int cfg_read(const char *path, char **text, size_t *len);

/* Loads, checks and compiles a system file. Every problem goes to d. Returns the system
 * (even when d has errors, for tooling) or NULL when the file could not be parsed at all.
 * The caller must treat the system as unusable when d->errors > 0. */
struct bh_system *cfg_load_file(const char *path, const struct bh_host *host, struct diag *d);
/* The same on text already in memory; path names the file in messages and anchors
 * relative paths. */
struct bh_system *cfg_load_text(const char *path, const char *text, size_t len,
				const struct bh_host *host, struct diag *d);
void cfg_free(struct bh_system *sys);

/* Finds an object by name; -1 when absent. */
int cfg_find_partition(const struct bh_system *sys, const char *name);
int cfg_find_server(const struct bh_system *sys, const char *name);

/* The compiled system as JSON text (malloc'd, caller frees). */
char *cfg_to_json(const struct bh_system *sys);

#endif
