/*
 * One partition's life as the supervisor sees it: memory allocated up front, a monitor
 * process started with its resources as file descriptors, and, when the monitor ends,
 * the partition's health action (halt, restart up to max_restarts, ignore).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/channels.h"
#include "bulkhead/control.h"
#include "supervisor/sup.h"

/* Fixed descriptor numbers in the monitor; region fds follow MON_MEM_FD. */
enum {
	MON_EVENT_FD = 3,
	MON_MEM_FD = 4,
	MON_FIRST_REGION_FD = 5,
	HIGH_FD = MON_FIRST_REGION_FD + BH_MAX_MEMMAP,   /* above every target number */
};

/* A memfd with every page allocated now, so no partition ever waits for (or fails on)
 * host memory later. Returns the fd or -errno. */
static int alloc_memfd(const char *what, const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC), err;

	if (fd >= 0 && !ftruncate(fd, (off_t)size) && !fallocate(fd, 0, 0, (off_t)size))
		return fd;
	err = errno;
	fprintf(stderr, "bulkhead run: %s '%s': cannot allocate %llu bytes of memory: %s\n", what,
		name, (unsigned long long)size, strerror(err));
	if (fd >= 0)
		close(fd);
	return -err;
}

int sup_alloc_partition(struct sup *s, struct sup_partition *p)
{
	p->mem_fd = alloc_memfd("partition", p->cfg->name, p->cfg->memory);
	return p->mem_fd < 0 ? p->mem_fd : 0;
}

/* The static half of a channel's header, from the system file: the area describes
 * itself, so an end's parameters are the file's, not what a program believes. */
static int write_channel_header(int fd, const struct bh_channel *ch)
{
	struct bh_chan_header h = {
		.magic = BH_CHAN_MAGIC,
		.type = ch->type == BH_CHAN_QUEUING ? BH_CHAN_AREA_QUEUING : BH_CHAN_AREA_SAMPLING,
		.max_message = (uint32_t)ch->max_message,
		.depth = ch->type == BH_CHAN_QUEUING ? ch->depth : 0,
		.refresh_ns = ch->type == BH_CHAN_QUEUING ? 0 : ch->refresh_ns,
		.area_size = ch->size,
	};

	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		fprintf(stderr, "bulkhead run: channel '%s': cannot write its header: %s\n",
			ch->name, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* Shared regions and channels live as long as the system: a partition restart keeps
 * its peers' data. */
int sup_alloc_shared(struct sup *s)
{
	for (unsigned i = 0; i < s->sys->nregions; i++) {
		s->region_fd[i] = alloc_memfd("shared region", s->sys->regions[i].name,
					      s->sys->regions[i].size);
		if (s->region_fd[i] < 0)
			return s->region_fd[i];
	}
	for (unsigned i = 0; i < s->sys->nchannels; i++) {
		s->channel_fd[i] = alloc_memfd("channel", s->sys->channels[i].name,
					       s->sys->channels[i].size);
		if (s->channel_fd[i] < 0)
			return s->channel_fd[i];
		if (write_channel_header(s->channel_fd[i], &s->sys->channels[i]))
			return -EIO;
	}
	return 0;
}

/* A restarted partition starts from zeroed memory, like a machine after power-on. */
static int zero_memory(struct sup_partition *p)
{
	if (fallocate(p->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)p->cfg->memory) ||
	    fallocate(p->mem_fd, 0, 0, (off_t)p->cfg->memory))
		return -errno;
	return 0;
}

static void format_cpus(const struct bh_cpuset *set, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned c = 0; c < BH_MAX_CPUS && used + 12 < len; c++)
		if (bh_cpuset_has(set, c))
			used += (size_t)snprintf(buf + used, len - used, used ? ",%u" : "%u", c);
}

/* The partition's end of a channel, for its monitor's --region: the port name its
 * program opens and whether it writes (source) or reads (destination). */
static const char *channel_end(const struct bh_channel *ch, unsigned pi, const char **role)
{
	*role = "source";
	if (ch->source.partition.idx == (int)pi)
		return ch->source.port;
	*role = "destination";
	for (unsigned i = 0; i < ch->ndests; i++)
		if (ch->dests[i].partition.idx == (int)pi)
			return ch->dests[i].port;
	return NULL;
}

