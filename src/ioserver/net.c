/*
 * The virtio-net class (virtio 1.2, 5.1): every connection is a port of its network's
 * learning switch (net_switch.c), an uplink TAP (net_tap.c) another. A frame is copied
 * once, from the sender's transmit chain into the receivers' receive chains, and those
 * are published only after the transmit chain is completed: a server killed at any point
 * may lose a frame, never hand one to a guest twice (docs/ioserver.md).
 *
 * This file: set-up and teardown of the server and its ports, the device callbacks and
 * the class table; the rest of the class is described in net_port.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ioserver/net_port.h"

#define NET_QUEUE_MAX      1024

/* The configuration space offered: up to max_virtqueue_pairs (no MTU, no RSS). */
#define NET_CONFIG_LEN     offsetof(struct virtio_net_config, mtu)

static struct sw_switch *net_switch_find(struct net_server *ns, const char *network)
{
	for (unsigned i = 0; i < ns->nsw; i++)
		if (!strcmp(ns->sw[i]->network, network))
			return ns->sw[i];
	return NULL;
}

static int net_switch_get(struct net_server *ns, const char *network, struct sw_switch **out)
{
	struct sw_switch *sw = net_switch_find(ns, network);

	if (!sw) {
		if (ns->nsw == NET_MAX_NETWORKS)
			return -ENOSPC;
		sw = malloc(sizeof(*sw));
		if (!sw)
			return -ENOMEM;
		sw_init(sw, network, SW_AGE_NS_DEFAULT);
		ns->sw[ns->nsw++] = sw;
	}
	*out = sw;
	return 0;
}

static void net_port_link(struct net_server *ns, struct net_port *p)
{
	p->ns = ns;
	p->next = ns->ports;
	ns->ports = p;
}

static void net_port_unlink(struct net_port *p)
{
	for (struct net_port **pp = &p->ns->ports; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
}

static int net_uplink_add(struct ios *s, struct net_server *ns, const struct ios_uplink_spec *u,
			  const uint8_t mac[6])
{
	struct net_port *p = calloc(1, sizeof(*p));
	struct sw_switch *sw;
	int rc;

	if (!p)
		return -ENOMEM;
	sw_port_init(&p->sw, mac, true, p);
	p->tap_fd = u->fd;
	snprintf(p->tap, sizeof(p->tap), "%s", u->tap);
	p->in_buf = malloc(NET_TAP_BUF);
	p->out_buf = malloc(SW_ETH_MAX_VLAN);
	rc = p->in_buf && p->out_buf ? net_switch_get(ns, u->network, &sw) : -ENOMEM;
	if (!rc)
		rc = sw_port_add(sw, &p->sw);
	p->tap_watch.fd = u->fd;
	p->tap_watch.fn = net_uplink_readable;
	if (!rc)
		rc = ios_watch_add(s, &p->tap_watch, EPOLLIN | EPOLLET);
	if (rc) {
		sw_port_remove(&p->sw);
		free(p->in_buf);
		free(p->out_buf);
		free(p);
		return rc;
	}
	p->readable = true;               /* frames may be queued already */
	net_port_link(ns, p);
	return 0;
}

static int net_server_init(struct ios *s, const struct ios_conn_spec *specs, unsigned n)
{
	struct net_server *ns = calloc(1, sizeof(*ns));
	struct sw_switch *sw;
	int rc = 0;

	if (!ns)
		return -ENOMEM;
	s->priv = ns;
	ns->s = s;
	ns->hold_ns = (uint64_t)s->net.hold_ms * 1000000u;
	ns->armed_ns = UINT64_MAX;
	ns->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ns->timer_fd < 0)
		return -errno;
	ns->timer_watch.fd = ns->timer_fd;
	ns->timer_watch.fn = net_timer_fired;
	rc = ios_watch_add(s, &ns->timer_watch, EPOLLIN);
	ns->lin = malloc(OFF_GSO_MAX);
	ns->soft = malloc(OFF_OUT_MAX);
	if (!rc && (!ns->lin || !ns->soft))
		rc = -ENOMEM;
	for (unsigned i = 0; !rc && i < n; i++)
		rc = net_switch_get(ns, specs[i].network, &sw);
	for (unsigned i = 0; !rc && i < s->net.nuplinks; i++) {
		const struct ios_uplink_spec *u = &s->net.uplinks[i];

		rc = net_uplink_add(s, ns, u, u->mac);
	}
	return rc;
}

