/*
 * The compiled system as JSON (`bulkhead check --print`): defaults filled in, references
 * by name, and derived facts (memory maps, PCI slots, MACs, network membership).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/system.h"

static json_t *hex(uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

static json_t *mac_json(const uint8_t m[6])
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		 m[5]);
	return json_string(buf);
}

static json_t *cpus_json(const struct bh_cpuset *set)
{
	json_t *a = json_array();
	for (unsigned c = 0; c < BH_MAX_CPUS; c++)
		if (bh_cpuset_has(set, c))
			json_array_append_new(a, json_integer(c));
	return a;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *system_json(const struct bh_system *sys)
{
	json_t *o = json_pack("{s:o, s:o, s:s}", "name", str_or_null(sys->name),
			      "cpus", cpus_json(&sys->cpus),
			      "scheduling", bh_sched_names[sys->scheduling]);
	if (sys->scheduling == BH_SCHED_CYCLIC) {
		json_t *slots = json_array();
		for (unsigned i = 0; i < sys->nslots; i++)
			json_array_append_new(slots, json_pack("{s:o, s:I, s:I}",
				"partition", str_or_null(sys->slots[i].partition.name),
				"start_ns", (json_int_t)sys->slots[i].start_ns,
				"duration_ns", (json_int_t)sys->slots[i].duration_ns));
		json_object_set_new(o, "plan", json_pack("{s:I, s:o}", "major_frame_ns",
			(json_int_t)sys->major_frame_ns, "slots", slots));
	}
	json_object_set_new(o, "log_dir", str_or_null(sys->log_dir));
	json_object_set_new(o, "control_socket", str_or_null(sys->control_socket));
	return o;
}

static json_t *server_json(const struct bh_ioserver *srv)
{
	json_t *o = json_pack("{s:o, s:s, s:s, s:b}", "name", str_or_null(srv->name),
			      "class", bh_class_names[srv->class],
			      "restart", bh_restart_names[srv->restart], "standby", srv->standby);
	if (srv->class == BH_CLASS_BLK) {
		json_t *disks = json_array();
		for (unsigned i = 0; i < srv->ndisks; i++) {
			const struct bh_disk *k = &srv->disks[i];
			json_array_append_new(disks, json_pack("{s:o, s:o, s:I, s:b, s:b}",
				"name", str_or_null(k->name), "file", str_or_null(k->file),
				"size", (json_int_t)k->size, "create", k->create, "exists", k->exists));
		}
		json_object_set_new(o, "disks", disks);
	}
	return o;
}

static json_t *device_json(const struct bh_system *sys, const struct bh_device *dev)
{
	char pci[16];
	json_t *o;

	snprintf(pci, sizeof(pci), "00:%02x.0", dev->pci_slot);
	o = json_pack("{s:s, s:s, s:o}", "type", bh_device_type_names[dev->type], "pci", pci,
		      "server", dev->server.idx >= 0 ? json_string(sys->servers[dev->server.idx].name)
						     : json_null());
	switch (dev->type) {
	case BH_DEV_BLK:
		json_object_set_new(o, "disk", str_or_null(dev->disk.name));
		json_object_set_new(o, "offset", json_integer((json_int_t)dev->offset));
		json_object_set_new(o, "size", json_integer((json_int_t)dev->size));
		json_object_set_new(o, "readonly", json_boolean(dev->readonly));
		break;
	case BH_DEV_NET:
		json_object_set_new(o, "network", str_or_null(dev->network.name));
		json_object_set_new(o, "mac", mac_json(dev->mac));
		if (dev->rate.at.line)
			json_object_set_new(o, "rate", json_pack("{s:I, s:I}",
				"bytes_per_sec", (json_int_t)dev->rate.bytes_per_sec,
				"burst", (json_int_t)dev->rate.burst));
		break;
	default:
		break;
	}
	return o;
}

static json_t *partition_json(const struct bh_system *sys, unsigned pi)
{
	const struct bh_partition *p = &sys->partitions[pi];
	json_t *devices = json_array(), *map = json_array();
	json_t *o = json_pack("{s:o, s:i, s:s, s:o, s:I, s:s}", "name", str_or_null(p->name),
			      "id", (int)pi, "engine", bh_engine_names[p->engine],
			      "cpus", cpus_json(&p->cpus), "memory", (json_int_t)p->memory,
			      "isolation", bh_isolation_names[p->isolation]);

	if (p->image)
		json_object_set_new(o, "image", json_string(p->image));
	if (p->kernel)
		json_object_set_new(o, "kernel", json_string(p->kernel));
	if (p->initrd)
		json_object_set_new(o, "initrd", json_string(p->initrd));
	json_object_set_new(o, "cmdline", json_string(p->cmdline ? p->cmdline : ""));
	json_object_set_new(o, "health", json_pack("{s:s, s:I, s:I}",
		"on_fault", bh_on_fault_names[p->health.on_fault],
		"max_restarts", (json_int_t)p->health.max_restarts,
		"watchdog_ns", (json_int_t)p->health.watchdog_ns));
	for (unsigned i = 0; i < p->ndevices; i++)
		json_array_append_new(devices, device_json(sys, &p->devices[i]));
	json_object_set_new(o, "devices", devices);
	for (unsigned i = 0; i < p->nmemmap; i++) {
		const struct bh_map_entry *e = &p->memmap[i];
		json_array_append_new(map, json_pack("{s:s, s:s, s:o, s:I, s:s}",
			"kind", bh_map_kind_names[e->kind], "name", e->name ? e->name : "?",
			"gpa", hex(e->gpa), "size", (json_int_t)e->size,
			"access", e->writable ? "rw" : "ro"));
	}
	json_object_set_new(o, "memory_map", map);
	return o;
}

static json_t *network_json(const struct bh_system *sys, unsigned ni)
{
	const struct bh_network *net = &sys->networks[ni];
	json_t *members = json_array();

	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];
		for (unsigned j = 0; j < p->ndevices; j++)
			if (p->devices[j].type == BH_DEV_NET && p->devices[j].network.idx == (int)ni)
				json_array_append_new(members, json_pack("{s:s, s:o}",
					"partition", p->name, "mac", mac_json(p->devices[j].mac)));
	}
	json_t *o = json_pack("{s:o, s:o, s:o}", "name", str_or_null(net->name),
			      "server", str_or_null(net->server.name), "members", members);

	if (net->uplink_tap)
		json_object_set_new(o, "uplink", json_pack("{s:s}", "tap", net->uplink_tap));
	return o;
}

static json_t *region_json(const struct bh_region *r)
{
	json_t *peers = json_array();
	for (unsigned i = 0; i < r->npeers; i++)
		json_array_append_new(peers, json_string(r->peers[i].name));
	return json_pack("{s:o, s:I, s:o}", "name", str_or_null(r->name), "size",
			 (json_int_t)r->size, "peers", peers);
}

static json_t *port_json(const struct bh_port *p)
{
	return json_pack("{s:o, s:o}", "partition", str_or_null(p->partition.name),
			 "port", str_or_null(p->port));
}

static json_t *channel_json(const struct bh_channel *ch)
{
	json_t *dests = json_array();
	json_t *o = json_pack("{s:o, s:s, s:I, s:I, s:o}", "name", str_or_null(ch->name),
			      "type", bh_chan_type_names[ch->type],
			      "max_message", (json_int_t)ch->max_message, "size", (json_int_t)ch->size,
			      "source", port_json(&ch->source));
	for (unsigned i = 0; i < ch->ndests; i++)
		json_array_append_new(dests, port_json(&ch->dests[i]));
	json_object_set_new(o, "destinations", dests);
	if (ch->type == BH_CHAN_SAMPLING)
		json_object_set_new(o, "refresh_ns", json_integer((json_int_t)ch->refresh_ns));
	else
		json_object_set_new(o, "depth", json_integer(ch->depth));
	return o;
}

char *cfg_to_json(const struct bh_system *sys)
{
	json_t *root = json_object(), *a;
	char *text;

	json_object_set_new(root, "file", str_or_null(sys->file));
	json_object_set_new(root, "system", system_json(sys));
	a = json_array();
	for (unsigned i = 0; i < sys->nservers; i++)
		json_array_append_new(a, server_json(&sys->servers[i]));
	json_object_set_new(root, "io_servers", a);
	a = json_array();
	for (unsigned i = 0; i < sys->nnetworks; i++)
		json_array_append_new(a, network_json(sys, i));
	json_object_set_new(root, "networks", a);
	a = json_array();
	for (unsigned i = 0; i < sys->nregions; i++)
		json_array_append_new(a, region_json(&sys->regions[i]));
	json_object_set_new(root, "shared_regions", a);
	a = json_array();
	for (unsigned i = 0; i < sys->nchannels; i++)
		json_array_append_new(a, channel_json(&sys->channels[i]));
	json_object_set_new(root, "channels", a);
	a = json_array();
	for (unsigned i = 0; i < sys->npartitions; i++)
		json_array_append_new(a, partition_json(sys, i));
	json_object_set_new(root, "partitions", a);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		abort();
	return text;
}
