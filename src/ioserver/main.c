/*
 * `bulkhead ioserver CLASS`: serve virtio devices of one class over vhost-user, either
 * supervised (connected sockets and open files from the supervisor, --conn) or
 * standalone (a listening socket, like qemu-storage-daemon). Set-up, sandbox, loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "config/system.h"
#include "ioserver/ioserver.h"
#include "ioserver/net.h"
#include "ioserver/spec.h"

_Static_assert(IOS_MAX_CONNS == BH_MAX_SERVER_CONNS, "what check allows, a server takes");

/* The device classes: one line each. */
static const struct ios_backend *const ios_backends[] = {
	&ios_blk_backend,
	&ios_console_backend,
	&ios_net_backend,
	&ios_rng_backend,
};

#define IOS_EXIT_OK     0
#define IOS_EXIT_FAIL   1
#define IOS_EXIT_SETUP  2

struct ios_opts {
	const char *socket, *disk, *output, *name, *network, *mac;
	int event_fd, standby_fd, control_fd;
	uint64_t poll_us;
	bool hold_set;
	struct ios_net_opts net;
	struct ios_conn_spec conns[IOS_MAX_CONNS];
	unsigned nconns;
};

static void ios_usage(FILE *out)
{
	fprintf(out,
		"usage: bulkhead ioserver CLASS --socket PATH [OPTIONS]       (standalone)\n"
		"       bulkhead ioserver CLASS --conn SPEC [--conn SPEC ...] [OPTIONS]\n"
		"                                                          (supervised)\n"
		"\n"
		"Serve virtio devices of one CLASS over vhost-user: blk (virtio-blk on a slice of\n"
		"a disk file), console (virtio-console port 0: the guest's output to a file), net\n"
		"(virtio-net ports of learning switches, one per network, with an optional TAP\n"
		"uplink each) or rng (virtio-rng from getrandom). One process serves any number of\n"
		"connections, each one device, under a seccomp sandbox. See docs/ioserver.md.\n"
		"\n"
		"standalone (any vhost-user frontend, e.g. QEMU's vhost-user-blk-pci):\n"
		"  --socket PATH     listen on this unix socket (removed on exit); every\n"
		"                    frontend that connects gets a device\n"
		"  --disk FILE[,offset=N][,size=N][,readonly]\n"
		"                    blk: the disk file and the slice of it to serve; N in bytes\n"
		"                    or with K, M, G, T; both multiples of 512; size defaults to\n"
		"                    the rest of the file. Required for blk\n"
		"  --output FILE     console: append the guest's bytes to FILE (default stdout)\n"
		"  --network NAME    net: the network every frontend joins (default standalone)\n"
		"  --mac MAC         net: the first frontend's MAC, the next ones counting up in\n"
		"                    accept order (default 02:62:68:ff:00:01)\n"
		"  --uplink tap=IFNAME  net: open (or create) TAP interface IFNAME and join it to\n"
		"                    the network\n"
		"\n"
		"supervised (started by 'bulkhead run' with the fds already open):\n"
		"  --conn SPEC       one device; SPEC is comma-separated KEY=VALUE:\n"
		"                      fd=N          connected unix stream socket, frontend at\n"
		"                                    the other end (required)\n"
		"                      partition=NAME  partition the device belongs to (required)\n"
		"                      device=N      index of the device in the partition (0)\n"
		"                    blk:  disk-fd=M  open disk file (required), offset=N,\n"
		"                          size=N    the slice in bytes (multiples of 512; size\n"
		"                                    defaults to the rest of the file),\n"
		"                          readonly=0|1  writes fail with IOERR (default 0)\n"
		"                    console: out=M  fd to write the guest's bytes to (required)\n"
		"                    net:  network=NET  the network (switch) the port joins,\n"
		"                          mac=MAC   the guest's address (both required; frames\n"
		"                                    from another source address are dropped),\n"
		"                          rate=B,burst=B  limit what the guest sends to rate\n"
		"                                    bytes/s with bursts of burst bytes (default\n"
		"                                    65536, at least 1518): frames wait, not dropped\n"
		"                    Up to %d. The server exits when every connection is gone.\n"
		"  --uplink network=NET,fd=M\n"
		"                    net: an open TAP (IFF_TAP|IFF_NO_PI, no vnet header) joined\n"
		"                    to network NET; at most one per network\n"
		"\n"
		"common:\n"
		"  --name NAME       server name in events and messages (default: CLASS)\n"
		"  --event-fd FD     write JSON event lines to FD (default: stderr)\n"
		"  --poll-us N       keep polling the rings N microseconds after the last work\n"
		"                    before sleeping (default %d; 0: never poll)\n"
		"  --hold-ms N       net: how long a frame waits for its receiver's buffers before\n"
		"                    it is dropped (default %d; 0: never waits)\n"
		"  --control-fd FD   supervised: the supervisor's SOCK_SEQPACKET control channel,\n"
		"                    on which it replaces a connection with a new socket when\n"
		"                    a partition starts again (bulkhead/control.h)\n"
		"  --standby-fd FD   hot standby (started by 'bulkhead run' for 'standby: true'):\n"
		"                    wait on the SOCK_SEQPACKET channel FD for the command line\n"
		"                    and descriptors of the server to replace, then be it; exit\n"
		"                    0 if the channel closes first\n"
		"  --help            show this help\n"
		"\n"
		"events: ready, device_error (a corrupt ring: that device stops until reset, the\n"
		"others go on), device_reset, disconnect, replay (requests a killed server left\n"
		"in flight, resubmitted: vhost-user INFLIGHT_SHMFD), counters (net: per port;\n"
		"blk, console, rng: per device; at most once a second while they change, when a\n"
		"port or device goes, at exit, and for every one on SIGUSR1), conn_replaced and\n"
		"control_refused (--control-fd).\n"
		"exit status: 0 stopped by SIGINT/SIGTERM or no connection left, 1 failure while\n"
		"running, 2 bad command line or set-up error.\n",
		IOS_MAX_CONNS, IOS_POLL_US, NET_HOLD_MS_DEFAULT);
}

