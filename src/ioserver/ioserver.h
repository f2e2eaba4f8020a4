/*
 * The I/O server: one process, one epoll loop, any number of vhost-user connections,
 * each one virtio device of one partition. The vhost-user backend library (vu_*), the
 * loop (ios_*) and the device classes (blk, console, net, rng) that fill struct ios_backend.
 */
#ifndef BH_IOSERVER_H
#define BH_IOSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/virtio.h"
#include "common/vhost_user.h"
#include "common/vring.h"
#include "ioserver/vu_inflight.h"

#define IOS_NAME_MAX     64       /* server and partition names */
#define IOS_MAX_QUEUES   2        /* the most any class has (console: rx, tx) */
#define IOS_MAX_CONNS    64       /* --conn options in one server */
#define IOS_BATCH        32       /* chains one queue may take per round (fairness) */
#define IOS_POLL_US      50       /* default adaptive polling time */

/* virtio feature bits every class offers (virtio 1.2, 6). */
#define IOS_RING_FEATURES ((1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX) | \
			   (1ull << VIRTIO_F_VERSION_1))

/* Protocol features offered (vhost-user): no MQ, no memory slots. */
#define IOS_PROTOCOL_FEATURES ((1ull << VU_PROTOCOL_F_REPLY_ACK) | \
			       (1ull << VU_PROTOCOL_F_CONFIG) | \
			       (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) | \
			       (1ull << VU_PROTOCOL_F_RESET_DEVICE))

struct ios;
struct vu_dev;

/* An fd in the epoll set and what to do when it is ready. */
struct ios_watch {
	int fd;
	void (*fn)(struct ios *s, struct ios_watch *w, uint32_t events);
};

/* One connection as the command line gives it (--conn SPEC, or standalone --disk /
 * --output for every frontend that connects). */
struct ios_conn_spec {
	int fd;                           /* connected vhost-user socket; -1 standalone */
	char partition[IOS_NAME_MAX + 1];
	unsigned device;                  /* index of the device in its partition */
	int disk_fd;                      /* blk: the image, opened by the caller */
	uint64_t offset, size;            /* blk: the slice, bytes */
	bool readonly;                    /* blk */
	int out_fd;                       /* console: where the guest's bytes go */
	char network[IOS_NAME_MAX + 1];   /* net: the network the port joins ("" unset) */
	uint8_t mac[6];                   /* net: the guest's address (has_mac) */
	bool has_mac;
	uint64_t rate, burst;             /* net: bytes per second (0: no limit), bytes */
};

/* An uplink of a net server: a TAP joining one network (--uplink). Supervised: fd open,
 * network named; standalone: tap names the interface to open, the one network. */
struct ios_uplink_spec {
	char network[IOS_NAME_MAX + 1];
	int fd;
	char tap[16];                     /* the interface's name (IFNAMSIZ) */
	uint8_t mac[6];                   /* the interface's own address, for the counters */
};

/* The net class's server-wide options. */
struct ios_net_opts {
	struct ios_uplink_spec uplinks[IOS_MAX_CONNS];
	unsigned nuplinks;
	unsigned hold_ms;                 /* --hold-ms: backpressure bound */
};

/* One virtqueue of a connection. Indices live in vr while the ring runs; base keeps
 * last_avail while it is stopped. */
struct vu_queue {
	struct vu_dev *dev;
	unsigned index;
	struct vring vr;
	uint16_t num;                     /* SET_VRING_NUM; 0 until then */
	uint16_t base;                    /* SET_VRING_BASE, and where a stop left off */
	uint64_t desc_ua, avail_ua, used_ua;   /* SET_VRING_ADDR, frontend addresses */
	bool addr_set;
	bool started;                     /* kick fd given, ring mapped: processing */
	bool enabled;                     /* SET_VRING_ENABLE (or no protocol features) */
	bool poll_kick;                   /* kick NOFD: the ring is polled, no eventfd */
	bool pushed;                      /* used entries since the last notification */
	int kick_fd, call_fd, err_fd;
	struct ios_watch kick_watch;
	/* Inflight tracking (vu_inflight.h), while the ring runs on a region. */
	struct vu_inflight_queue *infl;   /* this queue's region; NULL: not tracked */
	uint16_t infl_batch_head;         /* our copy of its last_batch_head */
	bool infl_inherited;              /* region from SET_INFLIGHT_FD, ring not started
					   * on it yet: a restarted server's first start */
	struct vu_inflight_head *replay;  /* heads to resubmit before the avail ring */
	unsigned nreplay, replay_next;
};

/* A region of the memory table, mapped. */
struct vu_mapping {
	uint64_t guest_addr, size, user_addr;
	uint8_t *host;                    /* guest_addr maps here */
	void *map;                        /* the mmap, page aligned */
	size_t map_len;
};

struct vu_mem {
	unsigned n;
	struct vu_mapping r[VU_MAX_REGIONS];
};

