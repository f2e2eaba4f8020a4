/*
 * The net class's pieces that main.c and the net_*.c files share: preparing uplinks (a
 * TAP fd given by the supervisor, or one the standalone server opens itself) before the
 * sandbox, and moving frames through them afterwards (net_tap.c).
 */
#ifndef BH_IOSERVER_NET_H
#define BH_IOSERVER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ioserver/ioserver.h"

#define NET_HOLD_MS_DEFAULT  100           /* --hold-ms */
#define NET_HOLD_MS_MAX      60000
#define NET_STANDALONE_NETWORK "standalone"
#define NET_STANDALONE_MAC   { 0x02, 0x62, 0x68, 0xff, 0x00, 0x01 }

/* Makes u usable: supervised, checks that fd is a TAP without packet information or
 * vnet header and makes it non-blocking; standalone (tap set, no fd), opens or creates
 * the TAP through /dev/net/tun. Fills in u->tap and u->mac (the interface's own
 * address, for the counters). NULL, or what is wrong. */
const char *net_tap_prepare(struct ios_uplink_spec *u);

/* One frame from the TAP into buf: its length, -EAGAIN when there is none, or -errno. */
ssize_t net_tap_read(int fd, void *buf, size_t len);

/* One frame to the TAP: 0, -EAGAIN when its queue is full, or -errno. */
int net_tap_write(int fd, const void *buf, size_t len);

#endif
