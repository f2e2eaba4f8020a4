/*
 * The supervisor (`bulkhead run`): the system partition. It owns every resource the
 * system file names, starts one monitor process per partition, relays consoles and
 * health events, and applies each partition's health action when it stops.
 */
#ifndef BH_SUP_H
#define BH_SUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "config/system.h"

struct json_t;
struct sup_counters;

enum sup_state { SUP_IDLE, SUP_RUNNING, SUP_STOPPED };

typedef void (*sup_line_fn)(void *ctx, const char *line, size_t len);

/* A non-blocking pipe read line by line (stream.c). */
struct sup_stream {
	int fd;
	int log_fd;                 /* raw copy of every byte, or -1 */
	bool eof;
	sup_line_fn line;
	void *ctx;
	size_t len;
	char buf[1024];             /* text not yet ended by a newline */
};

/* epoll tags: the kind in the top byte, an index below. */
enum sup_tag_kind {
	SUP_TAG_UART = 1,           /* partition's monitor stdout */
	SUP_TAG_MEVENT,             /* partition's monitor events */
	SUP_TAG_VCON,               /* partition's virtio console, via the console server */
	SUP_TAG_SEVENT,             /* I/O server events */
	SUP_TAG_SIGNAL,
	SUP_TAG_SCHED,
	SUP_TAG_CTL_LISTEN,         /* the control socket */
	SUP_TAG_CTL_CLIENT,         /* one connected control client */
};
#define SUP_TAG(kind, idx) ((uint64_t)(kind) << 56 | (uint64_t)(idx))
#define SUP_TAG_KIND(tag)  ((unsigned)((tag) >> 56))
#define SUP_TAG_IDX(tag)   ((unsigned)((tag) & 0xffffffffu))

/* How a partition's monitor ended, read from its events and exit status. */
struct sup_outcome {
	bool exited;            /* the guest exited through the system-control device */
	unsigned status;
	bool reset;             /* the guest asked for a reset */
	bool fault;
	char what[256];         /* human summary of the fault or error */
};

struct sup;

#define SUP_SUN_PATH_MAX 108        /* sizeof(sockaddr_un.sun_path), NUL included */

struct sup_partition {
	struct sup *sup;
	const struct bh_partition *cfg;
	unsigned id;
	enum sup_state state;
	int mem_fd;
	pid_t pid;
	struct sup_stream uart;     /* the monitor's stdout: the guest's UART */
	struct sup_stream events;   /* the monitor's JSON events */
	struct sup_stream vcon;     /* virtio console output, from the console server */
	int vcon_w;                 /* write end of vcon's pipe, for the console server */
	int dev_fd[BH_MAX_DEVICES]; /* monitor ends of the device connections */
	bool want_conns;            /* starting again: a server's new connections go to
				     * dev_fd, for the next monitor, not to the old one */
	/* engine: qemu: QEMU listens for each device's vhost-user connection on a unix
	 * socket in the supervisor's private directory (sup.vu_dir); vu_fd is an O_PATH
	 * descriptor of that socket once found, which later connections go through (the
	 * name is removed after the first one). */
	char vu_path[BH_MAX_DEVICES][SUP_SUN_PATH_MAX];
	int vu_fd[BH_MAX_DEVICES];
	int ctl_fd, ctl_mon_fd;     /* control socket pair: ours, and the monitor's end */
	int qemu_in_r, qemu_in_w;   /* engine: qemu: the serial port's input, QEMU's stdin
				     * (read end, during start-up) and ours (write end) */
	int log_fd;                 /* <log_dir>/<name>.console.log */
	enum { SUP_OP_NONE, SUP_OP_STOP, SUP_OP_RESTART } op;   /* operator's wish, via ctl */
	struct timespec started;    /* when the current monitor was started */
	unsigned restarts;          /* fault restarts, counted against max_restarts */
	unsigned starts;
	struct sup_outcome out;
	char summary[320];          /* final word on how it stopped */
	bool ok;                    /* stopped with status 0 */
};

