/*
 * The virtio 1.2 ABI that the inmate drivers, the monitor and the I/O servers share:
 * device IDs, status and feature bits, the split virtqueue, the PCI transport's
 * capabilities, and the blk, net and console formats, named as the specification names
 * them. Only the specification lives here: which features a side offers, queue sizes
 * and the like stay with that side. Freestanding (<stdint.h> and <stddef.h> only);
 * little-endian, as every bulkhead target is, so the spec's le16/le32/le64 are plain.
 */
#ifndef BULKHEAD_VIRTIO_H
#define BULKHEAD_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio 1.x is little endian");

/* Device IDs (5). */
#define VIRTIO_ID_NET                   1
#define VIRTIO_ID_BLOCK                 2
#define VIRTIO_ID_CONSOLE               3
#define VIRTIO_ID_ENTROPY               4

/* Device status field (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE       0x01
#define VIRTIO_STATUS_DRIVER            0x02
#define VIRTIO_STATUS_DRIVER_OK         0x04
#define VIRTIO_STATUS_FEATURES_OK       0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED            0x80

/* Reserved feature bits (6), as bit numbers. */
#define VIRTIO_F_INDIRECT_DESC          28
#define VIRTIO_F_EVENT_IDX              29
#define VIRTIO_F_VERSION_1              32
#define VIRTIO_F_ACCESS_PLATFORM        33
#define VIRTIO_F_RING_PACKED            34
#define VIRTIO_F_IN_ORDER               35
#define VIRTIO_F_ORDER_PLATFORM         36
#define VIRTIO_F_SR_IOV                 37
#define VIRTIO_F_NOTIFICATION_DATA      38
#define VIRTIO_F_NOTIF_CONFIG_DATA      39
#define VIRTIO_F_RING_RESET             40

/* --- split virtqueues (2.7) ---------------------------------------------------------- */

#define VIRTQ_MAX_SIZE                  32768   /* queue size: a power of 2 up to this */
#define VIRTQ_DESC_ALIGN                16      /* alignment of each part (2.7) */
#define VIRTQ_AVAIL_ALIGN               2
#define VIRTQ_USED_ALIGN                4

#define VIRTQ_DESC_F_NEXT               1
#define VIRTQ_DESC_F_WRITE              2
#define VIRTQ_DESC_F_INDIRECT           4
#define VIRTQ_AVAIL_F_NO_INTERRUPT      1
#define VIRTQ_USED_F_NO_NOTIFY          1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];        /* queue size entries, then used_event (EVENT_IDX) */
};

struct virtq_used_elem {
	uint32_t id;            /* head of the chain */
	uint32_t len;           /* bytes written into its device-writable buffers */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];   /* queue size entries, then avail_event (EVENT_IDX) */
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc layout");
_Static_assert(sizeof(struct virtq_avail) == 4, "virtq_avail layout");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem layout");
_Static_assert(sizeof(struct virtq_used) == 4, "virtq_used layout");

/* EVENT_IDX (2.7.10): whether moving an index from old_idx to new_idx passes event_idx,
 * i.e. whether the other side asked to be notified for one of the entries in between. */
static inline int vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

/* --- virtio over PCI (4.1) ------------------------------------------------------------ */

#define VIRTIO_PCI_VENDOR               0x1af4
#define VIRTIO_PCI_DEVICE_MODERN        0x1040  /* + the device ID */

/* Capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG       1
#define VIRTIO_PCI_CAP_NOTIFY_CFG       2
#define VIRTIO_PCI_CAP_ISR_CFG          3
#define VIRTIO_PCI_CAP_DEVICE_CFG       4
#define VIRTIO_PCI_CAP_PCI_CFG          5
#define VIRTIO_PCI_CAP_SHARED_MEMORY_CFG 8
#define VIRTIO_PCI_CAP_VENDOR_CFG       9

/* ISR status bits (4.1.4.5). */
#define VIRTIO_PCI_ISR_QUEUE            0x1
#define VIRTIO_PCI_ISR_CONFIG           0x2

/* No MSI-X vector for a queue or the configuration (4.1.5.1.2). */
#define VIRTIO_MSI_NO_VECTOR            0xffff

struct virtio_pci_cap {
	uint8_t cap_vndr;               /* PCI_CAP_ID_VNDR */
	uint8_t cap_next;
	uint8_t cap_len;
	uint8_t cfg_type;               /* VIRTIO_PCI_CAP_* */
	uint8_t bar;
	uint8_t id;
	uint8_t padding[2];
	uint32_t offset;                /* within the BAR */
	uint32_t length;
};

struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
};

struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap;
	uint8_t pci_cfg_data[4];
};

struct virtio_pci_common_cfg {
	uint32_t device_feature_select;
	uint32_t device_feature;
	uint32_t driver_feature_select;
	uint32_t driver_feature;
	uint16_t config_msix_vector;
	uint16_t num_queues;
	uint8_t device_status;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t queue_size;
	uint16_t queue_msix_vector;
	uint16_t queue_enable;
	uint16_t queue_notify_off;
	uint64_t queue_desc;
	uint64_t queue_driver;
	uint64_t queue_device;
	uint16_t queue_notify_data;     /* VIRTIO_F_NOTIF_CONFIG_DATA */
	uint16_t queue_reset;           /* VIRTIO_F_RING_RESET */
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio_pci_cap layout");
_Static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "virtio_pci_notify_cap layout");
_Static_assert(sizeof(struct virtio_pci_cfg_cap) == 20, "virtio_pci_cfg_cap layout");
_Static_assert(sizeof(struct virtio_pci_common_cfg) == 0x3c, "virtio_pci_common_cfg layout");
_Static_assert(offsetof(struct virtio_pci_common_cfg, queue_desc) == 0x20,
	       "virtio_pci_common_cfg layout");