static void exec_monitor(struct sup *s, struct sup_partition *p, int console_w, int event_w)
{
	char id[16], memory[32], cpus[4096], event_fd[8], mem_fd[8];
	char regions[BH_MAX_MEMMAP][2 * BH_MAX_NAME + 96], devices[BH_MAX_DEVICES][64], wdog[24];
	const char *argv[28 + 2 * BH_MAX_MEMMAP + 2 * BH_MAX_DEVICES];
	int lifted[BH_MAX_MEMMAP], dev_lifted[BH_MAX_DEVICES], ctl_lifted;
	char ctl_arg[16];
	unsigned fd_next = MON_FIRST_REGION_FD;
	int n = 0, devnull, mem;

	sup_child_init();
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	console_w = sup_child_lift(console_w, HIGH_FD);
	event_w = sup_child_lift(event_w, HIGH_FD);
	mem = sup_child_lift(p->mem_fd, HIGH_FD);
	if (devnull < 0 || console_w < 0 || event_w < 0 || mem < 0)
		_exit(127);
	for (unsigned i = 0; i < p->cfg->nmemmap; i++) {
		const struct bh_map_entry *e = &p->cfg->memmap[i];
		if (e->kind == BH_MAP_RAM)
			continue;
		lifted[i] = sup_child_lift(e->kind == BH_MAP_SHARED ? s->region_fd[e->object]
							    : s->channel_fd[e->object], HIGH_FD);
		if (lifted[i] < 0)
			_exit(127);
	}
	for (unsigned i = 0; i < p->cfg->ndevices; i++) {
		dev_lifted[i] = sup_child_lift(p->dev_fd[i], HIGH_FD);
		if (dev_lifted[i] < 0)
			_exit(127);
	}
	ctl_lifted = p->ctl_mon_fd >= 0 ? sup_child_lift(p->ctl_mon_fd, HIGH_FD) : -1;
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(console_w, STDOUT_FILENO) < 0 ||
	    dup2(event_w, MON_EVENT_FD) < 0 || dup2(mem, MON_MEM_FD) < 0)
		_exit(127);

	snprintf(id, sizeof(id), "%u", p->id);
	snprintf(memory, sizeof(memory), "%llu", (unsigned long long)p->cfg->memory);
	snprintf(event_fd, sizeof(event_fd), "%d", MON_EVENT_FD);
	snprintf(mem_fd, sizeof(mem_fd), "%d", MON_MEM_FD);
	format_cpus(&p->cfg->cpus, cpus, sizeof(cpus));
	argv[n++] = "bulkhead";
	argv[n++] = "monitor";
	argv[n++] = "--name";
	argv[n++] = p->cfg->name;
	argv[n++] = "--id";
	argv[n++] = id;
	if (p->cfg->kernel) {
		argv[n++] = "--kernel";
		argv[n++] = p->cfg->kernel;
		if (p->cfg->initrd) {
			argv[n++] = "--initrd";
			argv[n++] = p->cfg->initrd;
		}
	} else {
		argv[n++] = "--image";
		argv[n++] = p->cfg->image;
	}
	argv[n++] = "--memory";
	argv[n++] = memory;
	argv[n++] = "--mem-fd";
	argv[n++] = mem_fd;
	argv[n++] = "--event-fd";
	argv[n++] = event_fd;
	if (cpus[0]) {
		argv[n++] = "--cpus";
		argv[n++] = cpus;
	}
	if (p->cfg->cmdline) {
		argv[n++] = "--cmdline";
		argv[n++] = p->cfg->cmdline;
	}
	if (p->cfg->health.on_fault == BH_FAULT_IGNORE) {
		argv[n++] = "--on-violation";
		argv[n++] = "ignore";
	}
	if (p->cfg->health.watchdog_ns) {
		snprintf(wdog, sizeof(wdog), "%llu", (unsigned long long)p->cfg->health.watchdog_ns);
		argv[n++] = "--watchdog";
		argv[n++] = wdog;
		if (p->cfg->health.on_fault == BH_FAULT_IGNORE) {
			argv[n++] = "--on-watchdog";
			argv[n++] = "ignore";
		}
	}
	for (unsigned i = 0; i < p->cfg->nmemmap; i++) {
		const struct bh_map_entry *e = &p->cfg->memmap[i];
		const char *port = NULL, *role = NULL;
		int len;

		if (e->kind == BH_MAP_RAM)
			continue;
		if (dup2(lifted[i], (int)fd_next) < 0)
			_exit(127);
		len = snprintf(regions[i], sizeof(regions[i]), "%s,%s,0x%llx,%llu,%u,%s", e->name,
			       bh_map_kind_names[e->kind], (unsigned long long)e->gpa,
			       (unsigned long long)e->size, fd_next++, e->writable ? "rw" : "ro");
		if (e->kind != BH_MAP_SHARED)
			port = channel_end(&s->sys->channels[e->object], p->id, &role);
		if (port)
			snprintf(regions[i] + len, sizeof(regions[i]) - (size_t)len, ",port=%s,%s",
				 port, role);
		argv[n++] = "--region";
		argv[n++] = regions[i];
	}
	for (unsigned i = 0; i < p->cfg->ndevices; i++) {
		const struct bh_device *dev = &p->cfg->devices[i];

		if (dup2(dev_lifted[i], (int)fd_next) < 0)
			_exit(127);
		snprintf(devices[i], sizeof(devices[i]), "%s,slot=%u,fd=%u,isolation=%s",
			 bh_device_type_names[dev->type], dev->pci_slot, fd_next++,
			 bh_isolation_names[p->cfg->isolation]);
		argv[n++] = "--device";
		argv[n++] = devices[i];
	}
	/* The control socket: console input, and with devices a restarted I/O server's new
	 * connections. */
	if (ctl_lifted >= 0) {
		if (dup2(ctl_lifted, (int)fd_next) < 0)
			_exit(127);
		snprintf(ctl_arg, sizeof(ctl_arg), "%u", fd_next++);
		argv[n++] = "--control-fd";
		argv[n++] = ctl_arg;
	}
	argv[n] = NULL;
	execv(s->self, (char *const *)argv);
	fprintf(stderr, "bulkhead run: cannot start the monitor '%s': %s\n", s->self,
		strerror(errno));
	_exit(127);
}

