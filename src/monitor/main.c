/*
 * `bulkhead monitor`: run one partition. Parses the command line, sets the VM up in a
 * fixed order (image check, KVM, memory, vCPUs, devices, boot state), starts the vCPU
 * threads, enters the sandbox and runs vCPU 0; the way the partition stopped becomes
 * the exit code.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json_quote.h"
#include "bulkhead/bootinfo.h"
#include "bulkhead/platform.h"
#include "commands.h"
#include "monitor/mon.h"

#define MON_MEM_ALIGN (2ULL << 20)

static void mon_usage(FILE *out)
{
	fprintf(out,
		"usage: bulkhead monitor (--image PATH | --kernel PATH [--initrd PATH])\n"
		"                        --memory SIZE [OPTIONS]\n"
		"\n"
		"Run one partition: a KVM VM with one vCPU that starts a bare-metal ELF64 x86-64\n"
		"image directly in long mode, or a Linux kernel with a vCPU per CPU of --cpus.\n"
		"Guest UART output goes to stdout; events go to the event fd as JSON lines (see\n"
		"docs/monitor.md).\n"
		"\n"
		"options:\n"
		"  --name NAME       partition name, up to %d printable ASCII characters\n"
		"                    (default: the image file name without its extension)\n"
		"  --id N            partition index in the system file (default 0)\n"
		"  --image PATH      ELF64 x86-64 executable, linked at 0x%lx or above\n"
		"  --kernel PATH     a Linux bzImage (boot protocol 2.12 or later) instead of\n"
		"                    an image, started at its 64-bit entry; --cmdline is its\n"
		"                    command line (experimental: needs a KVM that boots\n"
		"                    Linux, see docs/monitor.md)\n"
		"  --initrd PATH     the initial ramdisk for --kernel\n"
		"  --memory SIZE     guest RAM in bytes, or with a K, M or G suffix; a positive\n"
		"                    multiple of 2 MiB, at most %llu GiB\n"
		"  --mem-fd FD       use this memfd, exactly SIZE bytes, as guest RAM\n"
		"  --cpus LIST       host CPUs, e.g. 1 or 0,2-3 (at most %d for --kernel): an\n"
		"                    image's vCPU is pinned to all of them; a kernel gets one\n"
		"                    vCPU per CPU, each pinned to its own\n"
		"  --cmdline STRING  arguments for the guest, in its boot information\n"
		"  --event-fd FD     write JSON event lines to FD (default: stderr)\n"
		"  --region NAME,KIND,GPA,SIZE,FD,rw|ro[,port=PORT,source|destination]\n"
		"                    map memfd FD (a shared region or channel; KIND is shared,\n"
		"                    sampling or queuing) at guest-physical GPA; ro makes guest\n"
		"                    writes isolation violations. Up to %d; listed in bootinfo,\n"
		"                    a channel with this partition's port name and role\n"
		"  --device TYPE,slot=N,fd=FD|socket=PATH[,isolation=window|shared]\n"
		"                    a virtio-pci device (TYPE blk, console, rng or net) at\n"
		"                    00:N.0 (N 1 to 31), served by a vhost-user server on the\n"
		"                    connected unix socket FD or at PATH. window (default): the\n"
		"                    server sees only a per-device window the monitor copies\n"
		"                    through; shared: it maps guest RAM. Up to %d\n"
		"  --control-fd FD   the supervisor's SOCK_SEQPACKET socket: a device whose\n"
		"                    server hangs up is paused until a new connection (or word\n"
		"                    that the server is gone) arrives on it; without it the\n"
		"                    device needs a reset at once\n"
		"  --on-violation stop|ignore\n"
		"                    stop (default): an access to an unassigned port or address\n"
		"                    stops the partition; ignore: it is reported (the first %d\n"
		"                    times), reads return all-ones, writes are dropped\n"
		"  --watchdog NS     from the guest's first kick on the system-control port, a\n"
		"                    kick is due every NS nanoseconds (at least %llu); a miss\n"
		"                    is a watchdog event and, by default, a fault (exit 1)\n"
		"  --on-watchdog stop|ignore\n"
		"                    stop (default): a missed kick stops the partition; ignore:\n"
		"                    it is reported (the first %d times) and the guest runs on,\n"
		"                    the watchdog re-arming at its next kick\n"
		"  --help            show this help\n"
		"\n"
		"exit status: 0 the guest exited through the system-control device (its status\n"
		"is in the exit event), 1 the partition faulted, 2 set-up error, 3 the guest\n"
		"asked for a reset.\n",
		BH_NAME_MAX, BH_IMAGE_BASE, MON_MEM_MAX >> 30, MON_VCPUS_MAX, BH_BOOTINFO_REGIONS,
		MON_DEVICES_MAX, VCPU_IGNORED_REPORTS, MON_WATCHDOG_MIN_NS, WD_IGNORED_REPORTS);
}

/* "bulkhead monitor: <partition>: message" on stderr and, once the event fd is known,
 * an error event; returns the set-up exit code. */
