/*
 * Names and references: every named object is unique within its kind, and every
 * reference by name (to a server, disk, network or partition) resolves to an index.
 */
#include <string.h>

#include "config/compile.h"

/* Reports the second and later uses of a name among `n` objects of `stride` bytes whose
 * name and position sit at the given offsets. */
static void check_unique(struct diag *d, const char *kind, const void *base, unsigned n,
			 size_t stride, size_t name_off, size_t at_off)
{
	for (unsigned i = 0; i < n; i++) {
		const char *obj = (const char *)base + i * stride;
		const char *name = *(char *const *)(obj + name_off);

		if (!name)
			continue;
		for (unsigned j = 0; j < i; j++) {
			const char *prev = (const char *)base + j * stride;
			const char *pname = *(char *const *)(prev + name_off);

			if (pname && !strcmp(name, pname)) {
				const struct bh_loc *at = (const struct bh_loc *)(obj + at_off);
				const struct bh_loc *pat = (const struct bh_loc *)(prev + at_off);
				diag_error(d, *at, "%s name '%s' is already used (line %u)", kind, name,
					   pat->line);
				break;
			}
		}
	}
}

#define CHECK_UNIQUE(d, kind, arr, n, type) \
	check_unique(d, kind, arr, n, sizeof(type), offsetof(type, name), offsetof(type, name_at))

void cfg_check_names(struct bh_system *sys, struct diag *d)
{
	CHECK_UNIQUE(d, "partition", sys->partitions, sys->npartitions, struct bh_partition);
	CHECK_UNIQUE(d, "I/O server", sys->servers, sys->nservers, struct bh_ioserver);
	CHECK_UNIQUE(d, "network", sys->networks, sys->nnetworks, struct bh_network);
	CHECK_UNIQUE(d, "shared region", sys->regions, sys->nregions, struct bh_region);
	CHECK_UNIQUE(d, "channel", sys->channels, sys->nchannels, struct bh_channel);
	for (unsigned i = 0; i < sys->nservers; i++)
		CHECK_UNIQUE(d, "disk", sys->servers[i].disks, sys->servers[i].ndisks,
			     struct bh_disk);
}

static int find_network(const struct bh_system *sys, const char *name)
{
	for (unsigned i = 0; i < sys->nnetworks; i++)
		if (sys->networks[i].name && !strcmp(sys->networks[i].name, name))
			return (int)i;
	return -1;
}

static int find_disk(const struct bh_ioserver *srv, const char *name)
{
	for (unsigned i = 0; i < srv->ndisks; i++)
		if (srv->disks[i].name && !strcmp(srv->disks[i].name, name))
			return (int)i;
	return -1;
}

static void resolve_partition(const struct bh_system *sys, struct diag *d, struct bh_ref *ref,
			      const char *who)
{
	if (!ref->name)
		return;
	ref->idx = cfg_find_partition(sys, ref->name);
	if (ref->idx < 0)
		diag_error(d, ref->at, "%s names partition '%s', which is not defined", who,
			   ref->name);
}

/* A device's server must exist and serve the device's class. */
static void resolve_device_server(struct bh_system *sys, struct diag *d, struct bh_partition *p,
				  struct bh_device *dev)
{
	const char *type = bh_device_type_names[dev->type];
	const struct bh_ioserver *srv;

	if (!dev->server.name) {
		diag_error(d, dev->at, "%s device of partition '%s' needs a 'server'", type,
			   cfg_name(p->name));
		return;
	}
	dev->server.idx = cfg_find_server(sys, dev->server.name);
	if (dev->server.idx < 0) {
		diag_error(d, dev->server.at, "%s device names I/O server '%s', which is not defined",
			   type, dev->server.name);
		return;
	}
	srv = &sys->servers[dev->server.idx];
	if (cfg_valid_at(d, srv->class_at) && (int)srv->class != (int)dev->type) {
		diag_error(d, dev->server.at, "%s device cannot use I/O server '%s': it is of class "
			   "'%s'", type, cfg_name(srv->name), bh_class_names[srv->class]);
		dev->server.idx = -1;
	}
}

static void resolve_net_device(struct bh_system *sys, struct diag *d, struct bh_partition *p,
			       struct bh_device *dev)
{
	const struct bh_network *net;

