/*
 * The backend side of the vhost-user protocol (QEMU's vhost-user specification): one
 * handler per request this server supports, a reply where the request has one or the
 * frontend set NEED_REPLY, and unknown requests refused or ignored.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

/* The inflight description as frontends send it: QEMU's struct is not packed, so its
 * 20 bytes of fields travel as 24 (and QEMU checks the reply's size). */
#define VU_INFLIGHT_MSG_SIZE 24
_Static_assert(sizeof(union vu_payload) >= VU_INFLIGHT_MSG_SIZE, "room for the reply");

/* A handler returns 0 or -errno; it fills reply->payload (and hdr.size) when the
 * request has a reply of its own. */
typedef int (*vu_handler_fn)(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply);

static int vu_reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->payload.u64 = v;
	reply->hdr.size = sizeof(uint64_t);
	return 0;
}

/* The queue a request names, or NULL. */
static struct vu_queue *vu_msg_queue(struct vu_dev *d, uint32_t index)
{
	return index < d->s->ops->nqueues ? &d->q[index] : NULL;
}

static uint64_t vu_features_offered(struct vu_dev *d)
{
	return d->s->ops->features(d) | (1ull << VU_F_PROTOCOL_FEATURES);
}

static void vu_drain(struct vu_dev *d)
{
	if (d->s->ops->drain)
		d->s->ops->drain(d);
}

static int vu_get_features(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return vu_reply_u64(reply, vu_features_offered(d));
}

static int vu_set_features(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t v = msg->payload.u64;

	if (v & ~vu_features_offered(d))
		return -EINVAL;
	d->features = v;
	for (unsigned i = 0; i < d->s->ops->nqueues; i++) {
		d->q[i].vr.event_idx = v & (1ull << VIRTIO_F_EVENT_IDX);
		d->q[i].vr.indirect = v & (1ull << VIRTIO_F_INDIRECT_DESC);
	}
	return 0;
}

static int vu_set_owner(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return 0;
}

/* Every queue's inflight record emptied: the device starts afresh, nothing it had taken
 * is to be resubmitted (a device reset). */
static void vu_inflight_forget_all(struct vu_dev *d)
{
	for (unsigned i = 0; i < d->s->ops->nqueues; i++) {
		struct vu_inflight_queue *q = vu_inflight_queue(&d->infl, i);

		if (q)
			vu_inflight_forget(q, d->infl.queue_size);
	}
}

/* RESET_DEVICE, and RESET_OWNER taken the same way: every ring stopped, its fds closed,
 * the memory table dropped, features forgotten; the device is whole again. */
static int vu_reset(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	vu_drain(d);
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++) {
		vu_queue_close_fds(&d->q[i]);
		vu_queue_init(d, &d->q[i], i);
	}
	vu_inflight_forget_all(d);
	vu_mem_clear(&d->mem);
	d->features = 0;
	if (d->broken)
		ios_event_dev(d, "device_reset", NULL, -1);
	d->broken = false;
	if (d->s->ops->reset)
		d->s->ops->reset(d);
	return 0;
}

static int vu_get_protocol_features(struct vu_dev *d, struct vu_msg *msg,
				    struct vu_msg *reply)
{
	return vu_reply_u64(reply, IOS_PROTOCOL_FEATURES);
}

static int vu_set_protocol_features(struct vu_dev *d, struct vu_msg *msg,
				    struct vu_msg *reply)
{
	if (msg->payload.u64 & ~IOS_PROTOCOL_FEATURES)
		return -EINVAL;
	d->protocol_features = msg->payload.u64;
	return 0;
}

static int vu_set_mem_table(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_mem_table *t = &msg->payload.mem;
	int rc;

	if (t->nregions > VU_MAX_REGIONS ||
	    msg->hdr.size < offsetof(struct vu_mem_table, regions) +
			    t->nregions * sizeof(t->regions[0]))
		return -EINVAL;
	/* Nothing in flight may point into the old mappings. */
	vu_drain(d);
	rc = vu_mem_set(&d->mem, t, msg->fds, msg->nfds);
	if (rc)
		return rc;
	for (unsigned i = 0; i < d->s->ops->nqueues; i++)
		if (vu_queue_remap(&d->q[i]))
			vu_dev_fail(d, &d->q[i], VRING_BAD_ADDR);
	return 0;
}

