/*
 * `bulkhead run FILE`: checks the file exactly as `bulkhead check` does, allocates every
 * resource up front, starts the partitions and supervises them until every one has
 * stopped for good, or until SIGINT/SIGTERM stops them all.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "supervisor/sup.h"

#define STOP_GRACE_MS 2000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bulkhead run [--quiet] FILE\n"
		"\n"
		"Boots the system FILE describes: checks it (as 'bulkhead check'), allocates every\n"
		"partition's memory, starts one monitor per partition and supervises them. Console\n"
		"lines are printed prefixed with the partition's name and written to\n"
		"<log_dir>/<partition>.console.log; health events go to <log_dir>/events.jsonl.\n"
		"Returns when every partition has stopped for good; SIGINT or SIGTERM stops them all.\n"
		"\n"
		"  -q, --quiet   do not echo partition consoles (logs are still written)\n"
		"  -h, --help    show this help\n"
		"\n"
		"exit status: 0 every partition exited with status 0; 1 some partition did not (the\n"
		"summary says which and how); 2 the file has errors or resources could not be had;\n"
		"128+N stopped by signal N.\n");
}

static struct sup_partition *by_pid(struct sup *s, pid_t pid)
{
	for (unsigned i = 0; i < s->nparts; i++)
		if (s->parts[i].pid == pid)
			return &s->parts[i];
	return NULL;
}

static struct sup_server *server_by_pid(struct sup *s, pid_t pid)
{
	for (unsigned i = 0; i < s->nservers; i++)
		if (s->servers[i].pid == pid)
			return &s->servers[i];
	return NULL;
}

static bool all_stopped(const struct sup *s)
{
	for (unsigned i = 0; i < s->nparts; i++)
		if (s->parts[i].state != SUP_STOPPED)
			return false;
	return true;
}

static void reap(struct sup *s)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		struct sup_partition *p = by_pid(s, pid);
		struct sup_server *v = p ? NULL : server_by_pid(s, pid);
		if (p)
			sup_partition_exited(s, p, wstatus);
		else if (v)
			sup_server_exited(s, v, wstatus);
		else
			sup_standby_exited(s, pid, wstatus);
	}
}

static void on_signal(struct sup *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (!s->stop_signal) {
			s->stop_signal = (int)si.ssi_signo;
			sup_event(s, "system_stop", NULL, "\"signal\":\"%s\"",
				  sigabbrev_np((int)si.ssi_signo));
		}
		/* A monitor held by the cyclic plan must run to see its SIGTERM. */
		for (unsigned i = 0; i < s->nparts; i++)
			if (s->parts[i].pid > 0) {
				kill(s->parts[i].pid, SIGTERM);
				kill(s->parts[i].pid, SIGCONT);
			}
	}
	reap(s);
}

static void on_pipe(struct sup *s, uint64_t tag)
{
	unsigned idx = SUP_TAG_IDX(tag);
	struct sup_stream *st;

	switch (SUP_TAG_KIND(tag)) {
	case SUP_TAG_UART:   st = &s->parts[idx].uart; break;
	case SUP_TAG_MEVENT: st = &s->parts[idx].events; break;
	case SUP_TAG_VCON:   st = &s->parts[idx].vcon; break;
	case SUP_TAG_SEVENT: st = &s->servers[idx].events; break;
	default: return;
	}
	sup_stream_read(st);
	/* At EOF stop watching; what ended is handled when its process is reaped. */
	if (st->eof && st->fd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, st->fd, NULL);
}

static int setup(struct sup *s)
{
	sigset_t mask;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	n = readlink("/proc/self/exe", s->self, sizeof(s->self) - 1);
	if (n <= 0)
		return -errno;
	s->self[n] = '\0';
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sigfd < 0 || s->epfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SUP_TAG(SUP_TAG_SIGNAL, 0) };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev))
		return -errno;
	if (sup_open_logs(s))
		return -EIO;
	if (sup_control_open(s))
		return -EIO;
	for (unsigned i = 0; i < s->nparts; i++)
		if (sup_alloc_partition(s, &s->parts[i]))
			return -ENOMEM;
	if (sup_alloc_shared(s))
		return -ENOMEM;
	if (sup_open_uplinks(s))
		return -EIO;
	return sup_prepare_devices(s);
}

static int elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000);
}