	if (dev->server.name)
		diag_error(d, dev->server.at, "net devices name a 'network', not a 'server': the "
			   "network's server serves them");
	if (!dev->network.name) {
		diag_error(d, dev->at, "net device of partition '%s' needs a 'network'", cfg_name(p->name));
		return;
	}
	dev->network.idx = find_network(sys, dev->network.name);
	if (dev->network.idx < 0) {
		diag_error(d, dev->network.at, "net device names network '%s', which is not defined",
			   dev->network.name);
		return;
	}
	net = &sys->networks[dev->network.idx];
	dev->server.idx = net->server.idx;
}

static void resolve_blk_disk(struct bh_system *sys, struct diag *d, struct bh_device *dev)
{
	const struct bh_ioserver *srv;

	if (!dev->disk.name) {
		diag_error(d, dev->at, "blk device needs a 'disk' of its server");
		return;
	}
	if (dev->server.idx < 0)
		return;
	srv = &sys->servers[dev->server.idx];
	dev->disk.idx = find_disk(srv, dev->disk.name);
	if (dev->disk.idx < 0)
		diag_error(d, dev->disk.at, "blk device names disk '%s', which I/O server '%s' does "
			   "not have", dev->disk.name, cfg_name(srv->name));
}

/* Keys that only make sense for some device types are refused on the others. */
static void check_device_keys(struct diag *d, const struct bh_device *dev)
{
	const char *type = bh_device_type_names[dev->type];

	if (dev->type != BH_DEV_NET && dev->network.name)
		diag_error(d, dev->network.at, "'network' applies to net devices, not %s", type);
	if (dev->type != BH_DEV_BLK) {
		if (dev->disk.name)
			diag_error(d, dev->disk.at, "'disk' applies to blk devices, not %s", type);
		if (dev->offset_at.line)
			diag_error(d, dev->offset_at, "'offset' applies to blk devices, not %s", type);
		if (dev->size_at.line)
			diag_error(d, dev->size_at, "'size' applies to blk devices, not %s", type);
		if (dev->readonly_at.line)
			diag_error(d, dev->readonly_at, "'readonly' applies to blk devices, not %s",
				   type);
	}
	if (dev->type != BH_DEV_NET) {
		if (dev->mac_at.line)
			diag_error(d, dev->mac_at, "'mac' applies to net devices, not %s", type);
		if (dev->rate.at.line)
			diag_error(d, dev->rate.at, "'rate' applies to net devices, not %s", type);
	}
}

void cfg_resolve(struct bh_system *sys, struct diag *d)
{
	for (unsigned i = 0; i < sys->nnetworks; i++) {
		struct bh_network *net = &sys->networks[i];

		if (!net->server.name)
			continue;
		net->server.idx = cfg_find_server(sys, net->server.name);
		if (net->server.idx < 0) {
			diag_error(d, net->server.at, "network '%s' names I/O server '%s', which is "
				   "not defined", cfg_name(net->name), net->server.name);
		} else if (cfg_valid_at(d, sys->servers[net->server.idx].class_at) &&
			   sys->servers[net->server.idx].class != BH_CLASS_NET) {
			diag_error(d, net->server.at, "network '%s' needs a net I/O server; '%s' is of "
				   "class '%s'", cfg_name(net->name), net->server.name,
				   bh_class_names[sys->servers[net->server.idx].class]);
			net->server.idx = -1;
		}
	}
	for (unsigned i = 0; i < sys->nslots; i++)
		resolve_partition(sys, d, &sys->slots[i].partition, "plan slot");
	for (unsigned i = 0; i < sys->nregions; i++)
		for (unsigned j = 0; j < sys->regions[i].npeers; j++)
			resolve_partition(sys, d, &sys->regions[i].peers[j], "shared region peer");
	for (unsigned i = 0; i < sys->nchannels; i++) {
		struct bh_channel *ch = &sys->channels[i];
		resolve_partition(sys, d, &ch->source.partition, "channel source");
		for (unsigned j = 0; j < ch->ndests; j++)
			resolve_partition(sys, d, &ch->dests[j].partition, "channel destination");
	}
	for (unsigned i = 0; i < sys->npartitions; i++) {
		struct bh_partition *p = &sys->partitions[i];

		for (unsigned j = 0; j < p->ndevices; j++) {
			struct bh_device *dev = &p->devices[j];

			if (!cfg_valid_at(d, dev->type_at))
				continue;       /* type missing or refused: reported already */
			check_device_keys(d, dev);
			if (dev->type == BH_DEV_NET) {
				resolve_net_device(sys, d, p, dev);
				continue;
			}
			resolve_device_server(sys, d, p, dev);
			if (dev->type == BH_DEV_BLK)
				resolve_blk_disk(sys, d, dev);
		}
	}
}