int sup_start_partition(struct sup *s, struct sup_partition *p)
{
	int console[2], events[2];

	/* Every monitor gets a control socket, for console input (partitions with devices
	 * have theirs already, see add_conn); it lives as long as the system. */
	if (p->cfg->engine != BH_ENGINE_QEMU && p->ctl_fd < 0) {
		int cv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv))
			return -errno;
		p->ctl_fd = cv[0];
		p->ctl_mon_fd = cv[1];
	}
	/* A QEMU partition's serial input is a pipe on QEMU's stdin, new for each QEMU. */
	if (p->cfg->engine == BH_ENGINE_QEMU) {
		int in[2];

		if (pipe2(in, O_CLOEXEC))
			return -errno;
		if (p->qemu_in_w >= 0)
			close(p->qemu_in_w);
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		p->qemu_in_r = in[0];
		p->qemu_in_w = in[1];
	}
	if (pipe2(console, O_CLOEXEC) || pipe2(events, O_CLOEXEC))
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0)
		(p->cfg->engine == BH_ENGINE_QEMU ? sup_exec_qemu : exec_monitor)(s, p, console[1],
										  events[1]);
	/* Outside its slot a partition is held before its monitor even starts. Sent from
	 * here, the stop is ordered before any SIGCONT a later slot boundary sends. */
	if (!sup_sched_may_run(s, p))
		kill(p->pid, SIGSTOP);
	close(console[1]);
	close(events[1]);
	if (p->qemu_in_r >= 0) {
		close(p->qemu_in_r);
		p->qemu_in_r = -1;
	}
	/* The monitor holds its device connections now; ours would hide its death from the
	 * servers. */
	for (unsigned d = 0; d < p->cfg->ndevices; d++) {
		close(p->dev_fd[d]);
		p->dev_fd[d] = -1;
	}
	fcntl(console[0], F_SETFL, O_NONBLOCK);
	fcntl(events[0], F_SETFL, O_NONBLOCK);
	sup_stream_init(&p->uart, console[0], p->log_fd, sup_console_line, p);
	sup_stream_init(&p->events, events[0], -1, sup_monitor_event_line, p);
	memset(&p->out, 0, sizeof(p->out));
	p->state = SUP_RUNNING;
	p->op = SUP_OP_NONE;
	p->starts++;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	sup_stream_watch(s, &p->uart, SUP_TAG(SUP_TAG_UART, p->id));
	sup_stream_watch(s, &p->events, SUP_TAG(SUP_TAG_MEVENT, p->id));
	sup_event(s, "partition_start", p->cfg->name, "\"pid\":%d,\"start\":%u", (int)p->pid,
		  p->starts);
	return 0;
}