/* One connection: one device of one partition. */
/* A device's counters, for the classes that name them (ios_backend.counter_names):
 * dev_counters.c reports them as `counters` events. */
#define IOS_MAX_COUNTERS 8

struct ios_dev_counters {
	uint64_t v[IOS_MAX_COUNTERS];
	uint64_t gen, reported;           /* changes made, and made by the last report */
};

struct vu_dev {
	struct ios *s;
	struct vu_dev *next;
	int sock;
	struct ios_watch sock_watch;
	char partition[IOS_NAME_MAX + 1];
	unsigned device;
	uint64_t features;                /* acknowledged virtio features */
	uint64_t protocol_features;
	bool broken;                      /* NEEDS_RESET: a ring was corrupt */
	bool dead;                        /* disconnected; freed at the end of the turn */
	int conn;                         /* supervised: index of its --conn; -1 standalone */
	struct vu_mem mem;
	struct vu_inflight_map infl;      /* GET/SET_INFLIGHT_FD; map NULL without */
	struct vu_queue q[IOS_MAX_QUEUES];
	void *priv;                       /* the class's per-device state */
	struct ios_dev_counters counters;
};

/* A device class. Adding one: a new file filling this table, and one line in
 * ios_backends[] (main.c). Every hook returns 0 or -errno unless it says otherwise;
 * optional hooks may be NULL. */
struct ios_backend {
	const char *name;                 /* the CLASS on the command line */
	uint32_t device_id;               /* virtio device ID */
	unsigned nqueues;
	uint16_t queue_max;               /* the largest SET_VRING_NUM accepted */
	/* Virtio features offered to this device (ring features included). */
	uint64_t (*features)(struct vu_dev *d);
	/* Fills the device configuration space into buf (VU_MAX_CONFIG bytes, zeroed);
	 * returns its length. */
	size_t (*config)(struct vu_dev *d, uint8_t *buf);
	/* Completes a spec from what its fds hold (a disk's size, say) and checks it:
	 * NULL when it suits the class, else what is wrong (main.c names the
	 * connection). Optional. */
	const char *(*prepare_spec)(struct ios_conn_spec *spec);
	/* Once per server before any device exists, with every spec known at start-up
	 * (standalone: the one template); and at exit. Optional. */
	int (*server_init)(struct ios *s, const struct ios_conn_spec *specs, unsigned n);
	void (*server_fini)(struct ios *s);
	/* Per device: from its spec; and when it goes. */
	int (*dev_init)(struct vu_dev *d, const struct ios_conn_spec *spec);
	void (*dev_fini)(struct vu_dev *d);
	/* A ring starts (its size is known). Optional. */
	int (*queue_start)(struct vu_dev *d, struct vu_queue *vq);
	/* Takes up to budget chains from a running ring (vu_queue_pop), returns how many
	 * it took; fewer than budget means it is done for this round. */
	unsigned (*handle)(struct vu_dev *d, struct vu_queue *vq, unsigned budget);
	/* Asynchronous work: submits what handle prepared, completes what finished;
	 * returns the number completed. Optional. */
	int (*io_poll)(struct ios *s);
	/* Waits until none of the device's requests is in flight. Optional. */
	void (*drain)(struct vu_dev *d);
	/* Device reset: forget per-ring state (after drain). Optional. */
	void (*reset)(struct vu_dev *d);
	/* SIGUSR1: report the class's counters now. Optional. */
	void (*report)(struct ios *s);
	/* Names of the device's counters (struct ios_dev_counters.v), reported by the
	 * server loop; NULL for a class that reports its own (net). */
	const char *const *counter_names;
	unsigned ncounters;
};

extern const struct ios_backend ios_blk_backend;
extern const struct ios_backend ios_console_backend;
extern const struct ios_backend ios_net_backend;
extern const struct ios_backend ios_rng_backend;

/* The server: the one per-process root. */
struct ios {
	const struct ios_backend *ops;
	char name[IOS_NAME_MAX + 1];
	int epfd;
	int event_fd;                     /* JSON event lines */
	int sig_fd;
	struct ios_watch sig_watch;
	int listen_fd;                    /* standalone: the socket; -1 supervised */
	struct ios_watch listen_watch;
	int sock_dir_fd;                  /* standalone: the socket's directory, to unlink */
	char sock_name[108];
	struct ios_conn_spec templ;       /* standalone: spec for each accepted frontend */
	unsigned accepted;
	struct vu_dev *devs;
	unsigned ndevs;
	uint64_t poll_ns;                 /* adaptive polling after the last work */
	bool stop;
	bool reap;                        /* some device is dead: free it at turn end */
	bool any_poll_kick;               /* some running ring has no kick fd */
	unsigned rr;                      /* round-robin start */
	uint64_t counters_due_ns;         /* devices' counters: no report before this */
	struct ios_net_opts net;          /* net class: uplinks, hold time */
	/* Supervised: every --conn spec and the device now serving it (NULL once its
	 * frontend hung up), so that the control channel can replace one. */
	struct ios_conn_spec conns[IOS_MAX_CONNS];
	struct vu_dev *conn_dev[IOS_MAX_CONNS];
	unsigned nconns;
	int ctl_fd;                       /* --control-fd, -1 without */
	struct ios_watch ctl_watch;
	int ctl_new_fd;                   /* a checked REPLACE waiting for the turn's end */
	unsigned ctl_conn;
	void *priv;                       /* the class's per-server state */
};

