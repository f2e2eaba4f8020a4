/*
 * virtio-blk in the I/O server: requests (blk.c) and their asynchronous I/O on one
 * io_uring per server (blk_io.c). Each connection sees only its slice of a disk file.
 */
#ifndef BH_IOSERVER_BLK_H
#define BH_IOSERVER_BLK_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ioserver/ioserver.h"

#define BLK_MAX_SEGS    16u        /* discard / write-zeroes ranges in one request */
#define BLK_QUEUE_MAX   1024u
#define BLK_SQ_ENTRIES  256u

struct blk_req;

enum blk_op_kind { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH, BLK_OP_FALLOCATE };

/* One submission: a read/write, a flush, or one fallocate range. */
struct blk_op {
	struct blk_req *req;
	enum blk_op_kind kind;
	uint64_t off, len;                /* file offset; bytes (rw: still to transfer) */
	int mode;                         /* fallocate mode */
};

/* A request in flight, from a per-device pool sized by the queue. */
struct blk_req {
	struct blk_dev *bd;
	struct vu_queue *vq;
	struct blk_req *next_free;
	uint16_t head;
	uint32_t type;
	uint8_t *status;                  /* the last device-writable byte */
	uint32_t used_len;                /* bytes written into the chain on success */
	uint64_t bytes;                   /* IN/OUT: the data's length */
	unsigned pending;                 /* ops not yet completed */
	int err;                          /* the first failure */
	unsigned nops;
	struct blk_op op[BLK_MAX_SEGS];
	unsigned iov_first, niov;         /* rw: the data buffers not yet transferred */
	struct iovec iov[VRING_MAX_IOV];
};

struct blk_dev {
	struct vu_dev *d;
	int file;                         /* index among the ring's registered files */
	uint64_t offset, size;            /* the slice, bytes */
	bool readonly;
	char serial[20];
	struct blk_req *reqs;
	unsigned nreqs, inflight;
	struct blk_req *free;
};

struct blk_server {
	struct io_uring ring;
	bool ring_ready;
	int efd;                          /* signalled by the ring on completions */
	struct ios_watch watch;
	int files[IOS_MAX_CONNS];
	unsigned nfiles;
	struct vring_chain chain;         /* where vring_pop puts a chain being parsed */
};

/* blk_io.c */
int blk_io_init(struct ios *s, const struct ios_conn_spec *specs, unsigned n);
void blk_io_fini(struct ios *s);
int blk_io_file(struct blk_server *bs, int fd);
bool blk_io_room(struct blk_server *bs, unsigned n);
void blk_io_submit_op(struct blk_server *bs, struct blk_op *op);
int blk_io_poll(struct ios *s);
void blk_io_drain(struct vu_dev *d);

/* blk.c: one submission finished with res (bytes, or -errno). */
void blk_op_done(struct blk_server *bs, struct blk_op *op, int res);

#endif