static int vu_set_vring_num(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_queue *vq = vu_msg_queue(d, msg->payload.state.index);
	uint32_t num = msg->payload.state.num;

	if (!vq || vq->started || !num || (num & (num - 1)) || num > d->s->ops->queue_max)
		return -EINVAL;
	vq->num = (uint16_t)num;
	return 0;
}

static int vu_set_vring_addr(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_vring_addr *a = &msg->payload.addr;
	struct vu_queue *vq = vu_msg_queue(d, a->index);

	if (!vq)
		return -EINVAL;
	vq->desc_ua = a->desc_user_addr;
	vq->avail_ua = a->avail_user_addr;
	vq->used_ua = a->used_user_addr;
	vq->addr_set = true;
	if (vu_queue_remap(vq)) {
		vu_dev_fail(d, vq, VRING_BAD_ADDR);
		return -EFAULT;
	}
	return 0;
}

static int vu_set_vring_base(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_queue *vq = vu_msg_queue(d, msg->payload.state.index);

	if (!vq || vq->started || msg->payload.state.num > UINT16_MAX)
		return -EINVAL;
	vq->base = (uint16_t)msg->payload.state.num;
	return 0;
}

/* Stops the ring (its in-flight requests completed first) and says where it stopped. */
static int vu_get_vring_base(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	uint32_t index = msg->payload.state.index;
	struct vu_queue *vq = vu_msg_queue(d, index);

	reply->hdr.size = sizeof(struct vu_vring_state);
	reply->payload.state.index = index;
	reply->payload.state.num = 0;
	if (!vq)
		return -EINVAL;
	vu_drain(d);
	vu_queue_notify(vq);
	vu_queue_stop(vq);
	reply->payload.state.num = vq->base;
	return 0;
}

/* The fd a KICK/CALL/ERR message carries: -1 with NOFD, or an error. */
static int vu_msg_take_fd(struct vu_msg *msg, int *fd)
{
	if (msg->payload.u64 & VU_VRING_NOFD) {
		*fd = -1;
		return 0;
	}
	if (msg->nfds != 1)
		return -EINVAL;
	*fd = msg->fds[0];
	msg->fds[0] = -1;                 /* ours now */
	return 0;
}

static bool vu_any_started(const struct vu_dev *d)
{
	for (unsigned i = 0; i < d->s->ops->nqueues; i++)
		if (d->q[i].started)
			return true;
	return false;
}

/* The kick fd starts the ring. Starting a stopped device afresh also clears a previous
 * NEEDS_RESET: the frontend has reset it (GET_VRING_BASE on every ring, then set-up). */
static int vu_set_vring_kick(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_queue *vq = vu_msg_queue(d, msg->payload.u64 & VU_VRING_IDX_MASK);
	int fd, rc;

	if (!vq)
		return -EINVAL;
	rc = vu_msg_take_fd(msg, &fd);
	if (rc)
		return rc;
	if (vq->kick_fd >= 0) {
		ios_watch_del(d->s, &vq->kick_watch);
		close(vq->kick_fd);
	}
	vq->kick_fd = vq->kick_watch.fd = fd;
	vq->poll_kick = fd < 0;
	if (fd >= 0 && (rc = ios_watch_add(d->s, &vq->kick_watch, EPOLLIN))) {
		close(fd);
		vq->kick_fd = vq->kick_watch.fd = -1;
		return rc;
	}
	if (vq->started)
		return 0;
	if (d->broken && !vu_any_started(d)) {
		d->broken = false;
		vu_inflight_forget_all(d);
		ios_event_dev(d, "device_reset", NULL, -1);
	}
	rc = vu_queue_start(vq);
	if (rc == -EFAULT)
		vu_dev_fail(d, vq, VRING_BAD_ADDR);
	return rc;
}

