/*
 * The monitor's I/O thread: one epoll loop beside the vCPU thread (which stays in
 * KVM_RUN) for the events the guest-facing devices must serve without a vCPU exit:
 * guest kicks and server completions in window mode, interrupts that cannot go
 * straight through an irqfd, and server hang-ups.
 */
#ifndef BH_MON_IOTHREAD_H
#define BH_MON_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct iot_source;

typedef void (*iot_fn)(struct iot_source *s, uint32_t events);

/* A file descriptor the loop watches. Sources live as long as the process (they are
 * parts of device structures), so a handler may run once after its removal. */
struct iot_source {
	int    fd;
	iot_fn fn;
	void  *opaque;
};

/* An idle hook: called after each batch of events and while the loop spins before
 * sleeping; returns true while it found work (the loop keeps spinning). */
typedef bool (*iot_poll_fn)(void *opaque);

#define IOT_POLLERS_MAX 32

struct iot {
	int       epfd;
	pthread_t thread;
	pthread_mutex_t lock;            /* with started: the thread is up */
	pthread_cond_t  started;
	bool      running;
	uint64_t  spin_ns;               /* how long to poll before sleeping */
	unsigned  npollers;
	struct { iot_poll_fn fn; void *opaque; } pollers[IOT_POLLERS_MAX];
};

int iot_init(struct iot *t);
int iot_add(struct iot *t, struct iot_source *s, uint32_t events);
int iot_del(struct iot *t, struct iot_source *s);
int iot_add_poller(struct iot *t, iot_poll_fn fn, void *opaque);
/* Starts the thread and waits until it runs (before the sandbox: it cannot clone
 * afterwards, and the thread's own set-up makes system calls the sandbox forbids). */
int iot_start(struct iot *t);

#endif
