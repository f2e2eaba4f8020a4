/*
 * The monitor's virtio devices: virtio-pci (modern) transport state, the per-type
 * tables (blk, console, rng, net) and the interfaces between the transport, the
 * interrupt routing, the vhost-user frontend and the window-mode data path. Every device
 * is a vhost-user frontend to an I/O server; docs/monitor.md has the guest-visible
 * layout.
 */
#ifndef BH_MON_VIRTIO_H
#define BH_MON_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/platform.h"
#include "bulkhead/virtio.h"
#include "common/vhost_user.h"
#include "monitor/iothread.h"
#include "monitor/mon.h"
#include "monitor/pci.h"

/* Transport feature bits the monitor offers (the rest are device-specific). */
#define VIRTIO_TRANSPORT_FEATURES  ((1ULL << VIRTIO_F_INDIRECT_DESC) | \
				    (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_VERSION_1))

/* Names msix.c and reconnect.c still use for parts of bulkhead/virtio.h. */
#define VIRTIO_STATUS_NEEDS_RESET  VIRTIO_STATUS_DEVICE_NEEDS_RESET
#define VIRTIO_ISR_QUEUE           VIRTIO_PCI_ISR_QUEUE
#define VIRTIO_ISR_CONFIG          VIRTIO_PCI_ISR_CONFIG

/* PCI identity beyond vendor and device ID (modern only: revision 1 or higher, a
 * subsystem ID of 0x40 or higher). */
#define VIRTIO_PCI_REVISION        1
#define VIRTIO_PCI_SUBSYS_BASE     0x40     /* subsystem id: 0x40 + virtio device id */

/* Configuration space: the capability list (fixed offsets, see docs/monitor.md). */
#define VPCI_CAP_MSIX              0x40     /* 12 bytes */
#define VPCI_CAP_COMMON            0x4c     /* 16 */
#define VPCI_CAP_NOTIFY            0x5c     /* 20 */
#define VPCI_CAP_ISR               0x70     /* 16 */
#define VPCI_CAP_DEVICE            0x80     /* 16, only with device configuration */
#define VPCI_CAP_PCI_CFG           0x90     /* 20 */
#define VPCI_PCI_CFG_DATA          (VPCI_CAP_PCI_CFG + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data))

/* BAR 0 (64-bit memory, not prefetchable): every structure in a page of its own. */
#define VPCI_BAR_SIZE              0x8000
#define VPCI_COMMON_OFF            0x0000u
#define VPCI_COMMON_LEN            offsetof(struct virtio_pci_common_cfg, queue_notify_data)
#define VPCI_ISR_OFF               0x1000u
#define VPCI_ISR_LEN               4
#define VPCI_DEVICE_OFF            0x2000u
#define VPCI_NOTIFY_OFF            0x3000u
#define VPCI_NOTIFY_MULT           4u       /* queue i is kicked at 0x3000 + 4 * i */
#define VPCI_MSIX_TABLE_OFF        0x4000u
#define VPCI_MSIX_PBA_OFF          0x5000u
#define VPCI_BAR_STRIDE            0x100000 /* initial BAR: BH_PCI_MMIO_BASE + slot * 1 MiB */
#define VPCI_INTX_GSI_BASE         16       /* INTA# of slot s: IOAPIC pin 16 + s % 8 */
#define VPCI_MSI_GSI_BASE          24       /* device i vector v: GSI 24 + 3 * i + v */

/* Limits. */
#define VDEV_MAX                   MON_DEVICES_MAX
#define VDEV_MAX_QUEUES            2      /* console, net: a receive and a transmit queue */
#define VDEV_MAX_VECTORS           (VDEV_MAX_QUEUES + 1)
#define VDEV_QUEUE_SIZE            256    /* largest queue the guest may use */
#define VDEV_CONFIG_MAX            64     /* bytes of device configuration cached */

enum vdev_isolation { VDEV_WINDOW = 0, VDEV_SHARED };

/* The device's link to its server. PAUSED only exists with --control-fd: the server
 * hung up and the supervisor will send a new connection (RECONNECT) or give up
 * (FAILED, and then DEAD). DEAD: no server, the device needs a reset. */
enum vdev_conn { VDEV_CONN_UP = 0, VDEV_CONN_PAUSED, VDEV_CONN_DEAD };

