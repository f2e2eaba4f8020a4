/*
 * The vhost-user frontend of a device (QEMU's vhost-user protocol): owner, features,
 * protocol features and configuration at start-up; features, memory table and rings
 * when the guest sets DRIVER_OK; GET_VRING_BASE when it resets the device. Every reply
 * is checked against the request; with REPLY_ACK every other message is acknowledged.
 * The socket has send and receive timeouts, so a stuck server cannot hang the vCPU.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "monitor/virtio.h"

#define VHF_WANTED_PROTOCOL ((1ULL << VU_PROTOCOL_F_REPLY_ACK) | (1ULL << VU_PROTOCOL_F_CONFIG))
#define VU_CONFIG_HDR 12             /* offset, size, flags before the payload */

static bool vhf_has_reply(uint32_t req)
{
	return req == VU_GET_FEATURES || req == VU_GET_PROTOCOL_FEATURES ||
	       req == VU_GET_VRING_BASE || req == VU_GET_CONFIG || req == VU_GET_QUEUE_NUM;
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

	if (d->backend_dead)
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
	vu_close_fds(r);                      /* no reply the frontend asks for carries fds */
	if (r->hdr.request != req || !(r->hdr.flags & VU_FLAG_REPLY) ||
	    (r->hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
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

int vhf_setup(struct vdev *d, const char **why)
{
	uint64_t pf;
	int ret;

	ret = vhf_request(d, VU_SET_OWNER, NULL, 0, NULL, 0, NULL);
	if (!ret)
		ret = vhf_get_u64(d, VU_GET_FEATURES, &d->backend_features);
	if (ret) {
		*why = "the server does not answer SET_OWNER/GET_FEATURES";
		return ret;
	}
	if (!(d->backend_features & (1ULL << VIRTIO_F_VERSION_1))) {
		*why = "the server does not offer VIRTIO_F_VERSION_1";
		return -ENOTSUP;
	}
	if (d->backend_features & (1ULL << VU_F_PROTOCOL_FEATURES)) {
		ret = vhf_get_u64(d, VU_GET_PROTOCOL_FEATURES, &pf);
		if (!ret)
			ret = vhf_u64(d, VU_SET_PROTOCOL_FEATURES, pf & VHF_WANTED_PROTOCOL);
		if (ret) {
			*why = "protocol feature negotiation failed";
			return ret;
		}
		d->protocol_features = pf & VHF_WANTED_PROTOCOL;
	}
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
	return 0;
}

/* GET_VRING_BASE stops each ring the guest had enabled. Errors are ignored: the device
 * is being reset either way. */
int vhf_stop(struct vdev *d)
{
	int ret = 0;

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
