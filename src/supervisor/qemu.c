/*
 * `engine: qemu` partitions: Linux in qemu-system-x86_64, exec'd in the child the
 * supervisor forked. Guest RAM is the partition's memfd, the serial console is the
 * console pipe, and every blk/rng/net device is a vhost-user device whose socket QEMU
 * listens on in the supervisor's private directory; the supervisor connects and hands
 * the connection to the I/O server, again after each server restart. The command line
 * is in docs/guest.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/json_quote.h"
#include "supervisor/accel.h"
#include "supervisor/sup.h"

#define QEMU_BIN         "qemu-system-x86_64"
/* What every Linux partition's kernel gets before the system file's cmdline: the serial
 * console the supervisor reads, a panic that ends QEMU at once (with -no-reboot). */
#define QEMU_APPEND_BASE "console=ttyS0 panic=-1 quiet"
#define LINUX_CMDLINE_MAX 2047          /* x86 COMMAND_LINE_SIZE minus the NUL */

/* Descriptor numbers QEMU inherits: its RAM (and stdin, stdout, stderr). */
enum {
	QEMU_MEM_FD = 3,
	QEMU_HIGH_FD = QEMU_MEM_FD + 1,     /* above every target number */
	QEMU_MAX_ARGS = 64 + 6 * BH_MAX_DEVICES,
};

/* Everything the argument vector points into: it must outlive the exec call. */
struct qemu_args {
	const char *argv[QEMU_MAX_ARGS];
	int n;
	char name[BH_MAX_NAME + 32], smp[16], mem[32], ram[128], append[LINUX_CMDLINE_MAX + 64];
	char chardev[BH_MAX_DEVICES][SUP_SUN_PATH_MAX + 48], netdev[BH_MAX_DEVICES][64];
	char device[BH_MAX_DEVICES][128];
};

/* Tells the supervisor why the partition could not start (an `error` event: its
 * message becomes the summary) and ends the child. */
static void __attribute__((noreturn, format(printf, 3, 4)))
qemu_fail(int event_w, const struct sup_partition *p, const char *fmt, ...)
{
	char msg[512], qmsg[3200], qname[BH_MAX_NAME * 6 + 3], line[3500];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "bulkhead run: partition '%s': %s\n", p->cfg->name, msg);
	if (event_w >= 0 && json_quote(qmsg, sizeof(qmsg), msg) > 0 &&
	    json_quote(qname, sizeof(qname), p->cfg->name) > 0) {
		n = snprintf(line, sizeof(line), "{\"event\":\"error\",\"partition\":%s,"
			     "\"message\":%s}\n", qname, qmsg);
		if (n > 0 && (size_t)n < sizeof(line))
			sup_write_all(event_w, line, (size_t)n);
	}
	_exit(127);
}

static void add(struct qemu_args *a, const char *arg)
{
	if (a->n < QEMU_MAX_ARGS - 1)
		a->argv[a->n++] = arg;
}

static void add2(struct qemu_args *a, const char *opt, const char *val)
{
	add(a, opt);
	add(a, val);
}

/* QEMU's devices for the partition's devices. Each chardev is a unix socket QEMU
 * listens on (server=on) at the path the supervisor chose, in its private directory: a
 * path, because QEMU 7.2 passes descriptors (vhost-user's memory table, eventfds) only
 * on path= sockets as far as its vhost-user netdev is concerned, and a server, because
 * QEMU then listens again after the backend went away (vhost-user-rng-pci cannot be a
 * reconnecting client in 7.2: it is realized before the connection completes, and
 * aborts). With wait=on (the default) QEMU waits at start-up until the supervisor has
 * connected. PCI slots follow the system file's order one up (slot 1 is the pc
 * machine's PIIX3), so the disks are vda, vdb, ... in the file's order. */
