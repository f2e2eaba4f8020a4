/*
 * Inter-partition communication: shared regions (between at least two partitions) and
 * ARINC-653-style sampling and queuing channels with named ports.
 */
#include <string.h>

#include "bulkhead/channels.h"
#include "common/units.h"
#include "config/compile.h"

_Static_assert(BH_MAX_MESSAGE == BH_CHAN_MAX_MESSAGE && BH_MAX_DEPTH == BH_CHAN_MAX_DEPTH,
	       "the ports API checks channel headers against the file's limits");

static void check_region(const struct bh_region *r, struct diag *d)
{
	unsigned distinct = 0;
	char a[24];

	if (cfg_valid_at(d, r->size_at) && (r->size == 0 || r->size % 4096))
		diag_error(d, r->size_at, "shared region '%s': size %s is not a positive multiple of "
			   "4K", cfg_name(r->name), units_format_size(r->size, a));
	for (unsigned i = 0; i < r->npeers; i++) {
		bool dup = false;
		for (unsigned j = 0; j < i && !dup; j++)
			dup = !strcmp(r->peers[i].name, r->peers[j].name);
		if (dup)
			diag_warning(d, r->peers[i].at, "shared region '%s' lists peer '%s' twice",
				     cfg_name(r->name), r->peers[i].name);
		else
			distinct++;
	}
	if (r->peers_at.line && distinct < 2)
		diag_error(d, r->peers_at, "shared region '%s' has %u distinct peer%s; it needs at "
			   "least two", cfg_name(r->name), distinct, distinct == 1 ? "" : "s");
}

static void check_channel(struct bh_channel *ch, struct diag *d)
{
	char a[24];

	if (cfg_valid_at(d, ch->max_message_at) &&
	    (ch->max_message == 0 || ch->max_message > BH_MAX_MESSAGE))
		diag_error(d, ch->max_message_at, "channel '%s': max_message %s must be between 1 "
			   "and 1M", cfg_name(ch->name), units_format_size(ch->max_message, a));
	if (ch->dests_at.line && ch->ndests == 0)
		diag_error(d, ch->dests_at, "channel '%s' has no destination", cfg_name(ch->name));
	for (unsigned i = 0; i < ch->ndests; i++)
		if (ch->source.partition.name && ch->dests[i].partition.name &&
		    !strcmp(ch->source.partition.name, ch->dests[i].partition.name))
			diag_error(d, ch->dests[i].partition.at, "channel '%s' connects partition '%s' "
				   "to itself", cfg_name(ch->name), ch->source.partition.name);
	if (!cfg_valid_at(d, ch->type_at))
		return;         /* type missing or refused: its rules would only mislead */
	if (ch->type == BH_CHAN_QUEUING) {
		if (ch->ndests > 1)
			diag_error(d, ch->dests_at, "queuing channel '%s' has %u destinations; a "
				   "queuing channel has exactly one", cfg_name(ch->name), ch->ndests);
		if (!ch->depth_at.line)
			diag_error(d, ch->at, "queuing channel '%s' needs a 'depth'", cfg_name(ch->name));
		else if (cfg_valid_at(d, ch->depth_at) && (ch->depth < 1 || ch->depth > BH_MAX_DEPTH))
			diag_error(d, ch->depth_at, "queuing channel '%s': depth %u must be between 1 "
				   "and %d", cfg_name(ch->name), ch->depth, BH_MAX_DEPTH);
		if (ch->refresh_at.line)
			diag_error(d, ch->refresh_at, "'refresh' applies to sampling channels; '%s' is "
				   "queuing", cfg_name(ch->name));
		if (ch->max_message <= BH_MAX_MESSAGE && ch->depth <= BH_MAX_DEPTH)
			ch->size = BH_QUEUING_SIZE(ch->max_message, ch->depth);
	} else {
		if (!ch->refresh_at.line)
			diag_error(d, ch->at, "sampling channel '%s' needs a 'refresh' period",
				   cfg_name(ch->name));
		else if (cfg_valid_at(d, ch->refresh_at) && ch->refresh_ns == 0)
			diag_error(d, ch->refresh_at, "sampling channel '%s': refresh must be longer "
				   "than 0", cfg_name(ch->name));
		if (ch->depth_at.line)
			diag_error(d, ch->depth_at, "'depth' applies to queuing channels; '%s' is "
				   "sampling", cfg_name(ch->name));
		if (ch->max_message <= BH_MAX_MESSAGE)
			ch->size = BH_SAMPLING_SIZE(ch->max_message);
	}
}

/* Port names are per partition: the same name on two channel ends of one partition
 * would make the ports API ambiguous. */
static void check_port_names(const struct bh_system *sys, struct diag *d)
{
	const struct bh_port *ends[BH_MAX_CHANNELS * (BH_MAX_PARTITIONS + 1)];
	unsigned n = 0;

	for (unsigned i = 0; i < sys->nchannels; i++) {
		ends[n++] = &sys->channels[i].source;
		for (unsigned j = 0; j < sys->channels[i].ndests; j++)
			ends[n++] = &sys->channels[i].dests[j];
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (!ends[i]->port || !ends[j]->port || ends[i]->partition.idx < 0 ||
			    ends[i]->partition.idx != ends[j]->partition.idx ||
			    strcmp(ends[i]->port, ends[j]->port))
				continue;
			diag_error(d, ends[i]->port_at, "partition '%s' already has a port named '%s' "
				   "(line %u)", ends[i]->partition.name, ends[i]->port,
				   ends[j]->port_at.line);
			break;
		}
	}
}

void cfg_check_comm(struct bh_system *sys, struct diag *d)
{
	for (unsigned i = 0; i < sys->nregions; i++)
		check_region(&sys->regions[i], d);
	for (unsigned i = 0; i < sys->nchannels; i++)
		check_channel(&sys->channels[i], d);
	check_port_names(sys, d);
}
