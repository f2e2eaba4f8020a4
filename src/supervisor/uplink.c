/*
 * Network uplinks: the TAP interface a network's uplink names, opened (created when it
 * does not exist) and brought up by the supervisor, which has the privilege; the net
 * server only gets the fd, and keeps getting a copy of it across restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/sup.h"

static int tap_open(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), sock, err;

	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		goto fail;
	/* Up, so that frames flow as soon as the operator gives it an address. */
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)) {
		err = -errno;
		close(sock);
		close(fd);
		return err;
	}
	close(sock);
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int sup_open_uplinks(struct sup *s)
{
	for (unsigned i = 0; i < s->sys->nnetworks; i++) {
		const struct bh_network *net = &s->sys->networks[i];

		if (!net->uplink_tap)
			continue;
		s->uplink_fd[i] = tap_open(net->uplink_tap);
		if (s->uplink_fd[i] < 0) {
			fprintf(stderr, "bulkhead run: network '%s': uplink tap '%s': %s%s\n",
				net->name, net->uplink_tap, strerror(-s->uplink_fd[i]),
				s->uplink_fd[i] == -EPERM || s->uplink_fd[i] == -EACCES ?
				" (creating or opening a TAP needs CAP_NET_ADMIN)" : "");
			return s->uplink_fd[i];
		}
	}
	return 0;
}

void sup_close_uplinks(struct sup *s)
{
	for (unsigned i = 0; i < BH_MAX_NETWORKS; i++)
		if (s->uplink_fd[i] >= 0) {
			close(s->uplink_fd[i]);
			s->uplink_fd[i] = -1;
		}
}
