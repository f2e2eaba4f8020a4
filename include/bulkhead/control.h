/*
 * Messages from the supervisor to a partition's monitor on its control socket (a unix
 * SOCK_SEQPACKET pair, `bulkhead monitor --control-fd`): a restarted I/O server's new
 * connection for one device, or word that the server will not come back.
 */
#ifndef BULKHEAD_CONTROL_H
#define BULKHEAD_CONTROL_H

#include <stdint.h>

#define BH_CONTROL_MAGIC     0x42484354u   /* "BHCT" */

enum bh_control_type {
	BH_CONTROL_RECONNECT = 1,   /* SCM_RIGHTS carries a connected vhost-user socket */
	BH_CONTROL_FAILED = 2,      /* the server is gone for good: the device needs reset */
};

struct bh_control_msg {
	uint32_t magic;
	uint32_t type;
	uint32_t device;            /* index of the monitor's --device option, from 0 */
	uint32_t reserved;
};

#endif
