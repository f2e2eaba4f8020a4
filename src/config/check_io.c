/*
 * I/O servers and the devices they serve: disks and their slices, networks, MAC
 * addresses and rate limits.
 */
#include <net/if.h>
#include <string.h>
#include <sys/stat.h>

#include "common/units.h"
#include "config/compile.h"

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n >= IFNAMSIZ)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static void check_disk(const struct bh_ioserver *srv, const struct bh_disk *disk,
		       struct diag *d)
{
	struct stat st;
	char a[24];

	if (!disk->file || !disk->name)
		return;
	if (disk->exists && (stat(disk->file, &st) || !S_ISREG(st.st_mode))) {
		diag_error(d, disk->file_at, "disk '%s': '%s' is not a regular file", disk->name,
			   disk->file);
		return;
	}
	if (!disk->exists && !disk->create) {
		diag_error(d, disk->file_at, "disk '%s': file '%s' does not exist (add 'create: true' "
			   "to create it)", disk->name, disk->file);
		return;
	}
	if (!disk->exists && !disk->size_at.line) {
		diag_error(d, disk->at, "disk '%s' needs a 'size' to create '%s'", disk->name,
			   disk->file);
		return;
	}
	if (cfg_valid_at(d, disk->size_at) && (disk->size == 0 || disk->size % BH_SECTOR))
		diag_error(d, disk->size_at, "disk '%s': size %s is not a positive multiple of 512 "
			   "bytes", disk->name, units_format_size(disk->size, a));
	if (disk->exists && cfg_valid_at(d, disk->size_at) && !disk->create &&
	    stat(disk->file, &st) == 0 && (uint64_t)st.st_size < disk->size)
		diag_error(d, disk->size_at, "disk '%s': file '%s' holds %llu bytes, less than its "
			   "size %s (add 'create: true' to extend it)", disk->name, disk->file,
			   (unsigned long long)st.st_size, units_format_size(disk->size, a));
	(void)srv;
}

/* A TAP joins one network: two uplinks on one interface would bridge the networks. */
static void check_uplink(const struct bh_system *sys, unsigned ni, struct diag *d)
{
	const struct bh_network *net = &sys->networks[ni];

	if (!net->uplink_tap)
		return;
	if (!valid_ifname(net->uplink_tap)) {
		diag_error(d, net->uplink_at, "uplink tap name '%s' is not a valid interface name "
			   "(1 to %d characters, no '/', ':' or spaces)", net->uplink_tap, IFNAMSIZ - 1);
		return;
	}
	for (unsigned i = 0; i < ni; i++)
		if (sys->networks[i].uplink_tap &&
		    !strcmp(sys->networks[i].uplink_tap, net->uplink_tap))
			diag_error(d, net->uplink_at, "network '%s' uses uplink tap '%s', already the "
				   "uplink of network '%s'", cfg_name(net->name), net->uplink_tap,
				   cfg_name(sys->networks[i].name));
}

static void check_server(const struct bh_system *sys, unsigned si, struct diag *d)
{
	const struct bh_ioserver *srv = &sys->servers[si];

	if (!cfg_valid_at(d, srv->class_at))
		return;         /* class missing or refused: nothing to check it against */
	if (srv->class != BH_CLASS_BLK && srv->disks_at.line)
		diag_error(d, srv->disks_at, "'disks' applies to blk servers; '%s' is of class '%s'",
			   cfg_name(srv->name), bh_class_names[srv->class]);
	if (srv->standby && srv->restart == BH_RESTART_NEVER)
		diag_error(d, srv->standby_at, "I/O server '%s' has 'restart: never', so its "
			   "standby could never take over", cfg_name(srv->name));
	for (unsigned i = 0; i < srv->ndisks; i++)
		for (unsigned j = 0; j < i; j++)
			if (srv->disks[i].file && srv->disks[j].file &&
			    !strcmp(srv->disks[i].file, srv->disks[j].file))
				diag_error(d, srv->disks[i].file_at, "disk '%s' uses the file of disk "
					   "'%s'", cfg_name(srv->disks[i].name),
					   cfg_name(srv->disks[j].name));
	if (srv->class == BH_CLASS_BLK)
		for (unsigned i = 0; i < srv->ndisks; i++)
			check_disk(srv, &srv->disks[i], d);
}