/* One device connection as the server sees it: its end of the socket pair and what
 * it serves on it. */
struct sup_conn {
	int fd;
	unsigned part, dev;
	int slot;                   /* index of its --conn in the running server; -1 none */
	int disk;                   /* blk: index into the server's disks */
	int out_fd;                 /* console: where the guest's bytes go */
	bool qemu;                  /* the frontend is QEMU: fd is connected to its socket
				     * (sup_partition.vu_path) when the server starts */
};

#define SUP_MAX_CONNS (BH_MAX_PARTITIONS * BH_MAX_DEVICES)

/* What an I/O server process is given (ioserver.c): its arguments, its event pipe at
 * SRV_EVENT_FD and every other descriptor at a fixed number from SRV_FIRST_FD up. One
 * plan serves a fork + exec and a standby's take-over (standby.c). */
enum { SRV_EVENT_FD = 3, SRV_FIRST_FD = 4 };
#define SRV_EVENT_FD_STR "3"
#define SRV_MAX_FDS  (BH_MAX_DISKS + 2 * SUP_MAX_CONNS + BH_MAX_NETWORKS + 1)
#define SRV_MAX_ARGS (10 + 2 * SUP_MAX_CONNS + 2 * BH_MAX_NETWORKS)

struct srv_plan {
	const char *argv[SRV_MAX_ARGS];
	unsigned argc;
	int src[SRV_MAX_FDS];       /* the supervisor's descriptor */
	int dst[SRV_MAX_FDS];       /* its number in the server */
	unsigned nfds;
	char specs[SUP_MAX_CONNS][256], uplinks[BH_MAX_NETWORKS][64], control[16];
};

/* A hot standby (`standby: true`, standby.c): a `bulkhead ioserver --standby-fd`
 * process already exec'd, blocked on its channel until the supervisor sends it the
 * plan of the server it replaces. */
struct sup_standby {
	pid_t pid;                  /* 0: none */
	int chan_fd;                /* our end of its SOCK_SEQPACKET channel */
	int events_r;               /* read end of its event pipe, watched once it serves */
	struct timespec due;        /* when to start the next one; tv_sec 0: not planned */
};

/* One I/O server process (ioserver.c). */
struct sup_server {
	struct sup *sup;
	const struct bh_ioserver *cfg;
	unsigned id;
	pid_t pid;
	struct sup_stream events;
	int disk_fd[BH_MAX_DISKS];
	struct sup_conn conns[SUP_MAX_CONNS];
	unsigned nconns;
	bool stopping;
	bool failed;                /* dead for good (restart: never, or could not restart) */
	bool waiting;               /* first start held until QEMU partitions listen */
	unsigned restarts;
	struct timespec started;    /* of the current process */
	struct timespec restart_at; /* when a restart is due; tv_sec 0: none pending */
	unsigned backoff_ms;        /* grows while the server keeps dying young */
	struct sup_counters *counters;   /* net servers' per-port counters (counters.c) */
	struct sup_standby standby;
	int ctl_fd;                 /* our end of the running process's control channel */
};

/* The cyclic executive's state (schedule.c). */
struct sup_sched {
	int tfd;                    /* timerfd for slot boundaries */
	int active;                 /* partition allowed to run now, -1 in a gap */
	uint64_t epoch_ns;          /* start of the first major frame */
	uint64_t due_ns;            /* when the timer was due */
	uint64_t switches, late_max_ns, late_sum_ns;
};