/* loop.c */
int ios_watch_add(struct ios *s, struct ios_watch *w, uint32_t events);
int ios_watch_mod(struct ios *s, struct ios_watch *w, uint32_t events);
void ios_watch_del(struct ios *s, struct ios_watch *w);
int ios_run(struct ios *s);

/* dev_counters.c: the devices' counters as `counters` events, at most once a second
 * while they change (ios_counters_tick: ms until the next report is due, or -1), every
 * device now (SIGUSR1), and a device's last when it goes. */
static inline void ios_count(struct vu_dev *d, unsigned which, uint64_t n)
{
	d->counters.v[which] += n;
	d->counters.gen++;
}
int ios_counters_tick(struct ios *s, uint64_t now_ns);
void ios_counters_report_all(struct ios *s);
void ios_counters_report(struct vu_dev *d, bool final);

/* events.c: one JSON line per event on the event fd. */
void ios_event_ready(struct ios *s);
void ios_event_dev(struct vu_dev *d, const char *event, const char *reason, int queue);
void ios_event_replay(struct vu_dev *d, int queue, unsigned requests);
void ios_event_write(struct ios *s, const char *line, size_t len);   /* one whole line */

/* vu_dev.c: connections. */
int vu_dev_new(struct ios *s, const struct ios_conn_spec *spec, struct vu_dev **out);
void vu_dev_close(struct vu_dev *d);
void vu_dev_free(struct vu_dev *d);
void vu_dev_fail(struct vu_dev *d, struct vu_queue *vq, enum vring_error e);
void vu_dev_fail_reason(struct vu_dev *d, struct vu_queue *vq, const char *reason);

/* vu_msg.c: the vhost-user requests. Returns 0, or -errno to drop the connection. */
int vu_dev_message(struct vu_dev *d);

/* vu_mem.c: the memory table. */
int vu_mem_set(struct vu_mem *m, const struct vu_mem_table *t, const int *fds, unsigned nfds);
void vu_mem_clear(struct vu_mem *m);
void *vu_mem_translate(void *opaque, uint64_t addr, uint64_t len, bool write);
int vu_mem_ua_to_ga(const struct vu_mem *m, uint64_t ua, uint64_t len, uint64_t *ga);

/* vu_queue.c: rings. */
void vu_queue_init(struct vu_dev *d, struct vu_queue *vq, unsigned index);
int vu_queue_start(struct vu_queue *vq);
void vu_queue_stop(struct vu_queue *vq);
int vu_queue_remap(struct vu_queue *vq);
void vu_queue_close_fds(struct vu_queue *vq);
bool vu_queue_ready(const struct vu_queue *vq);
bool vu_queue_pop(struct vu_queue *vq, struct vring_chain *chain);
void vu_queue_push(struct vu_queue *vq, uint16_t head, uint32_t len);
/* Completes n chains (at most the ring's size) as one batch: the used index moves once,
 * after every element is written (and recorded in the inflight region). The driver is
 * notified later, by vu_queue_notify, over everything pushed since its last
 * notification. */
void vu_queue_push_n(struct vu_queue *vq, const struct virtq_used_elem *elems, unsigned n);
void vu_queue_notify(struct vu_queue *vq);
void vu_queue_set_notify(struct vu_queue *vq, bool enable);

/* control.c: the supervisor's control channel (--control-fd, bulkhead/control.h).
 * ios_control_init watches it; ios_control_apply, at the end of a loop turn (no event
 * of the turn may still point into a device it frees), carries out a checked REPLACE. */
int ios_control_init(struct ios *s, int fd);
/* main.c: a connected AF_UNIX SOCK_STREAM socket (what a vhost-user connection is). */
bool ios_fd_is_stream_socket(int fd);
void ios_control_apply(struct ios *s);

/* sandbox.c */
int ios_sandbox_enter(struct ios *s);

/* standby.c: --standby-fd. Waits for the supervisor's message on the channel; puts its
 * descriptors at their numbers and returns the command line it carries from "ioserver"
 * on (argc, with *argv), 0 when the channel closed without one, -1 (after a message on
 * stderr) for anything else. class is this process's: the message must be for it. */
int ios_standby_wait(int chan, const char *class, char ***argv);

/* Log a message on stderr, naming the server and (when known) the device. */
void ios_log(struct ios *s, const struct vu_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
