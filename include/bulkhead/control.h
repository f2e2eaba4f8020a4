/*
 * Messages from the supervisor to a partition's monitor on its control socket (a unix
 * SOCK_SEQPACKET pair, `bulkhead monitor --control-fd`): a restarted I/O server's new
 * connection for one device, word that the server will not come back, or bytes for the
 * partition's UART to receive. And the one message a hot standby I/O server
 * (`bulkhead ioserver --standby-fd`) waits for on its own SOCK_SEQPACKET channel, and
 * what the supervisor says to a running server on its control channel
 * (`bulkhead ioserver --control-fd`).
 */
#ifndef BULKHEAD_CONTROL_H
#define BULKHEAD_CONTROL_H

#include <stdint.h>

#define BH_CONTROL_MAGIC     0x42484354u   /* "BHCT" */

enum bh_control_type {
	BH_CONTROL_RECONNECT = 1,   /* SCM_RIGHTS carries a connected vhost-user socket */
	BH_CONTROL_FAILED = 2,      /* the server is gone for good: the device needs reset */
	BH_CONTROL_CONSOLE_INPUT = 3,   /* 1 to BH_CONTROL_INPUT_MAX bytes follow the header,
					 * for the UART's receiver; device is 0 */
};

/* A CONSOLE_INPUT message is the header and its bytes: the message's length says how
 * many (a SOCK_SEQPACKET keeps it whole). */
#define BH_CONTROL_INPUT_MAX 240

struct bh_control_msg {
	uint32_t magic;
	uint32_t type;
	uint32_t device;            /* index of the monitor's --device option, from 0 (0 for
				     * CONSOLE_INPUT) */
	uint32_t reserved;
};

/* To a standby: become the server. The message is this header, nfds int32_t descriptor
 * numbers, then argc NUL-terminated arguments (the command line a fork + exec of the
 * server would have had, "bulkhead" "ioserver" CLASS ... included); SCM_RIGHTS carries
 * the nfds descriptors in the same order, each to be moved to its number. A channel
 * that closes without a message means: exit, not needed. */
#define BH_STANDBY_MAGIC     0x42485342u   /* "BSHB" */
#define BH_STANDBY_MAX_FDS   253           /* SCM_MAX_FD: one message */
#define BH_STANDBY_MSG_MAX   (256 * 1024)

struct bh_standby_msg {
	uint32_t magic;
	uint32_t nfds;
	uint32_t argc;
	uint32_t reserved;
};

/* On a running server's control channel (SOCK_SEQPACKET, `--control-fd`): the
 * supervisor sends REPLACE with SCM_RIGHTS carrying exactly one connected unix stream
 * socket, the new frontend end for the server's connection `conn` (the index of its
 * --conn option, from 0); the server drops that connection's device as if its frontend
 * had hung up and serves the same spec on the new socket. Every message is answered
 * with one REPLY: the same conn, status 0 or -errno (a refused message changes nothing).
 * A partition starting again so keeps the server its neighbours use. */
#define BH_IOSCTL_MAGIC      0x42484943u   /* "BHIC" */

enum bh_iosctl_type {
	BH_IOSCTL_REPLACE = 1,
	BH_IOSCTL_REPLY = 2,
};

struct bh_iosctl_msg {
	uint32_t magic;
	uint32_t type;
	uint32_t conn;
	int32_t status;             /* REPLY: 0 or -errno; 0 in a REPLACE */
};

#endif