static int vu_set_vring_fd(struct vu_dev *d, struct vu_msg *msg, bool call)
{
	struct vu_queue *vq = vu_msg_queue(d, msg->payload.u64 & VU_VRING_IDX_MASK);
	int *slot, fd, rc;

	if (!vq)
		return -EINVAL;
	rc = vu_msg_take_fd(msg, &fd);
	if (rc)
		return rc;
	slot = call ? &vq->call_fd : &vq->err_fd;
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
	return 0;
}

static int vu_set_vring_call(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return vu_set_vring_fd(d, msg, true);
}

static int vu_set_vring_err(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return vu_set_vring_fd(d, msg, false);
}

static int vu_set_vring_enable(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_queue *vq = vu_msg_queue(d, msg->payload.state.index);

	if (!vq || msg->payload.state.num > 1)
		return -EINVAL;
	vq->enabled = msg->payload.state.num;
	return 0;
}

static int vu_get_queue_num(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return vu_reply_u64(reply, d->s->ops->nqueues);
}

/* The configuration space, zero beyond what the class defines: frontends ask for their
 * own idea of its size. An error is a reply without payload. */
static int vu_get_config(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_config *req = &msg->payload.config;
	uint8_t space[VU_MAX_CONFIG] = { 0 };

	reply->hdr.size = 0;
	if (req->size > VU_MAX_CONFIG || req->offset > VU_MAX_CONFIG - req->size)
		return -EINVAL;
	d->s->ops->config(d, space);
	reply->payload.config.offset = req->offset;
	reply->payload.config.size = req->size;
	reply->payload.config.flags = req->flags;
	memcpy(reply->payload.config.payload, space + req->offset, req->size);
	reply->hdr.size = offsetof(struct vu_config, payload) + req->size;
	return 0;
}

/* Whether the frontend may hand over an inflight region now: negotiated, every ring
 * stopped, a sensible shape. */
static int vu_inflight_allowed(struct vu_dev *d, const struct vu_inflight *want)
{
	if (!(d->protocol_features & (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD)))
		return -EINVAL;
	if (vu_any_started(d))
		return -EBUSY;
	if (!want->num_queues || want->num_queues > d->s->ops->nqueues ||
	    !want->queue_size || want->queue_size > VU_INFLIGHT_MAX_SIZE)
		return -EINVAL;
	return 0;
}

/* A new region for num_queues queues of queue_size: ours to track in from now on, its
 * fd for the frontend to keep (and hand to the next server). An error is a reply with
 * mmap_size 0 and no fd, which QEMU takes for "no inflight tracking". */
static int vu_get_inflight_fd(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_inflight want = msg->payload.inflight;
	struct vu_inflight *r = &reply->payload.inflight;
	uint64_t size;
	int fd, rc;

	memset(&reply->payload, 0, VU_INFLIGHT_MSG_SIZE);
	reply->hdr.size = VU_INFLIGHT_MSG_SIZE;
	rc = vu_inflight_allowed(d, &want);
	if (!rc)
		rc = vu_inflight_create(&d->infl, want.num_queues, want.queue_size, &fd, &size);
	if (rc)
		return rc;
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++)
		d->q[i].infl_inherited = false;
	r->mmap_size = size;
	r->mmap_offset = 0;
	r->num_queues = want.num_queues;
	r->queue_size = want.queue_size;
	reply->fds[0] = fd;
	reply->nfds = 1;
	return 0;
}

/* The frontend's region: a fresh one, or what a previous server of this device left
 * (resubmitted when the rings start). */
static int vu_set_inflight_fd(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_inflight want = msg->payload.inflight;
	int rc = vu_inflight_allowed(d, &want);

	if (!rc && msg->nfds != 1)
		rc = -EINVAL;
	if (!rc)
		rc = vu_inflight_map_fd(&d->infl, msg->fds[0], want.mmap_size, want.mmap_offset,
					want.num_queues, want.queue_size);
	if (rc)
		return rc;
	for (unsigned i = 0; i < IOS_MAX_QUEUES; i++)
		d->q[i].infl_inherited = true;
	return 0;
}

/* No class has a writable configuration field. */
static int vu_set_config(struct vu_dev *d, struct vu_msg *msg, struct vu_msg *reply)
{
	return -EPERM;
}