static int ios_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ios_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bulkhead ioserver: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return IOS_EXIT_SETUP;
}

static const struct ios_backend *ios_find_class(const char *name)
{
	for (size_t i = 0; i < sizeof(ios_backends) / sizeof(ios_backends[0]); i++)
		if (!strcmp(ios_backends[i]->name, name))
			return ios_backends[i];
	return NULL;
}

static bool ios_valid_name(const char *v)
{
	size_t len = strlen(v);

	if (!len || len > IOS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x21 || v[i] > 0x7e)
			return false;
	return true;
}

static int ios_parse_number(const char *v, uint64_t max, uint64_t *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno || *end || *out > max ? -EINVAL : 0;
}

enum { OPT_SOCKET = 256, OPT_DISK, OPT_OUTPUT, OPT_NAME, OPT_EVENT_FD, OPT_CONN, OPT_POLL,
       OPT_NETWORK, OPT_MAC, OPT_UPLINK, OPT_HOLD, OPT_STANDBY, OPT_CONTROL };

static int ios_parse(int argc, char **argv, struct ios_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "event-fd", required_argument, NULL, OPT_EVENT_FD },
		{ "conn", required_argument, NULL, OPT_CONN },
		{ "poll-us", required_argument, NULL, OPT_POLL },
		{ "network", required_argument, NULL, OPT_NETWORK },
		{ "mac", required_argument, NULL, OPT_MAC },
		{ "uplink", required_argument, NULL, OPT_UPLINK },
		{ "hold-ms", required_argument, NULL, OPT_HOLD },
		{ "standby-fd", required_argument, NULL, OPT_STANDBY },
		{ "control-fd", required_argument, NULL, OPT_CONTROL },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char bad[160];
	uint64_t v;
	int c;

	o->event_fd = STDERR_FILENO;
	o->standby_fd = -1;
	o->control_fd = -1;
	o->poll_us = IOS_POLL_US;
	o->net.hold_ms = NET_HOLD_MS_DEFAULT;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			ios_usage(stdout);
			return -1;
		case OPT_SOCKET: o->socket = optarg; break;
		case OPT_DISK: o->disk = optarg; break;
		case OPT_OUTPUT: o->output = optarg; break;
		case OPT_NAME:
			if (!ios_valid_name(optarg))
				return ios_fail("--name: '%s' is not 1-%d printable characters",
						optarg, IOS_NAME_MAX);
			o->name = optarg;
			break;
		case OPT_EVENT_FD:
			if (ios_parse_number(optarg, INT32_MAX, &v))
				return ios_fail("--event-fd: '%s' is not a file descriptor", optarg);
			o->event_fd = (int)v;
			break;
		case OPT_STANDBY:
			if (ios_parse_number(optarg, INT32_MAX, &v))
				return ios_fail("--standby-fd: '%s' is not a file descriptor", optarg);
			o->standby_fd = (int)v;
			break;
		case OPT_CONTROL:
			if (ios_parse_number(optarg, INT32_MAX, &v))
				return ios_fail("--control-fd: '%s' is not a file descriptor", optarg);
			o->control_fd = (int)v;
			break;
		case OPT_POLL:
			if (ios_parse_number(optarg, 1000000, &v))
				return ios_fail("--poll-us: '%s' is not 0 to 1000000", optarg);
			o->poll_us = v;
			break;
		case OPT_NETWORK: o->network = optarg; break;
		case OPT_MAC: o->mac = optarg; break;
		case OPT_HOLD:
			if (ios_parse_number(optarg, NET_HOLD_MS_MAX, &v))
				return ios_fail("--hold-ms: '%s' is not 0 to %d", optarg,
						NET_HOLD_MS_MAX);
			o->net.hold_ms = (unsigned)v;
			o->hold_set = true;
			break;
		case OPT_UPLINK:
			if (o->net.nuplinks == IOS_MAX_CONNS)
				return ios_fail("more than %d --uplink", IOS_MAX_CONNS);
			if (ios_spec_parse_uplink(optarg, &o->net.uplinks[o->net.nuplinks], bad,
						  sizeof(bad)))
				return ios_fail("--uplink %s: %s", optarg, bad);
			o->net.nuplinks++;
			break;
		case OPT_CONN:
			if (o->nconns == IOS_MAX_CONNS)
				return ios_fail("more than %d --conn", IOS_MAX_CONNS);
			if (ios_spec_parse_conn(optarg, &o->conns[o->nconns], bad, sizeof(bad)))
				return ios_fail("--conn %s: %s", optarg, bad);
			o->nconns++;
			break;
		default:
			return ios_fail("unknown or incomplete option '%s' (see --help)",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ios_fail("unexpected argument '%s'", argv[optind]);
	return 0;
}