static void add_devices(struct qemu_args *a, const struct sup_partition *p, bool tcg)
{
	const struct bh_partition *cfg = p->cfg;

	for (unsigned d = 0; d < cfg->ndevices; d++) {
		const struct bh_device *dev = &cfg->devices[d];
		const uint8_t *m = dev->mac;

		snprintf(a->chardev[d], sizeof(a->chardev[d]), "socket,id=vu%u,path=%s,server=on",
			 d, p->vu_path[d]);
		add2(a, "-chardev", a->chardev[d]);
		switch (dev->type) {
		case BH_DEV_BLK:
			snprintf(a->device[d], sizeof(a->device[d]), "vhost-user-blk-pci,chardev=vu%u,"
				 "num-queues=1,addr=0x%x", d, dev->pci_slot + 1);
			break;
		case BH_DEV_NET:
			/* The MAC the net server enforces. Under TCG without MSI-X: QEMU 7.2
			 * crashes starting vhost-user net with MSI-X vectors when it has no
			 * irqfds (segfault under msix_set_vector_notifiers in vhost_net_start),
			 * so the guest gets INTx. Offloads need no option: virtio-net-pci has
			 * csum, guest_csum, gso, host_tso4/6, host_ecn, guest_tso4/6 and
			 * guest_ecn on by default, a vhost-user netdev counts as having a vnet
			 * header, and QEMU offers the guest those the net server offers. */
			snprintf(a->netdev[d], sizeof(a->netdev[d]), "vhost-user,id=net%u,chardev=vu%u",
				 d, d);
			add2(a, "-netdev", a->netdev[d]);
			snprintf(a->device[d], sizeof(a->device[d]), "virtio-net-pci,netdev=net%u,"
				 "mac=%02x:%02x:%02x:%02x:%02x:%02x,addr=0x%x%s", d, m[0], m[1], m[2],
				 m[3], m[4], m[5], dev->pci_slot + 1, tcg ? ",vectors=0" : "");
			break;
		default:
			snprintf(a->device[d], sizeof(a->device[d]), "vhost-user-rng-pci,chardev=vu%u,"
				 "addr=0x%x", d, dev->pci_slot + 1);
		}
		add2(a, "-device", a->device[d]);
	}
}

static void build_args(struct qemu_args *a, const struct sup_partition *p, const char *accel,
		       const char *cpu)
{
	const struct bh_partition *cfg = p->cfg;
	unsigned long long mem = (unsigned long long)cfg->memory;

	a->n = 0;
	snprintf(a->name, sizeof(a->name), "guest=%s,debug-threads=on", cfg->name);
	snprintf(a->smp, sizeof(a->smp), "%u", cfg->ncpus ? cfg->ncpus : 1);
	snprintf(a->mem, sizeof(a->mem), "%lluM", mem >> 20);     /* a multiple of 2M */
	snprintf(a->ram, sizeof(a->ram), "memory-backend-file,id=ram,size=%llu,"
		 "mem-path=/proc/self/fd/%d,share=on", mem, QEMU_MEM_FD);
	snprintf(a->append, sizeof(a->append), "%s%s%s", QEMU_APPEND_BASE,
		 cfg->cmdline && *cfg->cmdline ? " " : "", cfg->cmdline ? cfg->cmdline : "");

	add(a, QEMU_BIN);
	add2(a, "-name", a->name);
	add2(a, "-msg", "timestamp=off,guest-name=on");
	add2(a, "-accel", accel);
	add2(a, "-cpu", cpu);
	add2(a, "-smp", a->smp);
	add2(a, "-machine", "pc,memory-backend=ram");
	add2(a, "-m", a->mem);
	add2(a, "-object", a->ram);
	add(a, "-nodefaults");
	add(a, "-no-user-config");
	add2(a, "-display", "none");
	add(a, "-no-reboot");
	add2(a, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
	     "resourcecontrol=deny");
	/* The serial port: its output on stdout (the console pipe), its input from stdin (the
	 * pipe `ctl console` writes to). */
	add2(a, "-chardev", "stdio,id=ser0,signal=off");
	add2(a, "-serial", "chardev:ser0");
	add_devices(a, p, !strcmp(accel, "tcg"));
	add2(a, "-kernel", cfg->kernel);
	if (cfg->initrd)
		add2(a, "-initrd", cfg->initrd);
	add2(a, "-append", a->append);
	a->argv[a->n] = NULL;
}

