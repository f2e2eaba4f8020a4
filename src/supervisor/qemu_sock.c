/*
 * The vhost-user sockets of `engine: qemu` partitions: QEMU listens on each device's
 * socket in a private 0700 directory the supervisor makes; the supervisor connects
 * (without following links, only to a socket), hands the connection to the I/O server
 * and removes the name, then connects again through the kept O_PATH descriptor after
 * every restart of the server. See docs/guest.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/sup.h"

/* The private directory of QEMU's vhost-user sockets: $XDG_RUNTIME_DIR, $TMPDIR or
 * /tmp, then bulkhead.XXXXXX made with mode 0700 (mkdtemp). */
static int make_vu_dir(struct sup *s)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	int n;

	if (s->vu_dir[0])
		return 0;
	if (!base || base[0] != '/')
		base = getenv("TMPDIR");
	if (!base || base[0] != '/')
		base = "/tmp";
	n = snprintf(s->vu_dir, sizeof(s->vu_dir), "%s/bulkhead.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(s->vu_dir) || !mkdtemp(s->vu_dir)) {
		int err = n >= 0 && (size_t)n >= sizeof(s->vu_dir) ? -ENAMETOOLONG : -errno;

		fprintf(stderr, "bulkhead run: cannot make a directory for QEMU's vhost-user "
			"sockets under '%s': %s\n", base, strerror(-err));
		s->vu_dir[0] = '\0';
		return err;
	}
	return 0;
}

/* Where QEMU will listen for device d of partition p: <vu_dir>/<partition>.<d>.sock,
 * which must fit sun_path. */