static const struct bh_disk *device_disk(const struct bh_system *sys, const struct bh_device *dev)
{
	if (dev->type != BH_DEV_BLK || dev->server.idx < 0 || dev->disk.idx < 0)
		return NULL;
	return &sys->servers[dev->server.idx].disks[dev->disk.idx];
}

static void check_slice(const struct bh_system *sys, const struct bh_partition *p,
			const struct bh_device *dev, struct diag *d)
{
	const struct bh_disk *disk = device_disk(sys, dev);
	char a[24], b[24], c[24];

	/* A refused offset or size, or a disk found wrong (its size unknown), was reported
	 * already: measuring the slice against it would only add noise. */
	if (!disk || cfg_refused_at(d, dev->offset_at) || cfg_refused_at(d, dev->size_at) ||
	    cfg_refused_at(d, disk->at) || cfg_refused_at(d, disk->file_at) ||
	    cfg_refused_at(d, disk->size_at))
		return;
	if (dev->offset % BH_SECTOR)
		diag_error(d, dev->offset_at, "blk device of partition '%s': offset %s is not a "
			   "multiple of 512 bytes", cfg_name(p->name),
			   units_format_size(dev->offset, a));
	if (cfg_valid_at(d, dev->size_at) && (dev->size == 0 || dev->size % BH_SECTOR))
		diag_error(d, dev->size_at, "blk device of partition '%s': size %s is not a positive "
			   "multiple of 512 bytes", cfg_name(p->name), units_format_size(dev->size, a));
	if (dev->offset > disk->size || dev->size > disk->size - dev->offset)
		diag_error(d, dev->offset_at.line ? dev->offset_at : dev->at,
			   "blk device of partition '%s': slice %s + %s lies outside disk '%s' (%s)",
			   cfg_name(p->name), units_format_size(dev->offset, a),
			   units_format_size(dev->size, b), disk->name, units_format_size(disk->size, c));
	else if (!dev->size)
		diag_error(d, dev->at, "blk device of partition '%s': the slice of disk '%s' is empty",
			   cfg_name(p->name), disk->name);
}

/* Two writable slices of one disk must not overlap; read-only sharing is allowed. */
static void check_slice_overlaps(const struct bh_system *sys, struct diag *d)
{
	for (unsigned pi = 0; pi < sys->npartitions; pi++) {
		const struct bh_partition *p = &sys->partitions[pi];
		for (unsigned di = 0; di < p->ndevices; di++) {
			const struct bh_device *a = &p->devices[di];
			if (!device_disk(sys, a) || a->readonly)
				continue;
			for (unsigned qi = 0; qi <= pi; qi++) {
				const struct bh_partition *q = &sys->partitions[qi];
				for (unsigned ei = 0; ei < (qi == pi ? di : q->ndevices); ei++) {
					const struct bh_device *b = &q->devices[ei];
					if (!device_disk(sys, b) || b->readonly ||
					    device_disk(sys, b) != device_disk(sys, a))
						continue;
					if (a->offset < b->offset + b->size && b->offset < a->offset + a->size)
						diag_error(d, a->at, "writable slice of disk '%s' for partition "
							   "'%s' overlaps the writable slice of partition '%s' "
							   "(line %u)", device_disk(sys, a)->name, cfg_name(p->name),
							   cfg_name(q->name), b->at.line);
				}
			}
		}
	}
}