/* QEMU's threads run on the partition's CPUs, as a monitor's vCPUs do. */
static int pin(const struct bh_partition *cfg)
{
	cpu_set_t set;

	if (!cfg->ncpus)
		return 0;
	CPU_ZERO(&set);
	for (unsigned c = 0; c < BH_MAX_CPUS && c < CPU_SETSIZE; c++)
		if (bh_cpuset_has(&cfg->cpus, c))
			CPU_SET(c, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* The `start` event: the accelerator and why it was chosen. */
static void emit_start(int event_w, const struct sup_partition *p, const struct sup_accel *acc)
{
	char qname[BH_MAX_NAME * 6 + 3], qwhy[sizeof(acc->reason) * 6 + 3], line[1024];
	int n;

	if (json_quote(qname, sizeof(qname), p->cfg->name) < 0 ||
	    json_quote(qwhy, sizeof(qwhy), acc->reason) < 0)
		return;
	n = snprintf(line, sizeof(line), "{\"event\":\"start\",\"partition\":%s,\"id\":%u,"
		     "\"memory\":%llu,\"engine\":\"qemu\",\"accel\":\"%s\",\"accel_reason\":%s}\n",
		     qname, p->id, (unsigned long long)p->cfg->memory, acc->accel, qwhy);
	if (n > 0 && (size_t)n < sizeof(line))
		sup_write_all(event_w, line, (size_t)n);
}

void sup_exec_qemu(struct sup *s, struct sup_partition *p, int console_w, int event_w)
{
	static struct qemu_args a;      /* large; the child is single-threaded */
	struct sup_accel_host host;
	struct sup_accel acc;
	const char *want = getenv(SUP_ACCEL_ENV);
	int in, mem, rc;

	(void)s;
	sup_child_init();
	in = p->qemu_in_r >= 0 ? sup_child_lift(p->qemu_in_r, QEMU_HIGH_FD) : -1;
	console_w = sup_child_lift(console_w, QEMU_HIGH_FD);
	event_w = sup_child_lift(event_w, QEMU_HIGH_FD);
	mem = sup_child_lift(p->mem_fd, QEMU_HIGH_FD);
	if (in < 0 || console_w < 0 || event_w < 0 || mem < 0)
		qemu_fail(event_w, p, "cannot pass descriptors to QEMU: %s", strerror(errno));
	/* dup2 clears FD_CLOEXEC: these are the descriptors QEMU inherits. */
	if (dup2(in, STDIN_FILENO) < 0 || dup2(console_w, STDOUT_FILENO) < 0 ||
	    dup2(mem, QEMU_MEM_FD) < 0)
		qemu_fail(event_w, p, "cannot pass descriptors to QEMU: %s", strerror(errno));

	/* Only the probe's verdict needs the host; an override is taken as it is. */
	if (!want || !*want || !strcmp(want, "auto"))
		sup_accel_probe("", &host);
	else
		host = (struct sup_accel_host){ .kvm_err = ENOENT };
	if (sup_accel_choose(want, &host, &acc))
		qemu_fail(event_w, p, "%s='%s': the accelerator must be kvm, tcg or auto",
			  SUP_ACCEL_ENV, want);
	if (sizeof(QEMU_APPEND_BASE) + (p->cfg->cmdline ? strlen(p->cfg->cmdline) : 0) >
	    LINUX_CMDLINE_MAX)
		qemu_fail(event_w, p, "cmdline is too long: with bulkhead's '%s ' in front the "
			  "kernel command line exceeds %d bytes", QEMU_APPEND_BASE,
			  LINUX_CMDLINE_MAX);
	rc = pin(p->cfg);
	if (rc)
		qemu_fail(event_w, p, "cannot pin QEMU to the partition's CPUs: %s", strerror(-rc));
	build_args(&a, p, acc.accel, acc.cpu);
	emit_start(event_w, p, &acc);
	execvp(QEMU_BIN, (char *const *)a.argv);
	qemu_fail(event_w, p, "cannot start %s: %s", QEMU_BIN, strerror(errno));
}
