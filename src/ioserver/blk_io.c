/*
 * The block server's one io_uring, restricted before it is enabled to readv, writev,
 * fdatasync and fallocate on the disk files registered at start-up. Submissions are
 * batched per turn; completions wake the loop through an eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ioserver/blk.h"

static void blk_io_wakeup(struct ios *s, struct ios_watch *w, uint32_t events)
{
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: cleared already; the completions are reaped by the loop */
	}
}

/* Debian's liburing 2.3 declares io_uring_register_restrictions() and
 * io_uring_enable_rings() but does not export them: the two registrations by hand. */
static int blk_io_register(struct io_uring *ring, unsigned op, const void *arg, unsigned n)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, n) < 0 ? -errno : 0;
}

/* What the ring may do once enabled, whatever the process asks of it later. */
static int blk_io_restrict(struct io_uring *ring)
{
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
				       IORING_OP_FALLOCATE };
	struct io_uring_restriction r[sizeof(ops) + 1];

	memset(r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(ops); i++) {
		r[i].opcode = IORING_RESTRICTION_SQE_OP;
		r[i].sqe_op = ops[i];
	}
	r[sizeof(ops)].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
	r[sizeof(ops)].sqe_flags = IOSQE_FIXED_FILE;
	return blk_io_register(ring, IORING_REGISTER_RESTRICTIONS, r, sizeof(r) / sizeof(r[0]));
}

static int blk_io_setup(struct blk_server *bs)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE,
		.cq_entries = BLK_SQ_ENTRIES * 4,
	};
	int rc = io_uring_queue_init_params(BLK_SQ_ENTRIES, &bs->ring, &p);

	if (rc < 0)
		return rc;
	bs->ring_ready = true;
	rc = io_uring_register_eventfd(&bs->ring, bs->efd);
	if (!rc && bs->nfiles)
		rc = io_uring_register_files(&bs->ring, bs->files, bs->nfiles);
	if (!rc)
		rc = blk_io_restrict(&bs->ring);
	if (!rc)
		rc = blk_io_register(&bs->ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	return rc < 0 ? rc : 0;
}

int blk_io_init(struct ios *s, const struct ios_conn_spec *specs, unsigned n)
{
	struct blk_server *bs = calloc(1, sizeof(*bs));
	int rc;

	if (!bs)
		return -ENOMEM;
	bs->efd = -1;
	s->priv = bs;
	for (unsigned i = 0; i < n && bs->nfiles < IOS_MAX_CONNS; i++)
		if (specs[i].disk_fd >= 0 && blk_io_file(bs, specs[i].disk_fd) < 0)
			bs->files[bs->nfiles++] = specs[i].disk_fd;
	bs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (bs->efd < 0)
		return -errno;
	rc = blk_io_setup(bs);
	if (rc)
		return rc;
	bs->watch.fd = bs->efd;
	bs->watch.fn = blk_io_wakeup;
	return ios_watch_add(s, &bs->watch, EPOLLIN);
}

void blk_io_fini(struct ios *s)
{
	struct blk_server *bs = s->priv;

	if (!bs)
		return;
	if (bs->ring_ready)
		io_uring_queue_exit(&bs->ring);
	if (bs->efd >= 0)
		close(bs->efd);
	free(bs);
	s->priv = NULL;
}

int blk_io_file(struct blk_server *bs, int fd)
{
	for (unsigned i = 0; i < bs->nfiles; i++)
		if (bs->files[i] == fd)
			return (int)i;
	return -1;
}

bool blk_io_room(struct blk_server *bs, unsigned n)
{
	if (io_uring_sq_space_left(&bs->ring) < n)
		io_uring_submit(&bs->ring);
	return io_uring_sq_space_left(&bs->ring) >= n;
}

void blk_io_submit_op(struct blk_server *bs, struct blk_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bs->ring);
	struct blk_req *req = op->req;
	int file = req->bd->file;

	if (!sqe) {
		io_uring_submit(&bs->ring);
		sqe = io_uring_get_sqe(&bs->ring);
	}
	if (!sqe) {                /* cannot happen: blk_io_room was asked first */
		blk_op_done(bs, op, -EAGAIN);
		return;
	}
	switch (op->kind) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, file, req->iov + req->iov_first, req->niov, op->off);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, file, req->iov + req->iov_first, req->niov, op->off);
		break;
	case BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, file, IORING_FSYNC_DATASYNC);
		break;
	default:
		io_uring_prep_fallocate(sqe, file, op->mode, (off_t)op->off, (off_t)op->len);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, op);
}

/* Completes everything the ring has finished; returns how many. */
static int blk_io_reap(struct blk_server *bs)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&bs->ring, &cqe) == 0) {
		struct blk_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&bs->ring, cqe);
		blk_op_done(bs, op, res);
		n++;
	}
	return n;
}

int blk_io_poll(struct ios *s)
{
	struct blk_server *bs = s->priv;

	if (io_uring_sq_ready(&bs->ring))
		io_uring_submit(&bs->ring);
	return blk_io_reap(bs);
}

void blk_io_drain(struct vu_dev *d)
{
	struct blk_server *bs = d->s->priv;
	struct blk_dev *bd = d->priv;

	while (bd && bd->inflight) {
		int rc = io_uring_submit_and_wait(&bs->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			ios_log(d->s, d, "io_uring: %s", strerror(-rc));
			return;
		}
		blk_io_reap(bs);
	}
}
