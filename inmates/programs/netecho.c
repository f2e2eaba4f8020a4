/*
 * netecho: the answering end of the network tests. Answers ARP, ICMP echo and UDP echo
 * (port 7) and counts netperf's UDP streams to port 9, printing one line per stream
 * when its end marker arrives. Runs forever unless told when to stop.
 *
 * Arguments: ip=A.B.C.D/N (required), [exit-after=N] (exit 0 after answering N echo
 *   requests), [idle-exit=MS] (exit 0 after MS ms without a frame), [streams=N] (exit 0
 *   after N streams ended), and the virtio options (dev=N irq=... qsize=N verbose ...).
 */
#include <inmate/inmate.h>
#include <inmate/net.h>

#define ECHO_WAIT_SLICE_US 1000000u    /* longest single wait, so a stop is noticed */
#define ECHO_FLUSH_US      1000000u
#define ECHO_BUDGET        64

struct echo_stream {
	int active;
	uint32_t id, last_ended;
	int ended_any;
	uint64_t frames, bytes, next_seq, out_of_order;
	uint64_t first, last;                  /* TSC of the first and last data frame */
	unsigned done;                         /* streams ended */
};

static struct net nt;
static struct echo_stream st;

static void echo_stream_end(uint32_t id, uint64_t sent)
{
	int ours = st.active && st.id == id;     /* else: not one frame of it arrived */
	uint64_t frames = ours ? st.frames : 0, bytes = ours ? st.bytes : 0;
	uint64_t us = ours ? tsc_to_us(st.last - st.first) : 0;
	uint64_t fps = us ? frames * 1000000 / us : 0, mbit10 = us ? bytes * 80 / us : 0;

	printf("netecho: stream: received %lu of %lu frames (%lu lost, %lu out of order), "
	       "%lu bytes in %lu us: %lu frames/s, %lu.%lu Mbit/s\n", frames, sent,
	       sent > frames ? sent - frames : 0, ours ? st.out_of_order : 0, bytes, us, fps,
	       mbit10 / 10, mbit10 % 10);
	st.active = 0;
	st.last_ended = id;
	st.ended_any = 1;
	st.done++;
}

static void echo_udp(struct net *n, const struct net_ip *ip, const struct net_udp *udp,
		     const uint8_t *data, unsigned len, unsigned frame_len)
{
	const struct net_perf_msg *m = (const struct net_perf_msg *)data;

	(void)ip;
	if (udp->dport != NET_HTONS(NET_UDP_PORT_DISCARD) || len < sizeof(*m) ||
	    m->magic != NET_PERF_MAGIC)
		return;
	if (m->type == NET_PERF_END) {
		if (!(st.ended_any && st.last_ended == m->stream))   /* markers come repeated */
			echo_stream_end(m->stream, m->seq);
		return;
	}
	if (m->type != NET_PERF_DATA || (st.ended_any && st.last_ended == m->stream))
		return;
	if (!st.active || st.id != m->stream) {
		st = (struct echo_stream){ .active = 1, .id = m->stream, .first = n->now,
					   .last_ended = st.last_ended, .ended_any = st.ended_any,
					   .done = st.done };
	}
	st.frames++;
	st.bytes += frame_len;
	st.last = n->now;
	if (m->seq < st.next_seq)
		st.out_of_order++;
	else
		st.next_seq = m->seq + 1;
}

/* "key=NUMBER": 1 with *v set; 0 when arg is not "key="; -1 when it is not a number. */
static int opt_num(const char *arg, const char *key, uint64_t *v)
{
	size_t k = strlen(key);
	char *end;

	if (strncmp(arg, key, k) || arg[k] != '=')
		return 0;
	*v = strtoul(arg + k + 1, &end, 0);
	return end != arg + k + 1 && !*end ? 1 : -1;
}

int main(int argc, char **argv)
{
	struct virtio_opts o = { 0 };
	uint64_t exit_after = 0, idle_ms = 0, streams = 0, idle_since;
	uint32_t ip = 0;
	unsigned prefix = 0;
	char a[18], b[16];
	int err, have_ip = 0;

	for (int i = 1; i < argc; i++) {
		int r = 0;

		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "ip=", 3)) {
			if (net_parse_ip(argv[i] + 3, &ip, &prefix)) {
				printf("netecho: bad address '%s' (want ip=A.B.C.D/N)\n", argv[i] + 3);
				return 2;
			}
			have_ip = 1;
			continue;
		}
		if ((r = opt_num(argv[i], "exit-after", &exit_after)) ||
		    (r = opt_num(argv[i], "idle-exit", &idle_ms)) ||
		    (r = opt_num(argv[i], "streams", &streams))) {
			if (r < 0) {
				printf("netecho: '%s' is not a number\n", argv[i]);
				return 2;
			}
			continue;
		}
		printf("netecho: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	if (!have_ip) {
		printf("netecho: usage: ip=A.B.C.D/N [exit-after=N] [idle-exit=MS] [streams=N]\n");
		return 2;
	}
	err = net_open(&nt, &o, ip, prefix);
	if (err) {
		printf("netecho: no usable virtio-net device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		return 1;
	}
	nt.on_udp = echo_udp;
	printf("netecho: mac %s, ip %s/%u\n", net_fmt_mac(nt.mac, a), net_fmt_ip(ip, b), prefix);
	printf("netecho: virtio-net %02x:%02x.%x, features 0x%lx, link %s, queues %u/%u, %s\n",
	       nt.vn.dev.pci.bus, nt.vn.dev.pci.slot, nt.vn.dev.pci.func, nt.vn.dev.features,
	       nt.vn.status & VIRTIO_NET_S_LINK_UP ? "up" : "down", nt.vn.rx.num, nt.vn.tx.num,
	       virtio_irq_mode_name(nt.vn.dev.irq));

	idle_since = tsc_now();
	for (;;) {
		uint64_t wait_us = ECHO_WAIT_SLICE_US, now;

		if (net_poll(&nt, ECHO_BUDGET)) {
			idle_since = nt.now;
			if ((exit_after && nt.st.echo_answered >= exit_after) ||
			    (streams && st.done >= streams))
				break;
			continue;
		}
		now = tsc_now();
		if (idle_ms) {
			uint64_t idle_us = tsc_to_us(now - idle_since);

			if (idle_us >= idle_ms * 1000) {
				printf("netecho: no frame for %lu ms\n", idle_ms);
				break;
			}
			if (idle_ms * 1000 - idle_us < wait_us)
				wait_us = idle_ms * 1000 - idle_us;
		}
		err = net_wait(&nt, wait_us);
		if (err && err != -VIRTIO_ETIMEDOUT) {
			printf("netecho: device failed: %s\n", virtio_strerror(err));
			return 1;
		}
	}
	err = vnet_flush(&nt.vn, ECHO_FLUSH_US);    /* the last answers must leave */
	printf("netecho: answered %lu echo requests, %lu UDP echoes, %lu ARP requests; "
	       "%lu frames in, %lu out, %lu bad, %lu ignored, %lu dropped\n",
	       nt.st.echo_answered, nt.st.udp_echoed, nt.st.arp_answered, nt.vn.rx_frames,
	       nt.vn.tx_frames, nt.st.bad, nt.st.ignored, nt.vn.rx_dropped);
	return err || nt.st.tx_errors ? 1 : 0;
}