static int mon_fail(struct mon *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int mon_fail(struct mon *m, const char *fmt, ...)
{
	char msg[512], json[sizeof(msg) * 6 + 3];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m && m->opt->name)
		fprintf(stderr, "bulkhead monitor: %s: %s\n", m->opt->name, msg);
	else
		fprintf(stderr, "bulkhead monitor: %s\n", msg);
	if (m && m->event_fd >= 0 && json_quote(json, sizeof(json), msg) > 0)
		ev_emit(m, "error", "\"message\":%s", json);
	return MON_EXIT_SETUP;
}

static int mon_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Bytes, or with a K/M/G suffix (powers of 1024). */
static int mon_parse_size(const char *s, uint64_t *out)
{
	char buf[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	switch (buf[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	}
	if (shift)
		buf[n - 1] = 0;
	if (mon_parse_u64(buf, UINT64_MAX >> shift, &v))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int mon_parse_fd(const char *s, int *fd)
{
	uint64_t v;
	struct stat st;

	if (mon_parse_u64(s, INT_MAX, &v) || fstat((int)v, &st) < 0)
		return -EBADF;
	*fd = (int)v;
	return 0;
}

static bool mon_is_seqpacket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) && type == SOCK_SEQPACKET;
}

/* A CPU list: comma-separated numbers and ranges ("0,2-3"). */
static int mon_parse_cpus(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	while (*s) {
		char *end;
		unsigned long lo, hi;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		lo = hi = strtoul(s, &end, 10);
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo > hi || hi >= CPU_SETSIZE || (*end && *end != ','))
			return -EINVAL;
		for (unsigned long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		s = *end ? end + 1 : end;
		if (*end && !*s)
			return -EINVAL;     /* trailing comma */
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

static int mon_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > BH_NAME_MAX)
		return 0;
	for (; *name; name++)
		if (*name < 0x20 || *name > 0x7e)
			return 0;
	return 1;
}

/* Default name: the image's file name up to its first dot. */
static const char *mon_default_name(const char *image, char *buf, size_t size)
{
	const char *base = strrchr(image, '/');
	size_t n;

	base = base ? base + 1 : image;
	n = strcspn(base, ".");
	if (n >= size)
		n = size - 1;
	memcpy(buf, base, n);
	buf[n] = 0;
	return buf;
}

/* How many vCPUs, each pinned where: one for an image (its runtime starts no other
 * CPU), pinned to the whole set as the thread always was; for a kernel one per CPU
 * of the list, vCPU i on the list's i-th CPU (one unpinned vCPU without --cpus).
 * Returns -1 to go on, or the exit code. */
static int mon_parse_vcpus(struct mon_options *o, const cpu_set_t *cpus)
{
	o->nvcpus = 1;
	o->vcpu_host[0] = -1;
	if (!o->kernel || !o->cpus)
		return -1;
	if (CPU_COUNT(cpus) > MON_VCPUS_MAX)
		return mon_fail(NULL, "--cpus %s: at most %d CPUs for --kernel (one vCPU each)",
				o->cpus, MON_VCPUS_MAX);
	o->nvcpus = 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, cpus))
			o->vcpu_host[o->nvcpus++] = c;
	return -1;
}

enum { OPT_NAME = 256, OPT_ID, OPT_IMAGE, OPT_KERNEL, OPT_INITRD, OPT_MEMORY, OPT_MEM_FD, OPT_CPUS, OPT_CMDLINE,
       OPT_EVENT_FD, OPT_REGION, OPT_DEVICE, OPT_CONTROL_FD, OPT_ON_VIOLATION, OPT_WATCHDOG,
       OPT_ON_WATCHDOG, OPT_HELP };

