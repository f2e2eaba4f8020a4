/*
 * The net server's uplink: a TAP interface (IFF_TAP | IFF_NO_PI, no vnet header) that
 * joins one network as a port of its switch. Opened or checked before the sandbox; then
 * only non-blocking reads and writes of whole frames.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioserver/net.h"

/* The interface's own hardware address (informational: the counters name it). */
static void net_tap_hwaddr(const char *name, uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(mac, 0, 6);
	if (sock < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (!ioctl(sock, SIOCGIFHWADDR, &ifr))
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(sock);
}

static const char *net_tap_open(struct ios_uplink_spec *u)
{
	static char why[96];
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, sizeof(why), "/dev/net/tun: %s", strerror(errno));
		return why;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", u->tap);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		snprintf(why, sizeof(why), "cannot open TAP '%s': %s", u->tap, strerror(errno));
		close(fd);
		return why;
	}
	u->fd = fd;
	return NULL;
}

const char *net_tap_prepare(struct ios_uplink_spec *u)
{
	struct ifreq ifr = { 0 };
	const char *why;
	int fl;

	if (u->fd < 0 && (why = net_tap_open(u)))
		return why;
	if (ioctl(u->fd, TUNGETIFF, &ifr))
		return "fd is not a TAP device";
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TAP)
		return "fd is a TUN device, not a TAP (IFF_TAP)";
	if (!(ifr.ifr_flags & IFF_NO_PI))
		return "the TAP was opened without IFF_NO_PI";
	if (ifr.ifr_flags & IFF_VNET_HDR)
		return "the TAP was opened with IFF_VNET_HDR (not supported)";
	fl = fcntl(u->fd, F_GETFL);
	if (fl < 0 || fcntl(u->fd, F_SETFL, fl | O_NONBLOCK))
		return "cannot make the TAP non-blocking";
	snprintf(u->tap, sizeof(u->tap), "%s", ifr.ifr_name);
	net_tap_hwaddr(u->tap, u->mac);
	return NULL;
}

ssize_t net_tap_read(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int net_tap_write(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = write(fd, buf, len);

		if (n >= 0)
			return 0;             /* a TAP takes a frame whole or not at all */
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}
