/*
 * The system file's keys: one table per kind of mapping. This is the single place that
 * says which keys exist, their types and which are required; docs/system-file.md
 * describes the same keys for people.
 */
#include <stddef.h>

#include "config/schema_system.h"
#include "config/system.h"

const char *const bh_sched_names[] = { "dedicated", "cyclic", NULL };
const char *const bh_class_names[] = { "console", "rng", "blk", "net", NULL };
const char *const bh_restart_names[] = { "always", "never", NULL };
const char *const bh_engine_names[] = { "kvm", "qemu", NULL };
const char *const bh_isolation_names[] = { "window", "shared", NULL };
const char *const bh_on_fault_names[] = { "halt", "restart", "ignore", NULL };
const char *const bh_chan_type_names[] = { "sampling", "queuing", NULL };
const char *const bh_device_type_names[] = { "console", "rng", "blk", "net", NULL };
const char *const bh_map_kind_names[] = { "ram", "shared", "sampling", "queuing", NULL };

#define VAL(S, m)   .off = offsetof(S, m)
#define AT(S, m)    .at_off = offsetof(S, m)
#define NOAT        .at_off = -1
#define REQ         .required = true
#define COUNT(S, m) .count_off = offsetof(S, m)

static void init_ref(struct bh_ref *r)
{
	r->idx = -1;
}

/* ---- system ---------------------------------------------------------------------- */

#define S struct bh_slot
static void slot_init(void *o)
{
	init_ref(&((S *)o)->partition);
}
static const struct field slot_fields[] = {
	{ .key = "partition", .type = FT_REF, VAL(S, partition), NOAT, REQ },
	{ .key = "start", .type = FT_TIME, VAL(S, start_ns), AT(S, start_at), REQ },
	{ .key = "duration", .type = FT_TIME, VAL(S, duration_ns), AT(S, duration_at), REQ },
	{ 0 }
};
static const struct schema slot_schema = {
	"plan slot", sizeof(S), offsetof(S, at), slot_init, slot_fields
};
#undef S

/* The plan is a nested mapping whose fields live directly in struct bh_system. */
#define S struct bh_system
static const struct field plan_fields[] = {
	{ .key = "major_frame", .type = FT_TIME, VAL(S, major_frame_ns), AT(S, major_frame_at), REQ },
	{ .key = "slots", .type = FT_LIST, VAL(S, slots), AT(S, slots_at), REQ,
	  .sub = &slot_schema, COUNT(S, nslots), .max = BH_MAX_SLOTS },
	{ 0 }
};
static const struct schema plan_schema = {
	"plan", sizeof(S), offsetof(S, plan_at), NULL, plan_fields
};

static const struct field system_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "cpus", .type = FT_CPUS, VAL(S, cpus), AT(S, cpus_at), COUNT(S, ncpus) },
	{ .key = "scheduling", .type = FT_ENUM, VAL(S, scheduling), AT(S, scheduling_at),
	  .enum_names = bh_sched_names },
	{ .key = "plan", .type = FT_MAP, .off = 0, NOAT, .sub = &plan_schema },
	{ .key = "log_dir", .type = FT_PATH, VAL(S, log_dir), AT(S, log_dir_at) },
	{ .key = "control_socket", .type = FT_PATH, VAL(S, control_socket), NOAT },
	{ 0 }
};
const struct schema cfg_system_section = {
	"system section", sizeof(S), offsetof(S, at), NULL, system_fields
};
#undef S

/* ---- io_servers ------------------------------------------------------------------ */

#define S struct bh_disk
static const struct field disk_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "file", .type = FT_PATH, VAL(S, file), AT(S, file_at), REQ },
	{ .key = "size", .type = FT_SIZE, VAL(S, size), AT(S, size_at) },
	{ .key = "create", .type = FT_BOOL, VAL(S, create), NOAT },
	{ 0 }
};
static const struct schema disk_schema = { "disk", sizeof(S), offsetof(S, at), NULL, disk_fields };
#undef S

#define S struct bh_ioserver
static const struct field server_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "class", .type = FT_ENUM, VAL(S, class), AT(S, class_at), REQ,
	  .enum_names = bh_class_names },
	{ .key = "restart", .type = FT_ENUM, VAL(S, restart), NOAT, .enum_names = bh_restart_names },
	{ .key = "standby", .type = FT_BOOL, VAL(S, standby), AT(S, standby_at) },
	{ .key = "disks", .type = FT_LIST, VAL(S, disks), AT(S, disks_at), .sub = &disk_schema,
	  COUNT(S, ndisks), .max = BH_MAX_DISKS },
	{ 0 }
};
static const struct schema server_schema = {
	"I/O server", sizeof(S), offsetof(S, at), NULL, server_fields
};
#undef S