static bool ios_fd_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

bool ios_fd_is_stream_socket(int fd)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len))
		return false;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return false;
	return domain == AF_UNIX && type == SOCK_STREAM;
}

static bool ios_fd_is_seqpacket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(int);

	return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) && type == SOCK_SEQPACKET;
}

/* Supervised specs: every fd open and of the right kind, no socket twice, and what
 * the class needs. */
static int ios_check_conns(const struct ios_backend *ops, struct ios_opts *o)
{
	for (unsigned i = 0; i < o->nconns; i++) {
		struct ios_conn_spec *c = &o->conns[i];
		const char *why;

		if (!ios_fd_is_stream_socket(c->fd))
			return ios_fail("%s device %u: fd=%d is not a connected unix stream socket",
					c->partition, c->device, c->fd);
		for (unsigned j = 0; j < i; j++)
			if (o->conns[j].fd == c->fd)
				return ios_fail("%s device %u: fd=%d is given twice", c->partition,
						c->device, c->fd);
		if ((c->disk_fd >= 0 && !ios_fd_open(c->disk_fd)) ||
		    (c->out_fd >= 0 && !ios_fd_open(c->out_fd)))
			return ios_fail("%s device %u: a file descriptor is not open",
					c->partition, c->device);
		if (ops != &ios_net_backend && (c->network[0] || c->has_mac || c->rate))
			return ios_fail("%s device %u: network=, mac=, rate= and burst= are for net",
					c->partition, c->device);
		why = ops->prepare_spec ? ops->prepare_spec(c) : NULL;
		if (why)
			return ios_fail("%s device %u: %s", c->partition, c->device, why);
	}
	return 0;
}

/* net uplinks: the right form for the mode, one per network, each a TAP (opened here
 * when standalone: before the sandbox). */
static int ios_check_uplinks(struct ios_opts *o, const char *standalone_network)
{
	for (unsigned i = 0; i < o->net.nuplinks; i++) {
		struct ios_uplink_spec *u = &o->net.uplinks[i];
		const char *why;

		if (standalone_network && !u->tap[0])
			return ios_fail("--uplink: standalone, give tap=IFNAME");
		if (!standalone_network && u->tap[0])
			return ios_fail("--uplink tap=%s: supervised, give network=NET,fd=M", u->tap);
		if (standalone_network)
			snprintf(u->network, sizeof(u->network), "%s", standalone_network);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(o->net.uplinks[j].network, u->network))
				return ios_fail("--uplink: network %s has more than one uplink",
						u->network);
		if (!standalone_network && !ios_fd_open(u->fd))
			return ios_fail("--uplink network=%s: fd=%d is not open", u->network, u->fd);
		why = net_tap_prepare(u);
		if (why)
			return ios_fail("--uplink %s%s: %s", standalone_network ? "tap=" : "network=",
					standalone_network ? u->tap : u->network, why);
	}
	return 0;
}

