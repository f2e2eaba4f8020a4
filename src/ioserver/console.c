/*
 * The virtio-console class (virtio 1.2, 5.3), port 0 only: what the guest transmits goes
 * to the connection's output fd. A full pipe holds back only that device (its transmit
 * ring waits for EPOLLOUT); the receive queue is left alone: there is no input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

#define CONSOLE_TXQ        1        /* transmitq of port 0; 0 is its receiveq */
#define CONSOLE_QUEUE_MAX  1024

struct console_dev {
	struct vu_dev *d;
	int out_fd;                       /* this device's own dup of the output */
	struct ios_watch out_watch;       /* armed while the output is full */
	bool waiting;
	bool pending;                     /* chain holds bytes not all written yet */
	uint64_t done;
	struct vring_chain chain;
};

static uint64_t console_features(struct vu_dev *d)
{
	return IOS_RING_FEATURES;
}

static size_t console_config_fill(struct vu_dev *d, uint8_t *buf)
{
	struct virtio_console_config c = { .max_nr_ports = 1 };

	memcpy(buf, &c, sizeof(c));
	return sizeof(c);
}

/* The output must be writable; pipes and sockets become non-blocking so that a reader
 * that stops reading cannot stall the server. */
static const char *console_prepare_spec(struct ios_conn_spec *spec)
{
	struct stat st;
	int fl;

	if (spec->out_fd < 0)
		return "an out= fd is required";
	fl = fcntl(spec->out_fd, F_GETFL);
	if (fl < 0 || fstat(spec->out_fd, &st))
		return "out= is not an open file";
	if ((fl & O_ACCMODE) == O_RDONLY)
		return "out= is not open for writing";
	if ((S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) &&
	    fcntl(spec->out_fd, F_SETFL, fl | O_NONBLOCK))
		return "cannot make out= non-blocking";
	return NULL;
}

static void console_writable(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct console_dev *cd = (struct console_dev *)((char *)w -
							offsetof(struct console_dev, out_watch));

	ios_watch_del(s, w);
	cd->waiting = false;               /* the loop resumes the ring */
}

static int console_dev_init(struct vu_dev *d, const struct ios_conn_spec *spec)
{
	struct console_dev *cd = calloc(1, sizeof(*cd));

	if (!cd)
		return -ENOMEM;
	/* Its own fd: every device may wait for EPOLLOUT on the same output. */
	cd->out_fd = dup(spec->out_fd);
	if (cd->out_fd < 0) {
		free(cd);
		return -errno;
	}
	cd->d = d;
	cd->out_watch.fd = cd->out_fd;
	cd->out_watch.fn = console_writable;
	d->priv = cd;
	return 0;
}

static void console_dev_fini(struct vu_dev *d)
{
	struct console_dev *cd = d->priv;

	if (cd->waiting)
		ios_watch_del(d->s, &cd->out_watch);
	close(cd->out_fd);
	free(cd);
	d->priv = NULL;
}

/* Counted per device: what the guest wrote, and what of it nobody read. */
enum { CONSOLE_C_CHAINS, CONSOLE_C_BYTES, CONSOLE_C_DROPPED, CONSOLE_NCOUNTERS };
static const char *const console_counter_names[CONSOLE_NCOUNTERS] = {
	"chains", "bytes", "dropped_bytes",
};

/* Writes what is left of the pending chain. False while the output is full. */
static bool console_flush(struct console_dev *cd, struct vu_queue *vq)
{
	struct iovec iov[VRING_MAX_IOV];

	while (cd->done < cd->chain.readable) {
		uint64_t skip = cd->done;
		unsigned n = 0;
		ssize_t w;

		for (unsigned i = 0; i < cd->chain.niov && !cd->chain.iov[i].write; i++) {
			const struct vring_iov *v = &cd->chain.iov[i];

			if (skip >= v->len) {
				skip -= v->len;
				continue;
			}
			iov[n++] = (struct iovec){ (uint8_t *)v->base + skip, v->len - skip };
			skip = 0;
		}
		w = writev(cd->out_fd, iov, (int)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (!ios_watch_add(vq->dev->s, &cd->out_watch, EPOLLOUT))
				cd->waiting = true;
			return false;
		}
		if (w <= 0) {
			/* nobody reads the output: drop the bytes */
			ios_count(cd->d, CONSOLE_C_DROPPED, cd->chain.readable - cd->done);
			break;
		}
		cd->done += (uint64_t)w;
		ios_count(cd->d, CONSOLE_C_BYTES, (uint64_t)w);
	}
	ios_count(cd->d, CONSOLE_C_CHAINS, 1);
	cd->pending = false;
	vu_queue_push(vq, cd->chain.head, 0);
	return true;
}

static unsigned console_handle(struct vu_dev *d, struct vu_queue *vq, unsigned budget)
{
	struct console_dev *cd = d->priv;
	unsigned n = 0;

	if (vq->index != CONSOLE_TXQ || cd->waiting)
		return 0;
	if (cd->pending) {
		if (!console_flush(cd, vq))
			return 0;
		n++;
	}
	while (n < budget && vu_queue_pop(vq, &cd->chain)) {
		n++;
		cd->pending = true;
		cd->done = 0;
		if (!console_flush(cd, vq))
			break;
	}
	return n;
}

/* A ring stopping or a device going: hand the pending chain back, written or not. */
static void console_drain(struct vu_dev *d)
{
	struct console_dev *cd = d->priv;

	if (cd->waiting) {
		ios_watch_del(d->s, &cd->out_watch);
		cd->waiting = false;
	}
	if (cd->pending) {
		cd->pending = false;
		vu_queue_push(&d->q[CONSOLE_TXQ], cd->chain.head, 0);
	}
}

const struct ios_backend ios_console_backend = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.nqueues = 2,
	.queue_max = CONSOLE_QUEUE_MAX,
	.features = console_features,
	.config = console_config_fill,
	.prepare_spec = console_prepare_spec,
	.dev_init = console_dev_init,
	.dev_fini = console_dev_fini,
	.handle = console_handle,
	.drain = console_drain,
	.reset = console_drain,
	.counter_names = console_counter_names,
	.ncounters = CONSOLE_NCOUNTERS,
};