static void loop(struct sup *s)
{
	struct timespec stop_at = { 0 };
	bool killed = false;

	while (!all_stopped(s)) {
		struct epoll_event evs[16];
		int timeout = -1, n;

		timeout = sup_servers_tick(s);
		if (s->stop_signal) {
			if (!stop_at.tv_sec)
				clock_gettime(CLOCK_MONOTONIC, &stop_at);
			timeout = STOP_GRACE_MS - elapsed_ms(&stop_at);
			if (timeout <= 0 && !killed) {
				/* A monitor that ignores SIGTERM is killed: nothing outlives run. */
				for (unsigned i = 0; i < s->nparts; i++)
					if (s->parts[i].pid > 0)
						kill(s->parts[i].pid, SIGKILL);
				killed = true;
			}
			if (timeout <= 0)
				timeout = 100;
		}
		n = epoll_wait(s->epfd, evs, 16, timeout);
		for (int i = 0; i < n; i++) {
			if (SUP_TAG_KIND(evs[i].data.u64) == SUP_TAG_SIGNAL)
				on_signal(s);
			else if (SUP_TAG_KIND(evs[i].data.u64) == SUP_TAG_SCHED)
				sup_sched_tick(s);
			else if (SUP_TAG_KIND(evs[i].data.u64) >= SUP_TAG_CTL_LISTEN)
				sup_control_event(s, evs[i].data.u64);
			else
				on_pipe(s, evs[i].data.u64);
		}
		reap(s);
	}
}

/* Once every partition is done the I/O servers have nothing left to serve. */
static void stop_servers(struct sup *s)
{
	struct timespec since;

	sup_stop_servers(s);
	clock_gettime(CLOCK_MONOTONIC, &since);
	while (!sup_servers_stopped(s)) {
		struct epoll_event evs[16];
		int n = epoll_wait(s->epfd, evs, 16, 50);

		for (int i = 0; i < n; i++)
			if (SUP_TAG_KIND(evs[i].data.u64) == SUP_TAG_SEVENT ||
			    SUP_TAG_KIND(evs[i].data.u64) == SUP_TAG_VCON)
				on_pipe(s, evs[i].data.u64);
		reap(s);
		if (elapsed_ms(&since) > STOP_GRACE_MS)
			for (unsigned i = 0; i < s->nservers; i++) {
				if (s->servers[i].pid > 0)
					kill(s->servers[i].pid, SIGKILL);
				if (s->servers[i].standby.pid > 0)
					kill(s->servers[i].standby.pid, SIGKILL);
			}
	}
}

static int summarise(struct sup *s)
{
	bool ok = true;

	sup_console_unshown_note(s, STDERR_FILENO);
	fprintf(stderr, "bulkhead run: system '%s' stopped:\n", s->sys->name);
	for (unsigned i = 0; i < s->nparts; i++) {
		const struct sup_partition *p = &s->parts[i];
		fprintf(stderr, "  %-16s %s\n", p->cfg->name, p->summary);
		ok &= p->ok;
	}
	sup_event(s, "system_stopped", NULL, "\"ok\":%s", ok ? "true" : "false");
	if (s->stop_signal)
		return 128 + s->stop_signal;
	return ok ? 0 : 1;
}

static void release(struct sup *s)
{
	sup_control_close(s);
	for (unsigned i = 0; i < s->nparts; i++) {
		struct sup_partition *p = &s->parts[i];
		if (p->mem_fd >= 0)
			close(p->mem_fd);
		if (p->log_fd >= 0)
			close(p->log_fd);
		if (p->vcon_w >= 0)
			close(p->vcon_w);
		if (p->ctl_fd >= 0)
			close(p->ctl_fd);
		if (p->ctl_mon_fd >= 0)
			close(p->ctl_mon_fd);
		if (p->qemu_in_w >= 0)
			close(p->qemu_in_w);
		sup_stream_close(s, &p->vcon);
		for (unsigned d = 0; d < BH_MAX_DEVICES; d++)
			if (p->dev_fd[d] >= 0)
				close(p->dev_fd[d]);
	}
	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];
		sup_stream_close(s, &v->events);
		sup_counters_free(v);
		for (unsigned d = 0; d < BH_MAX_DISKS; d++)
			if (v->disk_fd[d] >= 0)
				close(v->disk_fd[d]);
		for (unsigned c = 0; c < v->nconns; c++)
			if (v->conns[c].fd >= 0)
				close(v->conns[c].fd);
	}
	for (unsigned i = 0; i < s->sys->nregions; i++)
		if (s->region_fd[i] >= 0)
			close(s->region_fd[i]);
	for (unsigned i = 0; i < s->sys->nchannels; i++)
		if (s->channel_fd[i] >= 0)
			close(s->channel_fd[i]);
	sup_close_uplinks(s);
	if (s->events_fd >= 0)
		close(s->events_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->sigfd >= 0)
		close(s->sigfd);
}

static struct bh_system *load(const char *path)
{
	struct bh_system *sys;
	struct bh_host host;
	struct diag d;