/* Standalone: open what --disk and --output name; the spec every frontend gets. */
static int ios_standalone_spec(const struct ios_backend *ops, struct ios_opts *o,
			       struct ios_conn_spec *t)
{
	char path[4096], bad[160];
	const char *why;

	ios_spec_default(t);
	if (o->disk && ops != &ios_blk_backend)
		return ios_fail("--disk is for blk only");
	if (o->output && ops != &ios_console_backend)
		return ios_fail("--output is for console only");
	if (ops == &ios_net_backend) {
		static const uint8_t base[6] = NET_STANDALONE_MAC;

		if (o->network && (!ios_valid_name(o->network) || strpbrk(o->network, ",=")))
			return ios_fail("--network: '%s' is not 1-%d printable characters without "
					"',' or '='", o->network, IOS_NAME_MAX);
		snprintf(t->network, sizeof(t->network), "%s",
			 o->network ? o->network : NET_STANDALONE_NETWORK);
		memcpy(t->mac, base, sizeof(base));
		if (o->mac && (ios_spec_parse_mac(o->mac, t->mac) || (t->mac[0] & 1)))
			return ios_fail("--mac: '%s' is not a unicast MAC like 02:62:68:ff:00:01",
					o->mac);
		t->has_mac = true;
		if (ios_check_uplinks(o, t->network))
			return IOS_EXIT_SETUP;
	}
	if (ops == &ios_blk_backend) {
		if (!o->disk)
			return ios_fail("blk needs --disk FILE");
		if (ios_spec_parse_disk(o->disk, path, sizeof(path), t, bad, sizeof(bad)))
			return ios_fail("--disk %s: %s", o->disk, bad);
		t->disk_fd = open(path, (t->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (t->disk_fd < 0)
			return ios_fail("%s: %s", path, strerror(errno));
	}
	if (ops == &ios_console_backend) {
		t->out_fd = STDOUT_FILENO;
		if (o->output) {
			t->out_fd = open(o->output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (t->out_fd < 0)
				return ios_fail("%s: %s", o->output, strerror(errno));
		}
	}
	why = ops->prepare_spec ? ops->prepare_spec(t) : NULL;
	if (why)
		return ios_fail("%s: %s", o->disk ? o->disk : o->output ? o->output : "stdout",
				why);
	return 0;
}

static void ios_accept(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct ios_conn_spec spec = s->templ;
	struct vu_dev *d;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->ndevs >= IOS_MAX_CONNS) {
		ios_log(s, NULL, "connection refused: already %u", s->ndevs);
		close(fd);
		return;
	}
	spec.fd = fd;
	snprintf(spec.partition, sizeof(spec.partition), "client%u", ++s->accepted);
	if (vu_dev_new(s, &spec, &d)) {
		ios_log(s, NULL, "connection refused: out of memory");
		close(fd);
	}
}

/* Binds the standalone socket (replacing a stale one) and keeps its directory open, so
 * that the sandboxed server can still remove it on exit. */
static int ios_listen(struct ios *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)], base[sizeof(sa.sun_path)];
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return ios_fail("--socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	strcpy(base, path);
	snprintf(s->sock_name, sizeof(s->sock_name), "%s", basename(base));
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return ios_fail("--socket %s: exists and is not a socket", path);
		unlink(path);
	}
	s->sock_dir_fd = open(dirname(dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->sock_dir_fd < 0 || s->listen_fd < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(s->listen_fd, 16))
		return ios_fail("--socket %s: %s", path, strerror(errno));
	s->listen_watch.fd = s->listen_fd;
	s->listen_watch.fn = ios_accept;
	if (ios_watch_add(s, &s->listen_watch, EPOLLIN))
		return ios_fail("epoll: %s", strerror(errno));
	return 0;
}

static void ios_signalled(struct ios *s, struct ios_watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	if (read(w->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo != SIGUSR1)
		s->stop = true;
	else if (s->ops->report)
		s->ops->report(s);        /* the class's counters, now */
	else
		ios_counters_report_all(s);
}

/* SIGINT and SIGTERM arrive on an fd: the loop ends cleanly between turns. SIGUSR1
 * asks for the class's counters (net). */
static int ios_signals(struct ios *s)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);          /* a reader gone is an error code, not a death */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sig_fd < 0)
		return -errno;
	s->sig_watch.fd = s->sig_fd;
	s->sig_watch.fn = ios_signalled;
	return ios_watch_add(s, &s->sig_watch, EPOLLIN);
}

