/*
 * The net class's `counters` events, one per port: the supervisor keeps the latest for
 * `bulkhead ctl status` and sums them over the server's restarts.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common/json_quote.h"
#include "ioserver/net_port.h"

void net_report(struct net_port *p, bool final)
{
	char server[IOS_NAME_MAX * 6 + 3], who[IOS_NAME_MAX * 6 + 48], net[IOS_NAME_MAX * 6 + 3];
	char line[2048], name[IOS_NAME_MAX * 6 + 3];
	const struct sw_counters *c = &p->sw.c;
	const uint8_t *m = p->sw.mac;
	int n;

	if (json_quote(server, sizeof(server), p->ns->s->name) < 0 ||
	    json_quote(net, sizeof(net), p->sw.sw ? p->sw.sw->network : "") < 0 ||
	    json_quote(name, sizeof(name), p->d ? p->partition : p->tap) < 0)
		return;
	if (p->d)
		snprintf(who, sizeof(who), "\"partition\":%s,\"device\":%u", name, p->device);
	else
		snprintf(who, sizeof(who), "\"uplink\":%s", name);
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"counters\",\"server\":%s,%s,\"network\":%s,"
		     "\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"rx_frames\":%" PRIu64
		     ",\"rx_bytes\":%" PRIu64 ",\"tx_frames\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
		     ",\"rate_held\":%" PRIu64 ",\"drop_spoof\":%" PRIu64 ",\"drop_rate\":%"
		     PRIu64 ",\"drop_no_buffer\":%" PRIu64 ",\"drop_oversize\":%" PRIu64
		     ",\"drop_malformed\":%" PRIu64 "%s}\n",
		     server, who, net, m[0], m[1], m[2], m[3], m[4], m[5], c->rx_frames,
		     c->rx_bytes, c->tx_frames, c->tx_bytes, c->rate_held, c->drop_spoof,
		     c->drop_rate, c->drop_no_buffer, c->drop_oversize, c->drop_malformed,
		     final ? ",\"final\":true" : "");
	if (n > 0 && (size_t)n < sizeof(line))
		ios_event_write(p->ns->s, line, (size_t)n);
	p->reported = p->sw.gen;
}

/* SIGUSR1: every port now. */
void net_report_all(struct ios *s)
{
	struct net_server *ns = s->priv;

	for (struct net_port *p = ns->ports; p; p = p->next)
		net_report(p, false);
}
