/*
 * The vhost-user wire protocol (QEMU's vhost-user specification): message layout,
 * request numbers and feature bits. The monitor speaks it as a frontend, the I/O
 * servers as a backend; keeping one definition makes the two agree by construction,
 * and both also interoperate with QEMU and qemu-storage-daemon.
 */
#ifndef BH_VHOST_USER_H
#define BH_VHOST_USER_H

#include <stdint.h>

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_RESET_DEVICE = 34,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
};

/* Header flags: protocol version 1, reply marker, and "please acknowledge". */
#define VU_VERSION          0x1u
#define VU_VERSION_MASK     0x3u
#define VU_FLAG_REPLY       (1u << 2)
#define VU_FLAG_NEED_REPLY  (1u << 3)

/* Virtio feature bit a vhost-user backend sets to say it has protocol features. */
#define VU_F_PROTOCOL_FEATURES 30

enum vu_protocol_feature {
	VU_PROTOCOL_F_MQ = 0,
	VU_PROTOCOL_F_LOG_SHMFD = 1,
	VU_PROTOCOL_F_RARP = 2,
	VU_PROTOCOL_F_REPLY_ACK = 3,
	VU_PROTOCOL_F_MTU = 4,
	VU_PROTOCOL_F_BACKEND_REQ = 5,
	VU_PROTOCOL_F_CROSS_ENDIAN = 6,
	VU_PROTOCOL_F_CRYPTO_SESSION = 7,
	VU_PROTOCOL_F_PAGEFAULT = 8,
	VU_PROTOCOL_F_CONFIG = 9,
	VU_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VU_PROTOCOL_F_HOST_NOTIFIER = 11,
	VU_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VU_PROTOCOL_F_RESET_DEVICE = 13,
	VU_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VU_PROTOCOL_F_STATUS = 16,
};

#define VU_MAX_REGIONS   8         /* regions in one SET_MEM_TABLE */
#define VU_MAX_FDS       8         /* descriptors in one message */
#define VU_MAX_CONFIG    256       /* bytes of device configuration in one message */

/* Kick/call/err payload: queue index in the low byte; this bit says "no fd". */
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD     (1u << 8)

struct vu_header {
	uint32_t request;
	uint32_t flags;
	uint32_t size;             /* payload bytes that follow */
} __attribute__((packed));

struct vu_region {
	uint64_t guest_addr;       /* driver (guest-physical) address */
	uint64_t size;
	uint64_t user_addr;        /* the frontend's virtual address: SET_VRING_ADDR uses it */
	uint64_t mmap_offset;      /* where the region starts in its fd */
} __attribute__((packed));

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_region regions[VU_MAX_REGIONS];
} __attribute__((packed));

struct vu_single_region {      /* ADD_MEM_REG / REM_MEM_REG */
	uint64_t padding;
	struct vu_region region;
} __attribute__((packed));

struct vu_vring_state {        /* SET_VRING_NUM, SET/GET_VRING_BASE, SET_VRING_ENABLE */
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;            /* bit 0: log used-ring writes */
	uint64_t desc_user_addr;   /* frontend virtual addresses, translated with */
	uint64_t used_user_addr;   /* the memory table's user_addr */
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VU_MAX_CONFIG];
} __attribute__((packed));

struct vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
} __attribute__((packed));

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_single_region region;
	struct vu_config config;
	struct vu_inflight inflight;
};

struct vu_msg {
	struct vu_header hdr;
	union vu_payload payload;
	int fds[VU_MAX_FDS];       /* received with SCM_RIGHTS; -1 when absent */
	unsigned nfds;
};

/* Sends one message (and fds) on a unix stream socket. Returns 0 or -errno. */
int vu_send(int sock, const struct vu_msg *msg);
/* Receives one message; rejects payloads larger than union vu_payload and excess fds
 * (closing them). Returns 0, -EPIPE at end of stream, or -errno. */
int vu_recv(int sock, struct vu_msg *msg);
/* Closes every fd a received message carried. */
void vu_close_fds(struct vu_msg *msg);
const char *vu_request_name(uint32_t request);

#endif