static void check_net_device(const struct bh_system *sys, const struct bh_partition *p,
			     unsigned di, struct diag *d)
{
	const struct bh_device *dev = &p->devices[di];
	static const uint8_t zero[6];
	bool mac_ok = !cfg_refused_at(d, dev->mac_at);
	char a[24];

	if (mac_ok && dev->mac_at.line && (dev->mac[0] & 1))
		diag_error(d, dev->mac_at, "net device of partition '%s': MAC %02x:%02x:%02x:%02x:%02x:"
			   "%02x is a multicast address", cfg_name(p->name), dev->mac[0], dev->mac[1],
			   dev->mac[2], dev->mac[3], dev->mac[4], dev->mac[5]);
	else if (mac_ok && dev->mac_at.line && !memcmp(dev->mac, zero, 6))
		diag_error(d, dev->mac_at, "net device of partition '%s': MAC 00:00:00:00:00:00 is "
			   "not a valid address", cfg_name(p->name));
	if (cfg_valid_at(d, dev->rate.bytes_per_sec_at) && dev->rate.bytes_per_sec == 0)
		diag_error(d, dev->rate.bytes_per_sec_at, "net device of partition '%s': "
			   "'bytes_per_sec' must be greater than 0", cfg_name(p->name));
	if (cfg_valid_at(d, dev->rate.burst_at) && dev->rate.burst < BH_MIN_BURST)
		diag_error(d, dev->rate.burst_at, "net device of partition '%s': 'burst' %s cannot "
			   "hold one Ethernet frame (1518 bytes)", cfg_name(p->name),
			   units_format_size(dev->rate.burst, a));
	/* Duplicates: compare with every earlier net device in the system. */
	for (unsigned qi = 0; mac_ok && qi <= (unsigned)(p - sys->partitions); qi++) {
		const struct bh_partition *q = &sys->partitions[qi];
		for (unsigned ei = 0; ei < (q == p ? di : q->ndevices); ei++) {
			const struct bh_device *o = &q->devices[ei];
			if (o->type == BH_DEV_NET && !cfg_refused_at(d, o->mac_at) &&
			    !cfg_refused_at(d, o->type_at) && !memcmp(o->mac, dev->mac, 6))
				diag_error(d, dev->mac_at.line ? dev->mac_at : dev->at,
					   "net device of partition '%s' has the MAC of a net device of "
					   "partition '%s' (line %u)", cfg_name(p->name), cfg_name(q->name),
					   o->at.line);
		}
	}
}

static void check_usage(const struct bh_system *sys, struct diag *d)
{
	for (unsigned si = 0; si < sys->nservers; si++) {
		const struct bh_ioserver *srv = &sys->servers[si];
		unsigned served = 0;

		for (unsigned i = 0; i < sys->npartitions; i++)
			for (unsigned j = 0; j < sys->partitions[i].ndevices; j++)
				served += sys->partitions[i].devices[j].server.idx == (int)si;
		if (!served && srv->name)
			diag_warning(d, srv->name_at, "I/O server '%s' serves no device", srv->name);
		if (served > BH_MAX_SERVER_CONNS)
			diag_error(d, srv->name_at, "I/O server '%s' serves %u devices; one server "
				   "serves at most %d (split them over several servers)",
				   cfg_name(srv->name), served, BH_MAX_SERVER_CONNS);
	}
	for (unsigned ni = 0; ni < sys->nnetworks; ni++) {
		unsigned members = 0;
		for (unsigned i = 0; i < sys->npartitions; i++)
			for (unsigned j = 0; j < sys->partitions[i].ndevices; j++)
				members += sys->partitions[i].devices[j].network.idx == (int)ni;
		if (members == 0 && sys->networks[ni].name)
			diag_warning(d, sys->networks[ni].name_at, "network '%s' has no member",
				     sys->networks[ni].name);
		check_uplink(sys, ni, d);
	}
}

void cfg_check_io(struct bh_system *sys, struct diag *d)
{
	for (unsigned i = 0; i < sys->nservers; i++)
		check_server(sys, i, d);
	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];
		for (unsigned j = 0; j < p->ndevices; j++) {
			if (!cfg_valid_at(d, p->devices[j].type_at))
				continue;
			if (p->devices[j].type == BH_DEV_BLK)
				check_slice(sys, p, &p->devices[j], d);
			else if (p->devices[j].type == BH_DEV_NET)
				check_net_device(sys, p, j, d);
		}
	}
	check_slice_overlaps(sys, d);
	check_usage(sys, d);
}