/* --- network device (5.1) ------------------------------------------------------------- */

#define VIRTIO_NET_F_CSUM               0
#define VIRTIO_NET_F_GUEST_CSUM         1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU                3
#define VIRTIO_NET_F_MAC                5
#define VIRTIO_NET_F_GUEST_TSO4         7
#define VIRTIO_NET_F_GUEST_TSO6         8
#define VIRTIO_NET_F_GUEST_ECN          9
#define VIRTIO_NET_F_GUEST_UFO          10
#define VIRTIO_NET_F_HOST_TSO4          11
#define VIRTIO_NET_F_HOST_TSO6          12
#define VIRTIO_NET_F_HOST_ECN           13
#define VIRTIO_NET_F_HOST_UFO           14
#define VIRTIO_NET_F_MRG_RXBUF          15
#define VIRTIO_NET_F_STATUS             16
#define VIRTIO_NET_F_CTRL_VQ            17
#define VIRTIO_NET_F_CTRL_RX            18
#define VIRTIO_NET_F_CTRL_VLAN          19
#define VIRTIO_NET_F_GUEST_ANNOUNCE     21
#define VIRTIO_NET_F_MQ                 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR      23

#define VIRTIO_NET_S_LINK_UP            1
#define VIRTIO_NET_S_ANNOUNCE           2

struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;                /* VIRTIO_NET_F_STATUS */
	uint16_t max_virtqueue_pairs;   /* VIRTIO_NET_F_MQ */
	uint16_t mtu;                   /* VIRTIO_NET_F_MTU */
	uint32_t speed;
	uint8_t duplex;
	uint8_t rss_max_key_size;
	uint16_t rss_max_indirection_table_length;
	uint32_t supported_hash_types;
} __attribute__((packed));

#define VIRTIO_NET_HDR_F_NEEDS_CSUM     1
#define VIRTIO_NET_HDR_F_DATA_VALID     2
#define VIRTIO_NET_HDR_F_RSC_INFO       4
#define VIRTIO_NET_HDR_GSO_NONE         0
#define VIRTIO_NET_HDR_GSO_TCPV4        1
#define VIRTIO_NET_HDR_GSO_UDP          3
#define VIRTIO_NET_HDR_GSO_TCPV6        4
#define VIRTIO_NET_HDR_GSO_UDP_L4       5
#define VIRTIO_NET_HDR_GSO_ECN          0x80

/* Before every frame, both ways (5.1.6); with VERSION_1 num_buffers is always there. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_net_config) == 24, "virtio_net_config layout");
_Static_assert(offsetof(struct virtio_net_config, mtu) == 10, "virtio_net_config layout");
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr layout");

/* --- block device (5.2) --------------------------------------------------------------- */

#define VIRTIO_BLK_F_SIZE_MAX           1
#define VIRTIO_BLK_F_SEG_MAX            2
#define VIRTIO_BLK_F_GEOMETRY           4
#define VIRTIO_BLK_F_RO                 5
#define VIRTIO_BLK_F_BLK_SIZE           6
#define VIRTIO_BLK_F_FLUSH              9
#define VIRTIO_BLK_F_TOPOLOGY           10
#define VIRTIO_BLK_F_CONFIG_WCE         11
#define VIRTIO_BLK_F_MQ                 12
#define VIRTIO_BLK_F_DISCARD            13
#define VIRTIO_BLK_F_WRITE_ZEROES       14
#define VIRTIO_BLK_F_LIFETIME           15
#define VIRTIO_BLK_F_SECURE_ERASE       16

struct virtio_blk_config {
	uint64_t capacity;              /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} __attribute__((packed)) topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
} __attribute__((packed));

#define VIRTIO_BLK_T_IN                 0
#define VIRTIO_BLK_T_OUT                1
#define VIRTIO_BLK_T_FLUSH              4
#define VIRTIO_BLK_T_GET_ID             8
#define VIRTIO_BLK_T_GET_LIFETIME       10
#define VIRTIO_BLK_T_DISCARD            11
#define VIRTIO_BLK_T_WRITE_ZEROES       13
#define VIRTIO_BLK_T_SECURE_ERASE       14

#define VIRTIO_BLK_S_OK                 0
#define VIRTIO_BLK_S_IOERR              1
#define VIRTIO_BLK_S_UNSUPP             2

#define VIRTIO_BLK_SECTOR_SIZE          512u    /* the unit of sector and capacity */
#define VIRTIO_BLK_ID_BYTES             20      /* GET_ID: the serial, NUL-padded */

/* struct virtio_blk_req up to its data: the device-readable head of every request. */
struct virtio_blk_req_hdr {
	uint32_t type;                  /* VIRTIO_BLK_T_* */
	uint32_t reserved;
	uint64_t sector;
};

/* The payload of DISCARD, WRITE_ZEROES and SECURE_ERASE: one per range. */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u   /* flags: the range may be deallocated */

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

_Static_assert(sizeof(struct virtio_blk_config) == 72, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, max_secure_erase_sectors) == 60,
	       "virtio_blk_config layout");
_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "virtio_blk_req layout");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16,
	       "virtio_blk_discard_write_zeroes layout");

/* --- console device (5.3) ------------------------------------------------------------- */

#define VIRTIO_CONSOLE_F_SIZE           0
#define VIRTIO_CONSOLE_F_MULTIPORT      1
#define VIRTIO_CONSOLE_F_EMERG_WRITE    2

struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_console_config) == 12, "virtio_console_config layout");

#endif