static const struct option mon_longopts[] = {
	{ "name",     required_argument, NULL, OPT_NAME },
	{ "id",       required_argument, NULL, OPT_ID },
	{ "image",    required_argument, NULL, OPT_IMAGE },
	{ "kernel",   required_argument, NULL, OPT_KERNEL },
	{ "initrd",   required_argument, NULL, OPT_INITRD },
	{ "memory",   required_argument, NULL, OPT_MEMORY },
	{ "mem-fd",   required_argument, NULL, OPT_MEM_FD },
	{ "cpus",     required_argument, NULL, OPT_CPUS },
	{ "cmdline",  required_argument, NULL, OPT_CMDLINE },
	{ "event-fd", required_argument, NULL, OPT_EVENT_FD },
	{ "region",   required_argument, NULL, OPT_REGION },
	{ "device",   required_argument, NULL, OPT_DEVICE },
	{ "control-fd", required_argument, NULL, OPT_CONTROL_FD },
	{ "on-violation", required_argument, NULL, OPT_ON_VIOLATION },
	{ "watchdog", required_argument, NULL, OPT_WATCHDOG },
	{ "on-watchdog", required_argument, NULL, OPT_ON_WATCHDOG },
	{ "help",     no_argument,       NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or the exit code (0 after --help, 2 on a bad command line). */
static int mon_parse(int argc, char **argv, struct mon_options *o, cpu_set_t *cpus,
		     char *name_buf, size_t name_size)
{
	uint64_t v;
	bool have_memory = false;
	int c;

	*o = (struct mon_options){ .mem_fd = -1, .event_fd = STDERR_FILENO, .control_fd = -1 };
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", mon_longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_ID:
			if (mon_parse_u64(optarg, UINT32_MAX, &v))
				return mon_fail(NULL, "--id: not a partition index: '%s'", optarg);
			o->id = v;
			break;
		case OPT_IMAGE:
			o->image = optarg;
			break;
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_INITRD:
			o->initrd = optarg;
			break;
		case OPT_MEMORY:
			if (mon_parse_size(optarg, &o->mem_size))
				return mon_fail(NULL, "--memory: not a size: '%s'", optarg);
			have_memory = true;
			break;
		case OPT_MEM_FD:
			if (mon_parse_fd(optarg, &o->mem_fd))
				return mon_fail(NULL, "--mem-fd: not an open file descriptor: '%s'", optarg);
			break;
		case OPT_CPUS:
			if (mon_parse_cpus(optarg, cpus))
				return mon_fail(NULL, "--cpus: not a CPU list: '%s'", optarg);
			o->cpus = optarg;
			break;
		case OPT_CMDLINE:
			if (strlen(optarg) >= BH_CMDLINE_MAX)
				return mon_fail(NULL, "--cmdline: longer than %d bytes", BH_CMDLINE_MAX - 1);
			o->cmdline = optarg;
			break;
		case OPT_EVENT_FD:
			if (mon_parse_fd(optarg, &o->event_fd))
				return mon_fail(NULL, "--event-fd: not an open file descriptor: '%s'", optarg);
			break;
		case OPT_REGION:
			if (o->nregions == BH_BOOTINFO_REGIONS)
				return mon_fail(NULL, "--region: at most %d regions", BH_BOOTINFO_REGIONS);
			if (mon_region_parse(optarg, &o->regions[o->nregions]))
				return mon_fail(NULL, "--region: not NAME,KIND,GPA,SIZE,FD,rw|ro"
						"[,port=PORT,source|destination]: '%s'", optarg);
			o->nregions++;
			break;
		case OPT_DEVICE: {
			const char *why;

			if (o->ndevices == MON_DEVICES_MAX)
				return mon_fail(NULL, "--device: at most %d devices", MON_DEVICES_MAX);
			if (mon_device_parse(optarg, &o->devices[o->ndevices], &why))
				return mon_fail(NULL, "--device %s: %s", optarg, why);
			for (unsigned i = 0; i < o->ndevices; i++)
				if (o->devices[i].slot == o->devices[o->ndevices].slot)
					return mon_fail(NULL, "--device %s: slot %u is taken by '%s'",
							optarg, o->devices[i].slot, o->devices[i].arg);
			o->ndevices++;
			break;
		}
		case OPT_CONTROL_FD:
			if (mon_parse_fd(optarg, &o->control_fd) || !mon_is_seqpacket(o->control_fd))
				return mon_fail(NULL, "--control-fd: not a SOCK_SEQPACKET socket: '%s'",
						optarg);
			break;
		case OPT_ON_VIOLATION:
			if (!strcmp(optarg, "ignore"))
				o->ignore_violations = true;
			else if (strcmp(optarg, "stop"))
				return mon_fail(NULL, "--on-violation: 'stop' or 'ignore', not '%s'",
						optarg);
			break;
		case OPT_WATCHDOG:
			if (mon_parse_u64(optarg, UINT64_MAX / 2, &o->watchdog_ns) ||
			    o->watchdog_ns < MON_WATCHDOG_MIN_NS)
				return mon_fail(NULL, "--watchdog: not a period of at least %llu ns: '%s'",
						MON_WATCHDOG_MIN_NS, optarg);
			break;
		case OPT_ON_WATCHDOG:
			if (!strcmp(optarg, "ignore"))
				o->watchdog_ignore = true;
			else if (strcmp(optarg, "stop"))
				return mon_fail(NULL, "--on-watchdog: 'stop' or 'ignore', not '%s'",
						optarg);
			break;
		case OPT_HELP:
			mon_usage(stdout);
			return 0;
		default:
			mon_fail(NULL, "unknown option or missing argument: '%s'", argv[optind - 1]);
			mon_usage(stderr);
			return MON_EXIT_SETUP;
		}
	}
	if (optind < argc)
		return mon_fail(NULL, "unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->image == !o->kernel)
		return mon_fail(NULL, "one of --image and --kernel is required (see --help)");
	if (o->initrd && !o->kernel)
		return mon_fail(NULL, "--initrd goes with --kernel");
	if (!have_memory)
		return mon_fail(NULL, "--memory is required (see --help)");
	if (!o->mem_size || o->mem_size % MON_MEM_ALIGN || o->mem_size > MON_MEM_MAX)
		return mon_fail(NULL, "--memory: %" PRIu64 " bytes is not a positive multiple "
				"of 2 MiB up to %llu GiB", o->mem_size, MON_MEM_MAX >> 30);
	if (!o->name)
		o->name = mon_default_name(o->image ? o->image : o->kernel, name_buf, name_size);
	if (!mon_name_ok(o->name))
		return mon_fail(NULL, "--name: '%s' is not 1 to %d printable ASCII characters",
				o->name, BH_NAME_MAX);
	return mon_parse_vcpus(o, cpus);
}

/* KVM and memory, vCPU, devices, the image and the boot state, in that order. */
static int mon_setup(struct mon *m, const cpu_set_t *cpus)
{
	const struct mon_options *o = m->opt;
	const char *boot_what = o->kernel ? "kernel" : "image";
	const char *boot_file = o->kernel ? o->kernel : o->image;
	const char *why, *who;
	int ret;

	ret = mon_boot_read(m, &why);
	if (ret)
		return why ? mon_fail(m, "%s %s refused: %s", boot_what, boot_file, why)
			   : mon_fail(m, "%s %s: %s", boot_what, boot_file, strerror(-ret));
	ret = mon_boot_read_initrd(m, &why);
	if (ret)
		return mon_fail(m, "initrd %s: %s", o->initrd, why ? why : strerror(-ret));
	ret = mon_vm_create(m);
	if (ret)
		return mon_fail(m, "cannot create the KVM VM: %s", strerror(-ret));
	ret = mon_vm_memory(m);
	if (ret == -EBADFD)
		return mon_fail(m, "--mem-fd %d is not a memfd of exactly %" PRIu64 " bytes",
				o->mem_fd, o->mem_size);
	if (ret)
		return mon_fail(m, "cannot set up %" PRIu64 " bytes of guest RAM: %s",
				o->mem_size, strerror(-ret));
	ret = mon_regions_map(m, &why);
	if (ret)
		return mon_fail(m, "--region: %s", why ? why : strerror(-ret));
	ret = mon_vcpu_create(m);
	for (unsigned i = 0; !ret && i < m->nvcpus; i++)
		ret = x86_cpuid_setup(m, &m->vcpu[i]);
	if (ret)
		return mon_fail(m, "cannot create %u vCPU(s): %s", o->nvcpus, strerror(-ret));
	ret = uart_init(&m->uart, m, &m->io, STDOUT_FILENO);
	if (!ret)
		ret = pci_init(&m->pci, &m->io);
	if (!ret)
		ret = sysctl_register(m);
	if (!ret && o->kernel)
		ret = legacy_register_absent(m);
	if (!ret && o->kernel)
		ret = rtc_register(m);
	if (!ret && o->kernel)
		ret = acpi_pm_register(m);
	if (ret)
		return mon_fail(m, "cannot register the platform devices: %s", strerror(-ret));
	ret = mon_devices_setup(m, &who, &why);
	if (ret && who)
		return mon_fail(m, "--device %s: %s: %s", who, why, strerror(-ret));
	if (ret)
		return mon_fail(m, "virtio devices: %s: %s", why, strerror(-ret));
	ret = mon_boot_load(m, &why);
	if (ret)
		return mon_fail(m, "%s %s refused: %s", boot_what, boot_file,
				why ? why : strerror(-ret));
	ret = o->kernel ? 0 : mon_boot_info(m);
	if (!ret)
		ret = x86_longmode_setup(m);
	if (ret)
		return mon_fail(m, "cannot set the boot state: %s", strerror(-ret));
	if (o->cpus && sched_setaffinity(0, sizeof(*cpus), cpus) < 0)
		return mon_fail(m, "--cpus %s: %s", o->cpus, strerror(errno));
	return 0;
}

int mon_cmd_monitor(int argc, char **argv)
{
	struct mon_options opt;
	struct mon m = { .opt = &opt, .kvm_fd = -1, .vm_fd = -1, .mem_fd = -1,
			 .event_fd = -1, .ctl.fd = -1, .watchdog.tfd = -1,
			 .io_lock = PTHREAD_MUTEX_INITIALIZER,
			 .stop_lock = PTHREAD_MUTEX_INITIALIZER };
	char name_buf[BH_NAME_MAX + 1];
	cpu_set_t cpus;
	int ret;

	ret = mon_parse(argc, argv, &opt, &cpus, name_buf, sizeof(name_buf));
	if (ret >= 0)
		return ret;
	if (ev_init(&m))
		return mon_fail(NULL, "--name: too long");
	signal(SIGPIPE, SIG_IGN);     /* a closed stdout or event pipe must not kill us */
	ret = mon_setup(&m, &cpus);
	if (ret) {
		mon_boot_free(&m);
		mon_devices_destroy(&m);
		mon_vm_destroy(&m);
		return ret;
	}
	/* The system fd could create more VMs; the run loop needs only the VM and vCPU. */
	close(m.kvm_fd);
	m.kvm_fd = -1;
	ret = vdev_start_io(&m);
	if (!ret)
		ret = ctl_start(&m);
	if (ret) {
		mon_devices_destroy(&m);
		mon_vm_destroy(&m);
		return mon_fail(&m, "cannot start the I/O thread: %s", strerror(-ret));
	}
	ret = mon_vcpus_start(&m);
	if (ret) {
		mon_fail(&m, "cannot start the vCPU threads: %s", strerror(-ret));
		_exit(MON_EXIT_SETUP);      /* the I/O thread runs: no clean-up to race it */
	}
	ret = sandbox_enter(&m);
	if (ret) {
		mon_fail(&m, "cannot enter the seccomp sandbox: %s", strerror(-ret));
		_exit(MON_EXIT_SETUP);      /* vCPU threads sit in KVM_RUN: leave them to exit */
	}
	ev_emit(&m, "start", "\"id\":%u,\"memory\":%" PRIu64 ",\"entry\":\"0x%" PRIx64 "\","
		"\"tsc\":\"%s\"", opt.id, opt.mem_size, m.entry, m.tsc_host ? "host" : "kvm");
	mon_vcpus_run(&m);
	ret = m.run_error;
	switch (m.stop) {
	case MON_STOP_EXIT:
		ev_emit(&m, "exit", "\"status\":%u", m.exit_status);
		ret = MON_EXIT_OK;
		break;
	case MON_STOP_RESET:
		ev_emit(&m, "reset", NULL);
		ret = MON_EXIT_RESET;
		break;
	case MON_STOP_FAULT:
		ret = MON_EXIT_FAULT;
		break;
	default:
		ret = mon_fail(&m, "KVM_RUN failed: %s", strerror(-ret));
		break;
	}
	/* Leave at once: exit handlers (LeakSanitizer's, for one) would make system calls
	 * the sandbox kills for, and there is nothing to clean up (stdout is written raw,
	 * stderr is unbuffered, the kernel releases the VM). */
	_exit(ret);
}
