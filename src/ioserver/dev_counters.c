/*
 * Per-device counters of the classes that count in struct ios_dev_counters (blk,
 * console, rng): `counters` events the supervisor keeps for `bulkhead ctl status`, in
 * the shape the net class uses for its ports (partition, device, then the counts).
 * Reports are rate-limited: a device busy for an hour writes one line a second.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common/json_quote.h"
#include "ioserver/ioserver.h"

#define COUNTERS_PERIOD_NS 1000000000ull

void ios_counters_report(struct vu_dev *d, bool final)
{
	const struct ios_backend *ops = d->s->ops;
	char server[IOS_NAME_MAX * 6 + 3], part[IOS_NAME_MAX * 6 + 3], line[1024];
	int n;

	if (!ops->counter_names || json_quote(server, sizeof(server), d->s->name) < 0 ||
	    json_quote(part, sizeof(part), d->partition) < 0)
		return;
	n = snprintf(line, sizeof(line), "{\"event\":\"counters\",\"server\":%s,"
		     "\"partition\":%s,\"device\":%u", server, part, d->device);
	for (unsigned i = 0; i < ops->ncounters && n > 0 && (size_t)n < sizeof(line); i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"%s\":%" PRIu64,
			      ops->counter_names[i], d->counters.v[i]);
	if (n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s}\n",
			      final ? ",\"final\":true" : "");
	if (n > 0 && (size_t)n < sizeof(line))
		ios_event_write(d->s, line, (size_t)n);
	d->counters.reported = d->counters.gen;
}

void ios_counters_report_all(struct ios *s)
{
	for (struct vu_dev *d = s->devs; d; d = d->next)
		ios_counters_report(d, false);
}

int ios_counters_tick(struct ios *s, uint64_t now_ns)
{
	bool changed = false;

	if (!s->ops->counter_names)
		return -1;
	for (struct vu_dev *d = s->devs; d && !changed; d = d->next)
		changed = d->counters.gen != d->counters.reported;
	if (!changed)
		return -1;
	if (now_ns < s->counters_due_ns)
		return (int)((s->counters_due_ns - now_ns + 999999) / 1000000);
	for (struct vu_dev *d = s->devs; d; d = d->next)
		if (d->counters.gen != d->counters.reported)
			ios_counters_report(d, false);
	s->counters_due_ns = now_ns + COUNTERS_PERIOD_NS;
	return -1;
}