/* ---- networks, shared_regions ---------------------------------------------------- */

#define S struct bh_network
static void network_init(void *o)
{
	init_ref(&((S *)o)->server);
}
static const struct field uplink_fields[] = {
	{ .key = "tap", .type = FT_STRING, VAL(S, uplink_tap), NOAT, REQ },
	{ 0 }
};
static const struct schema uplink_schema = {
	"uplink", sizeof(S), offsetof(S, uplink_at), NULL, uplink_fields
};
static const struct field network_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "server", .type = FT_REF, VAL(S, server), NOAT, REQ },
	{ .key = "uplink", .type = FT_MAP, .off = 0, NOAT, .sub = &uplink_schema },
	{ 0 }
};
static const struct schema network_schema = {
	"network", sizeof(S), offsetof(S, at), network_init, network_fields
};
#undef S

#define S struct bh_region
static const struct field region_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "size", .type = FT_SIZE, VAL(S, size), AT(S, size_at), REQ },
	{ .key = "peers", .type = FT_REFLIST, VAL(S, peers), AT(S, peers_at), REQ,
	  COUNT(S, npeers), .max = BH_MAX_PEERS },
	{ 0 }
};
static const struct schema region_schema = {
	"shared region", sizeof(S), offsetof(S, at), NULL, region_fields
};
#undef S

/* ---- channels -------------------------------------------------------------------- */

#define S struct bh_port
static void port_init(void *o)
{
	init_ref(&((S *)o)->partition);
}
static const struct field port_fields[] = {
	{ .key = "partition", .type = FT_REF, VAL(S, partition), NOAT, REQ },
	{ .key = "port", .type = FT_PORTNAME, VAL(S, port), AT(S, port_at), REQ },
	{ 0 }
};
static const struct schema port_schema = {
	"channel end", sizeof(S), offsetof(S, at), port_init, port_fields
};
#undef S

#define S struct bh_channel
static void channel_init(void *o)
{
	port_init(&((S *)o)->source);
}
static const struct field channel_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "type", .type = FT_ENUM, VAL(S, type), AT(S, type_at), REQ,
	  .enum_names = bh_chan_type_names },
	{ .key = "max_message", .type = FT_SIZE, VAL(S, max_message), AT(S, max_message_at), REQ },
	{ .key = "refresh", .type = FT_TIME, VAL(S, refresh_ns), AT(S, refresh_at) },
	{ .key = "depth", .type = FT_U32, VAL(S, depth), AT(S, depth_at) },
	{ .key = "source", .type = FT_MAP, VAL(S, source), NOAT, REQ, .sub = &port_schema },
	{ .key = "destinations", .type = FT_LIST, VAL(S, dests), AT(S, dests_at), REQ,
	  .sub = &port_schema, COUNT(S, ndests), .max = BH_MAX_PARTITIONS },
	{ 0 }
};
static const struct schema channel_schema = {
	"channel", sizeof(S), offsetof(S, at), channel_init, channel_fields
};
#undef S

/* ---- partitions ------------------------------------------------------------------ */

#define S struct bh_health
static const struct field health_fields[] = {
	{ .key = "on_fault", .type = FT_ENUM, VAL(S, on_fault), NOAT, .enum_names = bh_on_fault_names },
	{ .key = "max_restarts", .type = FT_U32, VAL(S, max_restarts), AT(S, max_restarts_at) },
	{ .key = "watchdog", .type = FT_TIME, VAL(S, watchdog_ns), AT(S, watchdog_at) },
	{ 0 }
};
static const struct schema health_schema = {
	"health", sizeof(S), offsetof(S, at), NULL, health_fields
};
#undef S

#define S struct bh_rate
static const struct field rate_fields[] = {
	{ .key = "bytes_per_sec", .type = FT_SIZE, VAL(S, bytes_per_sec), AT(S, bytes_per_sec_at), REQ },
	{ .key = "burst", .type = FT_SIZE, VAL(S, burst), AT(S, burst_at) },
	{ 0 }
};
static const struct schema rate_schema = { "rate", sizeof(S), offsetof(S, at), NULL, rate_fields };
#undef S