struct vu_handler {
	vu_handler_fn fn;
	uint32_t size;                    /* payload bytes the request needs at least */
	bool replies;                     /* the request has a reply of its own */
};

static const struct vu_handler vu_handlers[] = {
	[VU_GET_FEATURES] = { vu_get_features, 0, true },
	[VU_SET_FEATURES] = { vu_set_features, sizeof(uint64_t), false },
	[VU_SET_OWNER] = { vu_set_owner, 0, false },
	[VU_RESET_OWNER] = { vu_reset, 0, false },
	[VU_SET_MEM_TABLE] = { vu_set_mem_table, offsetof(struct vu_mem_table, regions), false },
	[VU_SET_VRING_NUM] = { vu_set_vring_num, sizeof(struct vu_vring_state), false },
	[VU_SET_VRING_ADDR] = { vu_set_vring_addr, sizeof(struct vu_vring_addr), false },
	[VU_SET_VRING_BASE] = { vu_set_vring_base, sizeof(struct vu_vring_state), false },
	[VU_GET_VRING_BASE] = { vu_get_vring_base, sizeof(struct vu_vring_state), true },
	[VU_SET_VRING_KICK] = { vu_set_vring_kick, sizeof(uint64_t), false },
	[VU_SET_VRING_CALL] = { vu_set_vring_call, sizeof(uint64_t), false },
	[VU_SET_VRING_ERR] = { vu_set_vring_err, sizeof(uint64_t), false },
	[VU_GET_PROTOCOL_FEATURES] = { vu_get_protocol_features, 0, true },
	[VU_SET_PROTOCOL_FEATURES] = { vu_set_protocol_features, sizeof(uint64_t), false },
	[VU_GET_QUEUE_NUM] = { vu_get_queue_num, 0, true },
	[VU_SET_VRING_ENABLE] = { vu_set_vring_enable, sizeof(struct vu_vring_state), false },
	[VU_GET_CONFIG] = { vu_get_config, offsetof(struct vu_config, payload), true },
	[VU_SET_CONFIG] = { vu_set_config, offsetof(struct vu_config, payload), false },
	[VU_GET_INFLIGHT_FD] = { vu_get_inflight_fd, offsetof(struct vu_inflight, queue_size) +
							  sizeof(uint16_t), true },
	[VU_SET_INFLIGHT_FD] = { vu_set_inflight_fd, offsetof(struct vu_inflight, queue_size) +
							  sizeof(uint16_t), false },
	[VU_RESET_DEVICE] = { vu_reset, 0, false },
};

int vu_dev_message(struct vu_dev *d)
{
	struct vu_msg msg, reply;
	const struct vu_handler *h = NULL;
	int rc;

	rc = vu_recv(d->sock, &msg);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	if ((msg.hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
		vu_close_fds(&msg);
		return -EPROTO;
	}
	memset(&reply.hdr, 0, sizeof(reply.hdr));
	reply.nfds = 0;
	reply.hdr.request = msg.hdr.request;
	reply.hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	if (msg.hdr.request < sizeof(vu_handlers) / sizeof(vu_handlers[0]))
		h = &vu_handlers[msg.hdr.request];
	if (!h || !h->fn) {
		ios_log(d->s, d, "vhost-user request %u (%s) not supported%s", msg.hdr.request,
			vu_request_name(msg.hdr.request),
			msg.hdr.flags & VU_FLAG_NEED_REPLY ? ": refused" : ": ignored");
		rc = -ENOSYS;
	} else if (msg.hdr.size < h->size) {
		rc = -EINVAL;
	} else {
		rc = h->fn(d, &msg, &reply);
	}
	vu_close_fds(&msg);
	if (rc && h && h->fn)
		ios_log(d->s, d, "%s refused: %s", vu_request_name(msg.hdr.request),
			strerror(-rc));
	if (h && h->fn && h->replies) {
		rc = vu_send(d->sock, &reply);
		vu_close_fds(&reply);         /* the frontend has its own copies now */
		return rc;
	}
	if (msg.hdr.flags & VU_FLAG_NEED_REPLY) {
		vu_reply_u64(&reply, rc ? (uint64_t)-rc : 0);
		return vu_send(d->sock, &reply);
	}
	return 0;
}