static void net_server_fini(struct ios *s)
{
	struct net_server *ns = s->priv;

	if (!ns)
		return;
	while (ns->ports) {               /* the uplinks: the devices are gone */
		struct net_port *p = ns->ports;

		net_report(p, true);
		net_port_unlink(p);
		sw_port_remove(&p->sw);
		close(p->tap_fd);
		free(p->in_buf);
		free(p->out_buf);
		free(p);
	}
	for (unsigned i = 0; i < ns->nsw; i++)
		free(ns->sw[i]);
	if (ns->timer_fd >= 0)
		close(ns->timer_fd);
	free(ns->lin);
	free(ns->soft);
	free(ns);
	s->priv = NULL;
}

/* A connection's port: its network and MAC; standalone, the template's MAC advanced by
 * the number of frontends accepted before this one. */
static int net_dev_init(struct vu_dev *d, const struct ios_conn_spec *spec)
{
	struct net_server *ns = d->s->priv;
	struct net_port *p = calloc(1, sizeof(*p));
	struct sw_switch *sw = net_switch_find(ns, spec->network);
	uint8_t mac[6];
	int rc;

	if (!p)
		return -ENOMEM;
	memcpy(mac, spec->mac, sizeof(mac));
	if (d->s->listen_fd >= 0 && d->s->accepted > 1) {
		uint64_t v = 0;

		for (unsigned i = 0; i < 6; i++)
			v = v << 8 | mac[i];
		v += d->s->accepted - 1;
		for (unsigned i = 6; i-- > 0; v >>= 8)
			mac[i] = (uint8_t)v;
	}
	sw_port_init(&p->sw, mac, false, p);
	if (spec->rate)
		sw_port_set_rate(&p->sw, spec->rate, spec->burst, net_now_ns());
	p->d = d;
	p->tap_fd = -1;
	snprintf(p->partition, sizeof(p->partition), "%s", spec->partition);
	p->device = spec->device;
	p->stash = calloc(NET_RX_MAX_CHAINS, sizeof(*p->stash));
	p->tx = malloc(sizeof(*p->tx));
	rc = !sw ? -ENOENT : !p->stash || !p->tx ? -ENOMEM : sw_port_add(sw, &p->sw);
	if (rc) {
		free(p->stash);
		free(p->tx);
		free(p);
		return rc;
	}
	net_port_link(ns, p);
	d->priv = p;
	return 0;
}

/* A port going: its final counters; frames held for it are routed again when retried
 * (its addresses are forgotten). */
static void net_dev_fini(struct vu_dev *d)
{
	struct net_port *p = d->priv;

	if (!p)
		return;
	net_report(p, true);
	net_port_unlink(p);
	sw_port_remove(&p->sw);
	free(p->stash);
	free(p->tx);
	free(p);
	d->priv = NULL;
}

/* Nothing of the device's may stay taken: its held frame goes now (without waiting for
 * buffers; one still waiting for credit is dropped, drop_rate), and receive chains taken
 * but not filled go back empty. A broken device's rings are left alone. */
static void net_drain(struct vu_dev *d)
{
	struct net_port *p = d->priv;
	bool usable = !d->broken && !d->dead;

	if (p->busy && usable) {
		if (!p->admitted) {
			sw_count_drop(&p->sw, SW_DROP_RATE);
			net_tx_done(p);
		} else {
			net_tx_frame(p, net_now_ns(), false);
		}
	} else if (p->busy && !p->admitted) {
		sw_rate_forget(&p->sw);
	}
	p->busy = false;
	net_stash_shift(p, p->nstash, usable);
	p->fill_n = 0;
}

static uint64_t net_features(struct vu_dev *d)
{
	return IOS_RING_FEATURES | (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
	       (1ull << VIRTIO_NET_F_STATUS) | OFF_FEATURES;
}

static size_t net_config_fill(struct vu_dev *d, uint8_t *buf)
{
	const struct net_port *p = d->priv;
	struct virtio_net_config c = { .status = VIRTIO_NET_S_LINK_UP, .max_virtqueue_pairs = 1 };

	memcpy(c.mac, p->sw.mac, sizeof(c.mac));
	memcpy(buf, &c, NET_CONFIG_LEN);
	return NET_CONFIG_LEN;
}

static const char *net_prepare_spec(struct ios_conn_spec *spec)
{
	if (!spec->network[0] || !spec->has_mac)
		return "network= and mac= are required for net";
	return NULL;
}

const struct ios_backend ios_net_backend = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.queue_max = NET_QUEUE_MAX,
	.features = net_features,
	.config = net_config_fill,
	.prepare_spec = net_prepare_spec,
	.server_init = net_server_init,
	.server_fini = net_server_fini,
	.dev_init = net_dev_init,
	.dev_fini = net_dev_fini,
	.handle = net_handle,
	.io_poll = net_io_poll,
	.drain = net_drain,
	.reset = net_drain,
	.report = net_report_all,
};