int sup_qemu_sock_path(struct sup *s, struct sup_partition *p, unsigned d)
{
	int rc = make_vu_dir(s), n;

	if (rc)
		return rc;
	n = snprintf(p->vu_path[d], sizeof(p->vu_path[d]), "%s/%s.%u.sock", s->vu_dir,
		     p->cfg->name, d);
	if (n < 0 || (size_t)n >= sizeof(p->vu_path[d])) {
		fprintf(stderr, "bulkhead run: partition '%s': device %u: the socket path "
			"'%s/%s.%u.sock' is longer than %d bytes; set XDG_RUNTIME_DIR or TMPDIR to "
			"a shorter directory\n", p->cfg->name, d, s->vu_dir, p->cfg->name, d,
			SUP_SUN_PATH_MAX - 1);
		p->vu_path[d][0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A new connection to the socket QEMU listens on for device d of partition p: the fd,
 * -EAGAIN while QEMU has not got that far, or another -errno. The socket is opened
 * without following symbolic links and must be a socket (QEMU, which can write in the
 * directory, cannot send the supervisor elsewhere); later connections go through that
 * O_PATH descriptor, so the name is removed after the first one. Never waits. */
int sup_qemu_connect(struct sup_partition *p, unsigned d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (p->vu_fd[d] < 0) {
		p->vu_fd[d] = open(p->vu_path[d], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (p->vu_fd[d] < 0)
			return errno == ENOENT ? -EAGAIN : -errno;
		if (fstat(p->vu_fd[d], &st) || !S_ISSOCK(st.st_mode)) {
			close(p->vu_fd[d]);
			p->vu_fd[d] = -1;
			return -ENOTSOCK;
		}
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", p->vu_fd[d]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		/* ECONNREFUSED: bound, not listening yet (or QEMU is gone); EAGAIN: its
		 * backlog is full */
		err = errno == ECONNREFUSED || errno == EAGAIN ? -EAGAIN : -errno;
		close(fd);
		return err;
	}
	/* the server gets a blocking socket, as a socket pair end is */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (p->vu_path[d][0]) {
		unlink(p->vu_path[d]);
		p->vu_path[d][0] = '\0';
	}
	return fd;
}

/* A restarted server's connection to a QEMU partition: QEMU listens again on the same
 * socket once it has seen the old connection close (and takes this one from its backlog
 * if it has not yet); its devices then redo the vhost-user handshake, vhost-user-blk
 * handing the new server the same inflight region. -1 when QEMU is gone. */
int sup_qemu_reconnect(struct sup *s, struct sup_server *v, const struct sup_conn *cn)
{
	struct sup_partition *p = &s->parts[cn->part];
	int fd;

	if (p->state != SUP_RUNNING || p->vu_fd[cn->dev] < 0)
		return -1;
	fd = sup_qemu_connect(p, cn->dev);
	if (fd < 0)
		fprintf(stderr, "bulkhead run: I/O server '%s': cannot reconnect partition "
			"'%s' device %u: %s\n", v->cfg->name, p->cfg->name, cn->dev,
			strerror(-fd));
	return fd < 0 ? -1 : fd;
}

/* Removes the directory of QEMU's sockets once no name is left in it (each is removed
 * when first connected), or at the end whatever is left. */
void sup_qemu_sock_dir_remove(struct sup *s, bool at_end)
{
	if (!s->vu_dir[0])
		return;
	for (unsigned i = 0; i < s->nparts; i++)
		for (unsigned d = 0; d < BH_MAX_DEVICES; d++) {
			if (!s->parts[i].vu_path[d][0])
				continue;
			if (!at_end)
				return;
			unlink(s->parts[i].vu_path[d]);
			s->parts[i].vu_path[d][0] = '\0';
		}
	if (rmdir(s->vu_dir) && at_end)
		fprintf(stderr, "bulkhead run: cannot remove %s: %s\n", s->vu_dir,
			strerror(errno));
	s->vu_dir[0] = '\0';
}

/* A server with QEMU partitions among its frontends starts once each of them listens
 * (QEMU makes its sockets early, before it realizes any device, and then waits for the
 * server's answers), or has ended. True when it may start. */
bool sup_qemu_connect_waiting(struct sup *s, struct sup_server *v)
{
	bool ready = true;

	for (unsigned c = 0; c < v->nconns; c++) {
		struct sup_conn *cn = &v->conns[c];
		struct sup_partition *p = &s->parts[cn->part];
		int fd;

		if (!cn->qemu || cn->fd >= 0 || p->state == SUP_STOPPED)
			continue;
		fd = p->state == SUP_RUNNING ? sup_qemu_connect(p, cn->dev) : -EAGAIN;
		if (fd >= 0) {
			cn->fd = fd;
		} else if (fd != -EAGAIN) {
			/* not a socket, or out of descriptors: this device cannot be served */
			fprintf(stderr, "bulkhead run: partition '%s': device %u: cannot connect to "
				"QEMU's socket: %s\n", p->cfg->name, cn->dev, strerror(-fd));
			if (p->pid > 0)
				kill(p->pid, SIGTERM);
		} else {
			ready = false;
		}
	}
	return ready;
}

/* A QEMU partition starting again: new sockets for the new QEMU to listen on (the old
 * names are gone), and its servers wait for it as at the first start; they are replaced
 * once connected (sup_servers_tick). */
int sup_qemu_reconnect_later(struct sup *s, struct sup_partition *p)
{
	for (unsigned d = 0; d < p->cfg->ndevices; d++) {
		struct sup_server *v = &s->servers[p->cfg->devices[d].server.idx];
		int rc;

		if (p->vu_fd[d] >= 0) {
			close(p->vu_fd[d]);
			p->vu_fd[d] = -1;
		}
		rc = sup_qemu_sock_path(s, p, d);
		if (rc)
			return rc;
		for (unsigned c = 0; c < v->nconns; c++)
			if (v->conns[c].part == p->id && v->conns[c].dev == d &&
			    v->conns[c].fd >= 0) {
				close(v->conns[c].fd);
				v->conns[c].fd = -1;
			}
		v->waiting = true;
	}
	return 0;
}
