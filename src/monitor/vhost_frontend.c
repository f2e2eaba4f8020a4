/*
 * The vhost-user frontend of a device (QEMU's vhost-user protocol): owner, features,
 * protocol features and configuration at start-up (and the inflight region in shared
 * mode when a restarted server may have to resubmit requests); features, memory table
 * and rings when the guest sets DRIVER_OK; GET_VRING_BASE when it resets the device;
 * the same handshake again on a new connection to a restarted server. Every reply is
 * checked against the request; with REPLY_ACK every other message is acknowledged.
 * The socket has send and receive timeouts, so a stuck server cannot hang the vCPU.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor/virtio.h"

#define VHF_SOCK_TIMEOUT_S 5         /* a server must answer a request within this */
#define VU_CONFIG_HDR 12             /* offset, size, flags before the payload */
#define VU_INFLIGHT_MIN 20           /* mmap_size, mmap_offset, num_queues, queue_size */

/* GET/SET_INFLIGHT_FD's payload as QEMU sends it: the C structure with its tail
 * padding, 24 bytes (backends built on libvhost-user insist on that size). */
struct vhf_inflight_msg {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

static bool vhf_has_reply(uint32_t req)
{
	return req == VU_GET_FEATURES || req == VU_GET_PROTOCOL_FEATURES ||
	       req == VU_GET_VRING_BASE || req == VU_GET_CONFIG || req == VU_GET_QUEUE_NUM ||
	       req == VU_GET_INFLIGHT_FD;
}

/* Protocol features the monitor uses: acknowledgements and the configuration always;
 * inflight tracking in shared mode when a restarted server can be reconnected. */
static uint64_t vhf_wanted_protocol(const struct vdev *d)
{
	uint64_t want = (1ULL << VU_PROTOCOL_F_REPLY_ACK) | (1ULL << VU_PROTOCOL_F_CONFIG);

	if (d->isolation == VDEV_SHARED && ctl_up(d->m))
		want |= 1ULL << VU_PROTOCOL_F_INFLIGHT_SHMFD;
	return want;
}

bool vhf_has_inflight(const struct vdev *d)
{
	return (d->protocol_features & (1ULL << VU_PROTOCOL_F_INFLIGHT_SHMFD)) &&
	       d->inflight.fd >= 0;
}

int vhf_set_timeouts(int sock)
{
	struct timeval tv = { .tv_sec = VHF_SOCK_TIMEOUT_S };

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* One request; *reply (for requests that have one) receives the server's answer. */
static int vhf_request(struct vdev *d, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds, struct vu_msg *reply)
{
	struct vu_msg msg, ack;
	bool want_ack = !vhf_has_reply(req) &&
			(d->protocol_features & (1ULL << VU_PROTOCOL_F_REPLY_ACK));
	struct vu_msg *r = vhf_has_reply(req) ? reply : &ack;
	int ret;

	if (d->backend_dead || d->sock < 0)
		return -EPIPE;
	memset(&msg.hdr, 0, sizeof(msg.hdr));
	msg.hdr.request = req;
	msg.hdr.flags = VU_VERSION | (want_ack ? VU_FLAG_NEED_REPLY : 0);
	msg.hdr.size = size;
	if (size)
		memcpy(&msg.payload, payload, size);
	msg.nfds = nfds;
	for (unsigned i = 0; i < nfds; i++)
		msg.fds[i] = fds[i];
	ret = vu_send(d->sock, &msg);
	if (!ret && (vhf_has_reply(req) || want_ack))
		ret = vu_recv(d->sock, r);
	if (ret) {
		d->backend_dead = true;       /* a broken or stuck stream cannot be resynchronised */
		return ret;
	}
	if (!vhf_has_reply(req) && !want_ack)
		return 0;
	if (req != VU_GET_INFLIGHT_FD)
		vu_close_fds(r);              /* only the inflight region comes with an fd */
	if (r->hdr.request != req || !(r->hdr.flags & VU_FLAG_REPLY) ||
	    (r->hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
		vu_close_fds(r);
		d->backend_dead = true;
		return -EPROTO;
	}
	if (want_ack && (r->hdr.size != sizeof(uint64_t) || r->payload.u64))
		return -EIO;
	return 0;
}

static int vhf_u64(struct vdev *d, uint32_t req, uint64_t v)
{
	return vhf_request(d, req, &v, sizeof(v), NULL, 0, NULL);
}

static int vhf_get_u64(struct vdev *d, uint32_t req, uint64_t *v)
{
	struct vu_msg r;
	int ret = vhf_request(d, req, NULL, 0, NULL, 0, &r);

	if (ret)
		return ret;
	if (r.hdr.size != sizeof(uint64_t))
		return -EPROTO;
	*v = r.payload.u64;
	return 0;
}

static int vhf_state(struct vdev *d, uint32_t req, unsigned index, unsigned num)
{
	struct vu_vring_state s = { index, num };

	return vhf_request(d, req, &s, sizeof(s), NULL, 0, NULL);
}

static int vhf_fd(struct vdev *d, uint32_t req, unsigned index, int fd)
{
	uint64_t v = index;

	return vhf_request(d, req, &v, sizeof(v), &fd, 1, NULL);
}

static int vhf_get_config(struct vdev *d)
{
	struct vu_config c = { .offset = 0, .size = d->type->config_size, .flags = 0 };
	struct vu_msg r;
	int ret;

	ret = vhf_request(d, VU_GET_CONFIG, &c, VU_CONFIG_HDR + c.size, NULL, 0, &r);
	if (ret)
		return ret;
	/* A reply of size 0 is the server's way of saying it failed. */
	if (r.hdr.size != VU_CONFIG_HDR + c.size || r.payload.config.size != c.size ||
	    r.payload.config.offset != 0)
		return -EIO;
	memcpy(d->config, r.payload.config.payload, c.size);
	return 0;
}

/* GET_INFLIGHT_FD: the region the server tracks requests in (one per device, kept for
 * the monitor's life: a restarted server gets it back with SET_INFLIGHT_FD). */
static int vhf_get_inflight(struct vdev *d)
{
	struct vhf_inflight_msg q = { .num_queues = vdev_nqueues(d), .queue_size = VDEV_QUEUE_SIZE };
	struct vu_msg r;
	int ret;

	ret = vhf_request(d, VU_GET_INFLIGHT_FD, &q, sizeof(q), NULL, 0, &r);
	if (ret)
		return ret;
	if (r.hdr.size < VU_INFLIGHT_MIN) {
		vu_close_fds(&r);
		return -EPROTO;
	}
	memcpy(&q, &r.payload, VU_INFLIGHT_MIN);
	if (!q.mmap_size && !r.nfds)
		return 0;                     /* QEMU's "no tracking": a restart resets shared mode */
	if (r.nfds != 1) {
		vu_close_fds(&r);
		return -EPROTO;
	}
	ret = vif_map(d, r.fds[0], q.mmap_size, q.mmap_offset);
	if (ret)
		vu_close_fds(&r);             /* vif_map keeps the fd only on success */
	return ret;
}

static int vhf_set_inflight(struct vdev *d)
{
	struct vhf_inflight_msg q = { .mmap_size = d->inflight.size,
				      .mmap_offset = d->inflight.offset,
				      .num_queues = vdev_nqueues(d), .queue_size = VDEV_QUEUE_SIZE };

	return vhf_request(d, VU_SET_INFLIGHT_FD, &q, sizeof(q), &d->inflight.fd, 1, NULL);
}

/* SET_OWNER, GET_FEATURES and the protocol features, on a new connection. */
static int vhf_handshake(struct vdev *d, uint64_t *features, uint64_t *pf, const char **why)
{
	int ret;

	*pf = 0;
	ret = vhf_request(d, VU_SET_OWNER, NULL, 0, NULL, 0, NULL);
	if (!ret)
		ret = vhf_get_u64(d, VU_GET_FEATURES, features);
	if (ret) {
		*why = "the server does not answer SET_OWNER/GET_FEATURES";
		return ret;
	}
	if (!(*features & (1ULL << VIRTIO_F_VERSION_1))) {
		*why = "the server does not offer VIRTIO_F_VERSION_1";
		return -ENOTSUP;
	}
	if (*features & (1ULL << VU_F_PROTOCOL_FEATURES)) {
		ret = vhf_get_u64(d, VU_GET_PROTOCOL_FEATURES, pf);
		*pf &= vhf_wanted_protocol(d);
		if (!ret)
			ret = vhf_u64(d, VU_SET_PROTOCOL_FEATURES, *pf);
		if (ret) {
			*why = "protocol feature negotiation failed";
			return ret;
		}
	}
	return 0;
}

int vhf_setup(struct vdev *d, const char **why)
{
	int ret;

	ret = vhf_handshake(d, &d->backend_features, &d->protocol_features, why);
	if (ret)
		return ret;
	if (d->type->config_default)
		d->type->config_default(d->config);
	if (d->type->config_size && (d->protocol_features & (1ULL << VU_PROTOCOL_F_CONFIG))) {
		ret = vhf_get_config(d);
		if (ret) {
			*why = "GET_CONFIG failed";
			return ret;
		}
	} else if (d->type->needs_config) {
		*why = "the server cannot send its configuration (VHOST_USER_PROTOCOL_F_CONFIG)";
		return -ENOTSUP;
	}
	if (d->protocol_features & (1ULL << VU_PROTOCOL_F_INFLIGHT_SHMFD)) {
		ret = vhf_get_inflight(d);
		if (ret) {
			*why = "GET_INFLIGHT_FD failed or gave an unusable region";
			return ret;
		}
	}
	return 0;
}

/* Feature bits the guest may have been offered or the server was given: a restarted
 * server must offer every one the first one did. */
static uint64_t vhf_kept_features(const struct vdev *d)
{
	return (d->backend_features & (d->type->features | VIRTIO_TRANSPORT_FEATURES |
				       (1ULL << VU_F_PROTOCOL_FEATURES))) | d->srv_features;
}

int vhf_reconnect(struct vdev *d, int sock, const char **why)
{
	uint64_t features, pf, lost;
	int ret;

	d->sock = sock;
	d->backend_dead = false;
	d->srv_rings = false;
	d->protocol_features = 0;             /* no REPLY_ACK before it is negotiated again */
	if (vhf_set_timeouts(sock)) {
		*why = "the new connection is not a socket";
		return -ENOTSOCK;
	}
	ret = vhf_handshake(d, &features, &pf, why);
	if (ret)
		return ret;
	lost = vhf_kept_features(d) & ~features;
	if (lost) {
		*why = "the restarted server lacks features the device uses";
		return -ENOTSUP;
	}
	/* Protocol features are the new server's: the inflight region only survives when
	 * it still has INFLIGHT_SHMFD (shared mode then falls back to a reset). */
	d->protocol_features = pf;
	return 0;
}

static int vhf_start_ring(struct vdev *d, unsigned i, const struct vhf_ring *r)
{
	struct vu_vring_addr a = { .index = i, .desc_user_addr = r->desc,
				   .used_user_addr = r->used, .avail_user_addr = r->avail };
	int ret;

	ret = vhf_state(d, VU_SET_VRING_NUM, i, r->num);
	if (!ret)
		ret = vhf_state(d, VU_SET_VRING_BASE, i, r->base);
	if (!ret)
		ret = vhf_request(d, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL);
	/* The call eventfd before the kick: a server starts on the kick. */
	if (!ret)
		ret = vhf_fd(d, VU_SET_VRING_CALL, i, r->call_fd);
	if (!ret && r->err_fd >= 0)
		ret = vhf_fd(d, VU_SET_VRING_ERR, i, r->err_fd);
	if (!ret)
		ret = vhf_fd(d, VU_SET_VRING_KICK, i, r->kick_fd);
	if (!ret && (d->backend_features & (1ULL << VU_F_PROTOCOL_FEATURES)))
		ret = vhf_state(d, VU_SET_VRING_ENABLE, i, 1);
	return ret;
}

int vhf_start(struct vdev *d, uint64_t features, const struct vhf_mem *mem,
	      const struct vhf_ring *rings, const char **why)
{
	struct vu_mem_table t = { .nregions = mem->nregions };
	int ret;

	if (vhf_has_inflight(d)) {
		ret = vhf_set_inflight(d);   /* before the rings: the server reads it on the kick */
		if (ret) {
			*why = "SET_INFLIGHT_FD failed";
			return ret;
		}
	}
	features |= d->backend_features & (1ULL << VU_F_PROTOCOL_FEATURES);
	ret = vhf_u64(d, VU_SET_FEATURES, features);
	if (ret) {
		*why = "SET_FEATURES failed";
		return ret;
	}
	memcpy(t.regions, mem->r, mem->nregions * sizeof(mem->r[0]));
	ret = vhf_request(d, VU_SET_MEM_TABLE, &t, 8 + mem->nregions * sizeof(mem->r[0]),
			  mem->fd, mem->nregions, NULL);
	if (ret) {
		*why = "SET_MEM_TABLE failed";
		return ret;
	}
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		if (!rings[i].num)
			continue;
		ret = vhf_start_ring(d, i, &rings[i]);
		if (ret) {
			*why = "setting up a ring failed";
			return ret;
		}
	}
	d->srv_features = features;
	d->srv_rings = true;
	return 0;
}

/* GET_VRING_BASE stops each ring the guest had enabled. Errors are ignored: the device
 * is being reset either way. */
int vhf_stop(struct vdev *d)
{
	int ret = 0;

	if (!d->srv_rings)
		return 0;                     /* nothing runs on this connection */
	d->srv_rings = false;
	for (unsigned i = 0; i < vdev_nqueues(d); i++) {
		struct vu_vring_state s = { i, 0 };
		struct vu_msg r;

		if (!d->q[i].enabled)
			continue;
		if (vhf_request(d, VU_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &r) && !ret)
			ret = -EIO;
	}
	return ret;
}

int vhf_set_config(struct vdev *d, unsigned off, unsigned size)
{
	struct vu_config c = { .offset = off, .size = size, .flags = 0 };

	if (!(d->protocol_features & (1ULL << VU_PROTOCOL_F_CONFIG)) || size > sizeof(c.payload))
		return -ENOTSUP;
	memcpy(c.payload, d->config + off, size);
	return vhf_request(d, VU_SET_CONFIG, &c, VU_CONFIG_HDR + size, NULL, 0, NULL);
}
