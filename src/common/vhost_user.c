/*
 * Sending and receiving vhost-user messages: a fixed header, a bounded payload and up
 * to VU_MAX_FDS descriptors as SCM_RIGHTS ancillary data.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/vhost_user.h"

static const char *const names[] = {
	[VU_GET_FEATURES] = "GET_FEATURES", [VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER", [VU_RESET_OWNER] = "RESET_OWNER",
	[VU_SET_MEM_TABLE] = "SET_MEM_TABLE", [VU_SET_LOG_BASE] = "SET_LOG_BASE",
	[VU_SET_LOG_FD] = "SET_LOG_FD", [VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR", [VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE", [VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL", [VU_SET_VRING_ERR] = "SET_VRING_ERR",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM", [VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_SEND_RARP] = "SEND_RARP", [VU_NET_SET_MTU] = "NET_SET_MTU",
	[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD", [VU_IOTLB_MSG] = "IOTLB_MSG",
	[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN", [VU_GET_CONFIG] = "GET_CONFIG",
	[VU_SET_CONFIG] = "SET_CONFIG", [VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD", [VU_RESET_DEVICE] = "RESET_DEVICE",
	[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS", [VU_ADD_MEM_REG] = "ADD_MEM_REG",
	[VU_REM_MEM_REG] = "REM_MEM_REG", [VU_SET_STATUS] = "SET_STATUS",
	[VU_GET_STATUS] = "GET_STATUS",
};

const char *vu_request_name(uint32_t request)
{
	if (request < sizeof(names) / sizeof(names[0]) && names[request])
		return names[request];
	return "UNKNOWN";
}

int vu_send(int sock, const struct vu_msg *msg)
{
	char control[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	/* Two pieces: struct vu_msg pads the 8-byte aligned payload after the 12-byte
	 * header, and the padding must not go on the wire. */
	struct iovec iov[2] = { { (void *)&msg->hdr, sizeof(msg->hdr) },
				{ (void *)&msg->payload, msg->hdr.size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (msg->hdr.size > sizeof(msg->payload) || msg->nfds > VU_MAX_FDS)
		return -EINVAL;
	if (msg->nfds) {
		struct cmsghdr *cm;

		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * msg->nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * msg->nfds);
		memcpy(CMSG_DATA(cm), msg->fds, sizeof(int) * msg->nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(msg->hdr) + msg->hdr.size ? 0 : -EIO;
}

static void take_fds(struct msghdr *mh, struct vu_msg *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int fds[VU_MAX_FDS * 2];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > VU_MAX_FDS * 2)
			n = VU_MAX_FDS * 2;
		memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (msg->nfds < VU_MAX_FDS)
				msg->fds[msg->nfds++] = fds[i];
			else
				close(fds[i]);      /* more than the protocol allows */
		}
	}
}

static int read_full(int sock, void *buf, size_t len)
{
	while (len) {
		ssize_t n = recv(sock, buf, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		buf = (char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

int vu_recv(int sock, struct vu_msg *msg)
{
	char control[CMSG_SPACE(sizeof(int) * VU_MAX_FDS * 2)];
	struct iovec iov = { &msg->hdr, sizeof(msg->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	ssize_t n;
	int rc;

	msg->nfds = 0;
	for (unsigned i = 0; i < VU_MAX_FDS; i++)
		msg->fds[i] = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	take_fds(&mh, msg);
	if ((size_t)n < sizeof(msg->hdr)) {
		rc = read_full(sock, (char *)&msg->hdr + n, sizeof(msg->hdr) - (size_t)n);
		if (rc)
			goto fail;
	}
	if (msg->hdr.size > sizeof(msg->payload)) {
		rc = -EMSGSIZE;
		goto fail;
	}
	rc = read_full(sock, &msg->payload, msg->hdr.size);
	if (rc)
		goto fail;
	return 0;
fail:
	vu_close_fds(msg);
	return rc;
}

void vu_close_fds(struct vu_msg *msg)
{
	for (unsigned i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}