/* The partition is done for good. */
static void stop_for_good(struct sup *s, struct sup_partition *p, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stop_for_good(struct sup *s, struct sup_partition *p, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->summary, sizeof(p->summary), fmt, ap);
	va_end(ap);
	p->ok = ok;
	p->state = SUP_STOPPED;
	sup_event(s, "partition_stop", p->cfg->name, "\"ok\":%s", ok ? "true" : "false");
}

/* From zeroed memory, with new device connections. */
static int start_again(struct sup *s, struct sup_partition *p)
{
	int rc = zero_memory(p);

	if (!rc && p->cfg->ndevices)
		rc = sup_servers_reconnect(s, p);
	if (!rc)
		rc = sup_start_partition(s, p);
	return rc;
}

static void restart(struct sup *s, struct sup_partition *p, const char *why)
{
	int rc;

	sup_event(s, "partition_restart", p->cfg->name, "\"reason\":\"%s\",\"restarts\":%u", why,
		  p->restarts);
	rc = start_again(s, p);
	if (rc == -ENOTCONN)
		stop_for_good(s, p, false, "not restarted after %s: an I/O server it uses has "
			      "failed for good", why);
	else if (rc)
		stop_for_good(s, p, false, "could not be restarted: %s", strerror(-rc));
}

static void apply_fault_action(struct sup *s, struct sup_partition *p, const char *what)
{
	const struct bh_health *h = &p->cfg->health;

	switch (h->on_fault) {
	case BH_FAULT_RESTART:
		if (p->restarts < h->max_restarts) {
			p->restarts++;
			restart(s, p, "fault");
			return;
		}
		stop_for_good(s, p, false, "halted after %s (max_restarts %u reached)", what,
			      h->max_restarts);
		return;
	case BH_FAULT_IGNORE:
		stop_for_good(s, p, false, "stopped after %s (on_fault: ignore)", what);
		return;
	default:
		stop_for_good(s, p, false, "halted after %s", what);
	}
}

void sup_partition_exited(struct sup *s, struct sup_partition *p, int wstatus)
{
	char what[300];

	sup_stream_drain(&p->uart);
	sup_stream_drain(&p->events);
	sup_stream_drain(&p->vcon);
	sup_stream_close(s, &p->uart);
	sup_stream_close(s, &p->events);
	p->pid = 0;
	if (s->stop_signal) {
		stop_for_good(s, p, false, "stopped by %s", strsignal(s->stop_signal));
		return;
	}
	if (p->op == SUP_OP_STOP) {
		stop_for_good(s, p, false, "stopped by the operator");
		return;
	}
	if (p->op == SUP_OP_RESTART) {
		restart(s, p, "operator");
		return;
	}
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 && p->out.exited) {
		stop_for_good(s, p, p->out.status == 0, "exited with status %u", p->out.status);
	} else if (p->cfg->engine == BH_ENGINE_QEMU && WIFEXITED(wstatus) &&
		   WEXITSTATUS(wstatus) == 0) {
		/* QEMU powered off, but the guest's init never reported a status: it powered
		 * off by itself, panicked or reset. */
		apply_fault_action(s, p, "the guest stopped without reporting an exit status");
	} else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 3) {
		/* Resets are the guest's wish, not a fault, but they share the restart budget so
		 * that a guest resetting in a loop cannot keep the system busy forever. */
		if (p->restarts < p->cfg->health.max_restarts) {
			p->restarts++;
			restart(s, p, "reset requested");
		} else {
			stop_for_good(s, p, false, "stopped after a reset request (max_restarts %u "
				      "reached)", p->cfg->health.max_restarts);
		}
	} else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 1) {
		apply_fault_action(s, p, p->out.what[0] ? p->out.what : "a fault");
	} else if (WIFEXITED(wstatus)) {
		stop_for_good(s, p, false, "could not start: %s",
			      p->out.what[0] ? p->out.what : "monitor set-up failed");
	} else {
		snprintf(what, sizeof(what), "monitor crash (%s)",
			 strsignal(WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0));
		sup_event(s, "monitor_crash", p->cfg->name, "\"signal\":%d",
			  WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
		apply_fault_action(s, p, what);
	}
}