	cfg_host_probe(&host);
	diag_init(&d, path);
	sys = cfg_load_file(path, &host, &d);
	diag_print(&d, stderr);
	if (d.errors) {
		fprintf(stderr, "bulkhead run: %s has %zu error%s; nothing was started\n", path,
			d.errors, d.errors == 1 ? "" : "s");
		cfg_free(sys);
		sys = NULL;
	}
	diag_free(&d);
	return sys;
}

/* Parts of the system file that later work brings to life. Refusing them is more
 * honest than running a system other than the one the file describes. */
static bool supported(const struct bh_system *sys)
{
	bool ok = true;
	for (unsigned i = 0; i < sys->npartitions; i++) {
		const struct bh_partition *p = &sys->partitions[i];
		/* QEMU 7.2 has no vhost-user console device: a Linux partition's console is
		 * its serial port (docs/guest.md). */
		for (unsigned d = 0; d < p->ndevices; d++)
			if (p->engine == BH_ENGINE_QEMU && p->devices[d].type == BH_DEV_CONSOLE) {
				fprintf(stderr, "bulkhead run: partition '%s': console devices cannot be "
					"served to 'engine: qemu' partitions (QEMU has no vhost-user "
					"console device); their console is the serial port\n", p->name);
				ok = false;
				break;
			}
	}
	return ok;
}

int sup_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sup *s;
	int opt, rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return 2;
	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'q': s->quiet = true; break;
		case 'h': usage(stdout); free(s); return 0;
		default: usage(stderr); free(s); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		free(s);
		return 2;
	}
	s->sys = load(argv[optind]);
	if (!s->sys || !supported(s->sys)) {
		cfg_free(s->sys);
		free(s);
		return 2;
	}
	s->epfd = s->sigfd = s->events_fd = s->sched.tfd = -1;
	memset(s->region_fd, -1, sizeof(s->region_fd));
	memset(s->channel_fd, -1, sizeof(s->channel_fd));
	memset(s->uplink_fd, -1, sizeof(s->uplink_fd));
	s->nparts = s->sys->npartitions;
	for (unsigned i = 0; i < s->nparts; i++) {
		struct sup_partition *p = &s->parts[i];

		*p = (struct sup_partition){ .sup = s, .cfg = &s->sys->partitions[i], .id = i,
			.mem_fd = -1, .log_fd = -1, .vcon_w = -1, .ctl_fd = -1, .ctl_mon_fd = -1,
			.qemu_in_r = -1, .qemu_in_w = -1 };
		sup_stream_init(&p->uart, -1, -1, sup_console_line, p);
		sup_stream_init(&p->events, -1, -1, sup_monitor_event_line, p);
		sup_stream_init(&p->vcon, -1, -1, sup_console_line, p);
		memset(p->dev_fd, -1, sizeof(p->dev_fd));
	}
	s->nservers = s->sys->nservers;
	for (unsigned i = 0; i < s->nservers; i++) {
		struct sup_server *v = &s->servers[i];

		*v = (struct sup_server){ .sup = s, .cfg = &s->sys->servers[i], .id = i };
		sup_standby_init(v);
		v->ctl_fd = -1;
		sup_stream_init(&v->events, -1, -1, sup_server_event_line, v);
		memset(v->disk_fd, -1, sizeof(v->disk_fd));
	}
	rc = setup(s);
	if (rc) {
		fprintf(stderr, "bulkhead run: cannot set up the system: %s\n", strerror(-rc));
		release(s);
		cfg_free(s->sys);
		free(s);
		return 2;
	}
	sup_event(s, "system_start", NULL, "\"system\":\"%s\",\"partitions\":%u", s->sys->name,
		  s->nparts);
	if (s->sys->scheduling == BH_SCHED_CYCLIC && (rc = sup_sched_start(s))) {
		fprintf(stderr, "bulkhead run: cannot start the cyclic plan: %s\n", strerror(-rc));
		release(s);
		cfg_free(s->sys);
		free(s);
		return 2;
	}
	rc = sup_start_servers(s);
	if (rc)
		fprintf(stderr, "bulkhead run: cannot start the I/O servers: %s\n", strerror(-rc));
	for (unsigned i = 0; i < s->nparts; i++) {
		struct sup_partition *p = &s->parts[i];
		int err = rc ? rc : sup_start_partition(s, p);

		if (err) {
			snprintf(p->summary, sizeof(p->summary), "not started: %s", strerror(-err));
			p->state = SUP_STOPPED;
		}
	}
	loop(s);
	stop_servers(s);
	sup_sched_stop(s);
	rc = summarise(s);
	release(s);
	cfg_free(s->sys);
	free(s);
	return rc;
}
