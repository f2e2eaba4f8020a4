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

enum sup_state { SUP_IDLE, SUP_RUNNING, SUP_STOPPED };

/* How a partition's monitor ended, read from its events and exit status. */
struct sup_outcome {
	bool exited;            /* the guest exited through the system-control device */
	unsigned status;
	bool reset;             /* the guest asked for a reset */
	bool fault;
	char what[256];         /* human summary of the fault or error */
};

struct sup_partition {
	const struct bh_partition *cfg;
	unsigned id;
	enum sup_state state;
	int mem_fd;
	pid_t pid;
	int console_fd, event_fd;   /* read ends of the monitor's stdout and event pipe */
	int log_fd;                 /* <log_dir>/<name>.console.log */
	char line[512];             /* console text not yet ended by a newline */
	size_t line_len;
	char ev[4096];              /* event text not yet ended by a newline */
	size_t ev_len;
	unsigned restarts;          /* fault restarts, counted against max_restarts */
	unsigned starts;
	struct sup_outcome out;
	char summary[320];          /* final word on how it stopped */
	bool ok;                    /* stopped with status 0 */
};

/* epoll tags beyond the per-partition pipes (which use (index << 1) | pipe). */
#define SUP_TAG_SIGNAL UINT64_MAX
#define SUP_TAG_SCHED  (UINT64_MAX - 1)

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
	struct sup_partition parts[BH_MAX_PARTITIONS];
	unsigned nparts;
	int epfd, sigfd, events_fd;
	struct timespec t0;
	char self[4096];            /* this binary, to start monitors */
	bool quiet;                 /* do not echo consoles */
	int stop_signal;            /* SIGINT/SIGTERM received, 0 otherwise */
	struct sup_sched sched;
};

/* output.c */
void sup_event(struct sup *s, const char *event, const char *partition, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void sup_relay_event_line(struct sup *s, struct sup_partition *p, const char *line);
void sup_console_bytes(struct sup *s, struct sup_partition *p, const char *buf, size_t n);
void sup_console_flush(struct sup *s, struct sup_partition *p);
int sup_open_logs(struct sup *s);

/* partition.c */
int sup_alloc_partition(struct sup *s, struct sup_partition *p);
int sup_alloc_shared(struct sup *s);
int sup_start_partition(struct sup *s, struct sup_partition *p);
void sup_partition_exited(struct sup *s, struct sup_partition *p, int wstatus);
void sup_drain(struct sup *s, struct sup_partition *p);
void sup_event_bytes(struct sup *s, struct sup_partition *p, const char *buf, size_t n);

/* schedule.c */
int sup_sched_start(struct sup *s);
void sup_sched_tick(struct sup *s);
bool sup_sched_may_run(const struct sup *s, const struct sup_partition *p);
void sup_sched_stop(struct sup *s);

#endif