/* `bulkhead ctl start`: a stopped partition starts again from zeroed memory. */
int sup_operator_start(struct sup *s, struct sup_partition *p)
{
	int rc;

	if (p->state == SUP_RUNNING)
		return -EALREADY;
	rc = start_again(s, p);
	if (!rc)
		sup_event(s, "operator_start", p->cfg->name, NULL);
	return rc;
}

/* `bulkhead ctl stop|restart`: the monitor is asked to end; what follows is decided
 * when it is reaped. */
int sup_operator_stop(struct sup *s, struct sup_partition *p, bool restart_after)
{
	if (p->state != SUP_RUNNING || p->pid <= 0)
		return restart_after ? sup_operator_start(s, p) : -ESRCH;
	p->op = restart_after ? SUP_OP_RESTART : SUP_OP_STOP;
	sup_event(s, restart_after ? "operator_restart" : "operator_stop", p->cfg->name, NULL);
	kill(p->pid, SIGTERM);
	kill(p->pid, SIGCONT);       /* a partition held by the cyclic plan must see it */
	return 0;
}

/* A QEMU partition's serial input: its stdin pipe. All or nothing, as for a monitor. */
static int qemu_console_input(struct sup_partition *p, const char *data, size_t n)
{
	int room = 0;

	if (p->qemu_in_w < 0)
		return -ESRCH;
	if (!ioctl(p->qemu_in_w, FIONREAD, &room) &&
	    (size_t)room + n > (size_t)fcntl(p->qemu_in_w, F_GETPIPE_SZ))
		return -EAGAIN;         /* QEMU has not read what came before */
	while (n) {
		ssize_t w = write(p->qemu_in_w, data, n);

		if (w < 0)
			return errno == EAGAIN ? -EAGAIN : -errno;
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

/* `bulkhead ctl console --send` and ctl's stdin: bytes for the partition's UART
 * receiver, as CONSOLE_INPUT messages on its monitor's control socket (QEMU: on its
 * stdin, which its serial port reads). Never waits: a partition that does not keep up
 * (held by the cyclic plan, say) makes it -EAGAIN. */
int sup_console_input(struct sup *s, struct sup_partition *p, const char *data, size_t n)
{
	(void)s;
	if (p->state != SUP_RUNNING || p->pid <= 0)
		return -ESRCH;
	if (p->cfg->engine == BH_ENGINE_QEMU)
		return qemu_console_input(p, data, n);
	if (p->ctl_fd < 0)
		return -ESRCH;
	while (n) {
		struct {
			struct bh_control_msg hdr;
			char data[BH_CONTROL_INPUT_MAX];
		} msg = { .hdr = { .magic = BH_CONTROL_MAGIC, .type = BH_CONTROL_CONSOLE_INPUT } };
		size_t k = n < sizeof(msg.data) ? n : sizeof(msg.data);

		memcpy(msg.data, data, k);
		if (send(p->ctl_fd, &msg, sizeof(msg.hdr) + k, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		data += k;
		n -= k;
	}
	return 0;
}