/* Shared mode with --control-fd: the server's inflight region (vhost-user
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD), kept across server restarts. */
struct vdev_inflight {
	int      fd;                     /* -1: none */
	uint8_t *map;
	uint64_t size, offset;           /* as GET_INFLIGHT_FD gave them */
	uint64_t stride;                 /* bytes per queue region */
};

struct vdev;

/* What differs between device types; the transport calls it. One file per type. */
struct vdev_type {
	const char *name;                /* "blk": the --device TYPE */
	uint16_t    virtio_id;
	uint32_t    class_code;          /* PCI class, subclass, prog-if */
	uint16_t    nqueues;
	uint16_t    config_size;         /* bytes of device configuration (0: no DEVICE_CFG) */
	uint64_t    features;            /* device feature bits passed between guest and server */
	bool        needs_config;        /* refuse a server that cannot send its configuration */
	/* Defaults for a server without VU_PROTOCOL_F_CONFIG; NULL leaves zeros. */
	void      (*config_default)(uint8_t *cfg);
	/* Whether the guest may write [off, off + size) of the configuration; NULL: none. */
	bool      (*config_writable)(unsigned off, unsigned size);
};

extern const struct vdev_type vdev_blk_type;
extern const struct vdev_type vdev_console_type;
extern const struct vdev_type vdev_rng_type;
extern const struct vdev_type vdev_net_type;

/* MSI-X state of one function (msix.c). */
struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix {
	unsigned nvec;
	struct msix_entry e[VDEV_MAX_VECTORS];
	uint64_t pending;                /* the PBA */
	bool     enabled, fmask;         /* message control bits 15 and 14 */
	unsigned gsi_base;               /* KVM GSI of vector 0 */
};

struct win_queue;
struct win;

struct vdev_queue {
	struct vdev *d;
	unsigned index;
	/* programmed by the guest through the common configuration */
	uint16_t size;
	uint16_t msix_vector;
	bool     enabled;
	uint64_t desc, driver, device;
	/* set up at start-up */
	int kick_fd;                     /* KVM ioeventfd on the queue's notify address */
	int irq_fd;                      /* towards the guest: an irqfd when MSI-X is direct */
	int srv_kick_fd, srv_call_fd;    /* window mode: the server's side of the shadow ring */
	int err_fd;                      /* the server signals a corrupt ring (SET_VRING_ERR) */
	struct iot_source err_src;
	struct iot_source kick_src;      /* window: kick_fd */
	struct iot_source call_src;      /* window: srv_call_fd; shared: irq_fd when not direct */
	/* run state */
	bool started;
	bool irqfd_on;                   /* irq_fd assigned as an irqfd to irqfd_gsi */
	unsigned irqfd_gsi;
	bool call_polled;                /* call_src is in the I/O thread's epoll set */
	struct win_queue *wq;            /* window mode */
};

struct vdev {
	struct mon *m;
	const struct vdev_type *type;
	unsigned index;                  /* 0 .. VDEV_MAX - 1, in --device order */
	unsigned slot;
	enum vdev_isolation isolation;
	char name[24];                   /* "blk@3": type and slot, for messages and events */
	pthread_mutex_t lock;            /* the vCPU thread and the I/O thread */

	/* PCI function and its BAR */
	struct pci_dev pci;
	uint64_t bar_addr;               /* where the BAR is decoded, when bar_mapped */
	bool     bar_mapped;
	unsigned intx_gsi;               /* IOAPIC pin of INTA# */
	bool     intx_level;

	/* virtio common configuration */
	uint32_t dfselect, gfselect;
	uint64_t host_features;          /* offered to the guest */
	uint64_t guest_features;
	uint8_t  status;
	uint8_t  config_generation;
	uint16_t config_vector;
	uint16_t queue_select;
	uint8_t  isr;
	uint8_t  config[VDEV_CONFIG_MAX];   /* the device configuration, cached from the server */
	struct vdev_queue q[VDEV_MAX_QUEUES];
	struct msix msix;

	uint64_t config_written;         /* bit i: the guest wrote config byte i */

	/* vhost-user (vhost_frontend.c) */
	int      sock;
	uint64_t backend_features;
	uint64_t protocol_features;
	uint64_t srv_features;           /* sent with SET_FEATURES at the last start */
	bool     backend_dead;           /* this connection's stream is unusable */
	bool     srv_rings;              /* the server runs this device's rings */
	enum vdev_conn conn;
	unsigned reports;                /* device events emitted */
	struct iot_source sock_src[2];   /* alternate per connection: a stale hang-up
					  * event names the source it was for */
	unsigned sock_gen;               /* sock_src[sock_gen & 1] is the live one */
	struct vdev_inflight inflight;