struct sup {
	struct bh_system *sys;
	int region_fd[BH_MAX_REGIONS];    /* shared regions, indexed like sys->regions */
	int channel_fd[BH_MAX_CHANNELS];  /* channel memory, indexed like sys->channels */
	int uplink_fd[BH_MAX_NETWORKS];   /* networks' uplink TAPs, indexed like sys->networks */
	struct sup_partition parts[BH_MAX_PARTITIONS];
	unsigned nparts;
	struct sup_server servers[BH_MAX_SERVERS];
	unsigned nservers;
	int epfd, sigfd, events_fd;
	struct timespec t0;
	char self[4096];            /* this binary, to start monitors */
	char vu_dir[SUP_SUN_PATH_MAX];   /* private (0700) directory of QEMU's vhost-user
					  * sockets; empty when there is none */
	bool quiet;                 /* do not echo consoles */
	uint64_t console_unshown;   /* console lines not echoed: stdout was not writable */
	int stop_signal;            /* SIGINT/SIGTERM received, 0 otherwise */
	struct sup_sched sched;
	struct sup_control *control;
};

/* output.c */
void sup_event(struct sup *s, const char *event, const char *partition, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void sup_console_unshown_note(struct sup *s, int fd);
/* Time-stamps and logs one event object (steals it). */
void sup_log_event(struct sup *s, struct json_t *obj);
void sup_monitor_event_line(void *partition, const char *line, size_t len);
void sup_server_event_line(void *server, const char *line, size_t len);
void sup_console_line(void *partition, const char *line, size_t len);
int sup_open_logs(struct sup *s);
int sup_mkdir_p(const char *path);

/* stream.c */
/* Writes everything, retrying short writes; gives up quietly on error (a full disk must
 * not stop the system). */
void sup_write_all(int fd, const char *buf, size_t n);
void sup_stream_init(struct sup_stream *st, int fd, int log_fd, sup_line_fn line, void *ctx);
int sup_stream_read(struct sup_stream *st);     /* bytes read; 0 at EOF or when empty */
void sup_stream_drain(struct sup_stream *st);   /* read what is there, end the last line */
int sup_stream_watch(struct sup *s, struct sup_stream *st, uint64_t tag);
void sup_stream_close(struct sup *s, struct sup_stream *st);

/* counters.c: net servers' per-port counters. sup_counters_event takes a server event
 * (stealing it) when it is a counters report; fold logs and totals the ended process's
 * last reports; json gives the totals for status (a new array). */
bool sup_counters_event(struct sup_server *v, struct json_t *obj);
void sup_counters_fold(struct sup *s, struct sup_server *v);
struct json_t *sup_counters_json(const struct sup_server *v);
void sup_counters_free(struct sup_server *v);

/* uplink.c: TAP interfaces of networks with an uplink */
int sup_open_uplinks(struct sup *s);
void sup_close_uplinks(struct sup *s);

/* ioserver.c */
int sup_prepare_devices(struct sup *s);
int sup_start_servers(struct sup *s);
void sup_server_exited(struct sup *s, struct sup_server *v, int wstatus);
void sup_stop_servers(struct sup *s);
/* Before a partition with devices starts again: each running server it uses is given
 * a new connection per device of it on its control channel, the partition's ends in
 * dev_fd; a server that is not running, or does not take them, is started anew (its
 * other partitions resume as after a crash of it). A QEMU partition's servers are
 * started anew once its new QEMU listens on new sockets. -ENOTCONN when one of them
 * has failed for good. */
int sup_servers_reconnect(struct sup *s, struct sup_partition *p);
bool sup_servers_stopped(const struct sup *s);
/* Restarts servers whose backoff has passed and starts those that waited for QEMU
 * partitions to listen; returns ms until the next one is due, or -1 when none is
 * pending (an epoll timeout). */
int sup_servers_tick(struct sup *s);

/* qemu_sock.c: the vhost-user sockets QEMU partitions listen on */
int sup_qemu_sock_path(struct sup *s, struct sup_partition *p, unsigned d);
/* A new connection to device d's socket: the fd, -EAGAIN while QEMU does not listen. */
int sup_qemu_connect(struct sup_partition *p, unsigned d);
/* After a server restart: a new connection for cn, or -1 when its QEMU is gone. */
int sup_qemu_reconnect(struct sup *s, struct sup_server *v, const struct sup_conn *cn);
/* The directory, once empty (or at the end whatever it holds). */
void sup_qemu_sock_dir_remove(struct sup *s, bool at_end);
/* Connects what it can of a waiting server's QEMU connections; true when none is left. */
bool sup_qemu_connect_waiting(struct sup *s, struct sup_server *v);
/* A QEMU partition starting again: new sockets, its servers waiting for it. */
int sup_qemu_reconnect_later(struct sup *s, struct sup_partition *p);

/* standby.c: hot standby servers */
void sup_standby_init(struct sup_server *v);
/* Plans the server's next standby (if it has `standby: true` and none): at once, or a
 * little later after a take-over. */
void sup_standby_plan(struct sup_server *v, bool after_takeover);
/* Starts the standbys that are due; ms until the next one, or -1. */
int sup_standby_tick(struct sup *s, const struct timespec *now);
/* Hands the plan to the server's standby: its pid, which now is the server, with the
 * read end of its event pipe in *events_r; 0 when there is no standby or it could not
 * take over (then it is told to go). */
pid_t sup_standby_take_over(struct sup *s, struct sup_server *v, const struct srv_plan *pl,
			    int *events_r);
/* Reaping: true when pid was a standby (handled: replaced after a while). */
bool sup_standby_exited(struct sup *s, pid_t pid, int wstatus);
/* At the end: no new standby, the present one told to go (still to be reaped). */
void sup_standby_stop(struct sup_server *v);

/* partition.c */
int sup_alloc_partition(struct sup *s, struct sup_partition *p);
int sup_alloc_shared(struct sup *s);
int sup_start_partition(struct sup *s, struct sup_partition *p);
void sup_partition_exited(struct sup *s, struct sup_partition *p, int wstatus);


/* control.c: the control socket (JSON lines) that `bulkhead ctl` talks to */
int sup_control_open(struct sup *s);
void sup_control_event(struct sup *s, uint64_t tag);
void sup_control_publish(struct sup *s, const char *kind, const char *partition,
			 const char *text);
void sup_control_close(struct sup *s);

/* partition.c, for operator commands */
int sup_operator_start(struct sup *s, struct sup_partition *p);
int sup_operator_stop(struct sup *s, struct sup_partition *p, bool restart_after);

/* child.c: in a child between fork and exec. sup_child_init ties the child's life to
 * the supervisor's (it exits if the supervisor is already gone) and unblocks signals;
 * sup_child_lift copies fd above `above` (close-on-exec), so that descriptors can then
 * be placed at low fixed numbers without clobbering one still to be placed. */
void sup_child_init(void);
int sup_child_lift(int fd, int above);

/* qemu.c: `engine: qemu` partitions. In the child after fork: execs
 * qemu-system-x86_64 for partition p with its serial console on console_w and the
 * partition's memfd as guest RAM; never returns. */
void sup_exec_qemu(struct sup *s, struct sup_partition *p, int console_w, int event_w)
	__attribute__((noreturn));

/* schedule.c */
int sup_sched_start(struct sup *s);
void sup_sched_tick(struct sup *s);
bool sup_sched_may_run(const struct sup *s, const struct sup_partition *p);
void sup_sched_stop(struct sup *s);

/* ioserver.c, for `bulkhead ctl restart SERVER`: ends the server (SIGTERM, then
 * SIGKILL) and starts it again at once on new connections, whatever its `restart`
 * policy; -ECANCELED while the system stops. */
int sup_operator_restart_server(struct sup *s, struct sup_server *v);

/* partition.c, for `bulkhead ctl console`: bytes for the partition's UART receiver.
 * -ESRCH not running, -EOPNOTSUPP an engine: qemu partition, -EAGAIN monitor busy. */
int sup_console_input(struct sup *s, struct sup_partition *p, const char *data, size_t n);

#endif