#define S struct bh_device
static void device_init(void *o)
{
	S *dev = o;
	init_ref(&dev->server);
	init_ref(&dev->network);
	init_ref(&dev->disk);
}
static const struct field device_fields[] = {
	{ .key = "type", .type = FT_ENUM, VAL(S, type), AT(S, type_at), REQ,
	  .enum_names = bh_device_type_names },
	{ .key = "server", .type = FT_REF, VAL(S, server), NOAT },
	{ .key = "network", .type = FT_REF, VAL(S, network), NOAT },
	{ .key = "disk", .type = FT_REF, VAL(S, disk), NOAT },
	{ .key = "offset", .type = FT_SIZE, VAL(S, offset), AT(S, offset_at) },
	{ .key = "size", .type = FT_SIZE, VAL(S, size), AT(S, size_at) },
	{ .key = "readonly", .type = FT_BOOL, VAL(S, readonly), AT(S, readonly_at) },
	{ .key = "mac", .type = FT_MAC, VAL(S, mac), AT(S, mac_at) },
	{ .key = "rate", .type = FT_MAP, VAL(S, rate), NOAT, .sub = &rate_schema },
	{ 0 }
};
static const struct schema device_schema = {
	"device", sizeof(S), offsetof(S, at), device_init, device_fields
};
#undef S

#define S struct bh_partition
static void partition_init(void *o)
{
	((S *)o)->health.max_restarts = BH_DEFAULT_MAX_RESTARTS;
}
static const struct field partition_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), REQ },
	{ .key = "image", .type = FT_PATH, VAL(S, image), AT(S, image_at) },
	{ .key = "kernel", .type = FT_PATH, VAL(S, kernel), AT(S, kernel_at) },
	{ .key = "initrd", .type = FT_PATH, VAL(S, initrd), AT(S, initrd_at) },
	{ .key = "cmdline", .type = FT_STRING, VAL(S, cmdline), AT(S, cmdline_at) },
	{ .key = "engine", .type = FT_ENUM, VAL(S, engine), AT(S, engine_at),
	  .enum_names = bh_engine_names },
	{ .key = "cpus", .type = FT_CPUS, VAL(S, cpus), AT(S, cpus_at), COUNT(S, ncpus) },
	{ .key = "memory", .type = FT_SIZE, VAL(S, memory), AT(S, memory_at), REQ },
	{ .key = "isolation", .type = FT_ENUM, VAL(S, isolation), AT(S, isolation_at),
	  .enum_names = bh_isolation_names },
	{ .key = "health", .type = FT_MAP, VAL(S, health), NOAT, .sub = &health_schema },
	{ .key = "devices", .type = FT_LIST, VAL(S, devices), AT(S, devices_at),
	  .sub = &device_schema, COUNT(S, ndevices), .max = BH_MAX_DEVICES },
	{ 0 }
};
static const struct schema partition_schema = {
	"partition", sizeof(S), offsetof(S, at), partition_init, partition_fields
};
#undef S

/* ---- the whole file -------------------------------------------------------------- */

#define S struct bh_system
static const struct field top_fields[] = {
	{ .key = "system", .type = FT_MAP, .off = 0, NOAT, REQ, .sub = &cfg_system_section },
	{ .key = "io_servers", .type = FT_LIST, VAL(S, servers), NOAT, .sub = &server_schema,
	  COUNT(S, nservers), .max = BH_MAX_SERVERS },
	{ .key = "networks", .type = FT_LIST, VAL(S, networks), NOAT, .sub = &network_schema,
	  COUNT(S, nnetworks), .max = BH_MAX_NETWORKS },
	{ .key = "shared_regions", .type = FT_LIST, VAL(S, regions), NOAT, .sub = &region_schema,
	  COUNT(S, nregions), .max = BH_MAX_REGIONS },
	{ .key = "channels", .type = FT_LIST, VAL(S, channels), NOAT, .sub = &channel_schema,
	  COUNT(S, nchannels), .max = BH_MAX_CHANNELS },
	{ .key = "partitions", .type = FT_LIST, VAL(S, partitions), AT(S, partitions_at), REQ,
	  .sub = &partition_schema, COUNT(S, npartitions), .max = BH_MAX_PARTITIONS },
	{ 0 }
};
const struct schema cfg_file_schema = {
	"system file", sizeof(S), offsetof(S, file_at), NULL, top_fields
};
#undef S