	struct win *win;                 /* window mode */
};

static inline uint16_t vdev_nqueues(const struct vdev *d)
{
	return d->type->nqueues;
}

/* virtio_dev.c: life cycle, set-up from --device, the guest-facing state machine */
const struct vdev_type *vdev_type_find(const char *name);
int vdev_create(struct mon *m, const struct mon_device *opt, unsigned index, const char **why);
int vdev_start_io(struct mon *m);
void vdev_needs_reset(struct vdev *d, const char *why, const char *detail_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The server connection broke (hang-up, or a request failed on it): paused while a
 * control socket can bring a new one, NEEDS_RESET otherwise. Device lock held. */
void vdev_server_lost(struct vdev *d, const char *reason);
int vdev_watch_sock(struct vdev *d);
int vdev_renew_fds(struct vdev *d);
int vdev_start_server(struct vdev *d, const char **why);
int vdev_start_shared(struct vdev *d, const uint16_t *base, const char **why);

/* reconnect.c: RECONNECT and FAILED from the control socket (I/O thread) */
void vdev_reconnect(struct vdev *d, int sock);
void vdev_failed(struct vdev *d);
bool vdev_peer_gone(int sock);

/* inflight.c: shared mode's inflight region */
int vif_map(struct vdev *d, int fd, uint64_t size, uint64_t offset);
int vif_bases(struct vdev *d, uint16_t *base, unsigned *replayed, const char **why);
void vif_clear(struct vdev *d);
void vif_destroy(struct vdev *d);

/* virtio_common.c: the common configuration, ISR, device configuration, notify */
int vdev_common_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
int vdev_isr_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
int vdev_config_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
int vdev_notify_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
void vdev_reset(struct vdev *d);

/* virtio_pci.c: configuration space, capabilities, the BAR */
int vpci_init(struct vdev *d);
int vpci_bar_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);

/* msix.c: MSI-X table and PBA, per-queue interrupt routes, INTx */
int msix_table_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
int msix_pba_io(struct vdev *d, uint64_t off, uint64_t *val, unsigned size, bool write);
void vdev_irq_update(struct vdev *d);
void vdev_irq_queue(struct vdev *d, unsigned qi);
void vdev_irq_config(struct vdev *d);
void vdev_intx_update(struct vdev *d);

/* vhost_frontend.c: the vhost-user frontend */
struct vhf_ring {
	uint16_t num;                    /* 0: this queue is not started */
	uint64_t desc, avail, used;      /* the monitor's virtual addresses */
	uint16_t base;
	int kick_fd, call_fd, err_fd;
};

struct vhf_mem {
	unsigned nregions;
	struct vu_region r[2];
	int fd[2];
};

int vhf_setup(struct vdev *d, const char **why);
/* A new connection to a restarted server: the same owner, features and protocol
 * features as before (the new server must offer them), configuration not re-read. */
int vhf_reconnect(struct vdev *d, int sock, const char **why);
int vhf_start(struct vdev *d, uint64_t features, const struct vhf_mem *mem,
	      const struct vhf_ring *rings, const char **why);
int vhf_stop(struct vdev *d);
int vhf_set_config(struct vdev *d, unsigned off, unsigned size);
bool vhf_has_inflight(const struct vdev *d);
int vhf_set_timeouts(int sock);

/* window.c: the window-mode data path */
int win_create(struct vdev *d);
int win_start(struct vdev *d, const char **why);
int win_start_server(struct vdev *d, const char **why);
int win_resume(struct vdev *d, unsigned *replayed, const char **why);
void win_stop(struct vdev *d);
void win_destroy(struct vdev *d);
int win_watch(struct vdev *d);

/* irq.c: monitor-wide GSI routing (MSI routes for every device) and INTx sharing */
int irq_init(struct mon *m);
int irq_routes_commit(struct mon *m);
bool irq_msi_valid(const struct msix_entry *e);
int irq_intx_set(struct mon *m, unsigned gsi, unsigned source, bool level);
int irq_signal_msi(struct mon *m, const struct msix_entry *e);

#endif