static int ios_setup(struct ios *s, struct ios_opts *o)
{
	const struct ios_conn_spec *specs = o->nconns ? o->conns : &s->templ;
	struct vu_dev *d;
	int rc;

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return ios_fail("epoll: %s", strerror(errno));
	rc = ios_signals(s);
	if (rc)
		return ios_fail("signals: %s", strerror(-rc));
	if (s->ops->server_init) {
		rc = s->ops->server_init(s, specs, o->nconns ? o->nconns : 1);
		if (rc)
			return ios_fail("%s server: %s", s->ops->name, strerror(-rc));
	}
	if (o->socket && ios_listen(s, o->socket))
		return IOS_EXIT_SETUP;
	for (unsigned i = 0; i < o->nconns; i++) {
		rc = vu_dev_new(s, &o->conns[i], &d);
		if (rc)
			return ios_fail("%s device %u: %s", o->conns[i].partition,
					o->conns[i].device, strerror(-rc));
		d->conn = (int)i;
		s->conn_dev[i] = d;
		s->conns[i] = o->conns[i];
	}
	s->nconns = o->nconns;
	if (ios_control_init(s, o->control_fd))
		return ios_fail("epoll: %s", strerror(errno));
	rc = ios_sandbox_enter(s);
	if (rc)
		return ios_fail("seccomp: %s", strerror(-rc));
	return 0;
}

static void ios_teardown(struct ios *s)
{
	while (s->devs) {
		struct vu_dev *d = s->devs;

		if (!d->dead && s->ops->drain)
			s->ops->drain(d);
		vu_dev_free(d);
	}
	if (s->ops->server_fini)
		s->ops->server_fini(s);
	if (s->listen_fd >= 0)
		unlinkat(s->sock_dir_fd, s->sock_name, 0);
}

int io_cmd_ioserver(int argc, char **argv)
{
	static struct ios server;
	struct ios *s = &server;
	struct ios_opts o = { 0 };
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		ios_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? IOS_EXIT_SETUP : IOS_EXIT_OK;
	}
	s->ops = ios_find_class(argv[1]);
	if (!s->ops)
		return ios_fail("unknown class '%s': blk, console, net or rng", argv[1]);
	rc = ios_parse(argc - 1, argv + 1, &o);
	if (rc)
		return rc < 0 ? IOS_EXIT_OK : rc;
	if (o.standby_fd >= 0) {
		char **real;
		int n;

		if (o.socket || o.nconns || o.disk || o.output || o.network || o.mac ||
		    o.net.nuplinks || o.control_fd >= 0)
			return ios_fail("--standby-fd takes no device: the supervisor sends them");
		n = ios_standby_wait(o.standby_fd, argv[1], &real);
		if (n <= 0)
			return n < 0 ? IOS_EXIT_SETUP : IOS_EXIT_OK;
		return io_cmd_ioserver(n, real);   /* what a fork + exec would have run */
	}
	if (!!o.socket == !!o.nconns)
		return ios_fail("give either --socket (standalone) or --conn (supervised)");
	if (o.nconns && (o.disk || o.output || o.network || o.mac))
		return ios_fail("--disk, --output, --network and --mac are for standalone mode; "
				"use --conn keys");
	if (s->ops != &ios_net_backend && (o.network || o.mac || o.net.nuplinks || o.hold_set))
		return ios_fail("--network, --mac, --uplink and --hold-ms are for net only");
	if (fcntl(o.event_fd, F_GETFL) < 0)
		return ios_fail("--event-fd %d is not open", o.event_fd);
	if (o.control_fd >= 0 && (!o.nconns || !ios_fd_is_seqpacket(o.control_fd)))
		return ios_fail("--control-fd %d: supervised only, and a unix SOCK_SEQPACKET "
				"socket", o.control_fd);
	snprintf(s->name, sizeof(s->name), "%s", o.name ? o.name : s->ops->name);
	s->event_fd = o.event_fd;
	s->poll_ns = o.poll_us * 1000;
	s->listen_fd = s->sock_dir_fd = -1;
	rc = o.nconns ? ios_check_conns(s->ops, &o) : ios_standalone_spec(s->ops, &o, &s->templ);
	if (!rc && o.nconns)
		rc = ios_check_uplinks(&o, NULL);
	if (rc)
		return rc;
	s->net = o.net;
	rc = ios_setup(s, &o);
	if (rc)
		return rc;
	ios_event_ready(s);
	rc = ios_run(s);
	ios_teardown(s);
	return rc ? IOS_EXIT_FAIL : IOS_EXIT_OK;
}
