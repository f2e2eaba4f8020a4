/*
 * A pipe the supervisor reads line by line: monitor consoles, virtio consoles (through
 * the console I/O server) and JSON event lines from monitors and I/O servers. Bytes
 * can also be copied raw to a log as they arrive. Long lines are cut, never lost.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "supervisor/sup.h"

void sup_stream_init(struct sup_stream *st, int fd, int log_fd, sup_line_fn line, void *ctx)
{
	*st = (struct sup_stream){ .fd = fd, .log_fd = log_fd, .line = line, .ctx = ctx };
}

void sup_write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;          /* a full disk must not stop the system */
		buf += w;
		n -= (size_t)w;
	}
}

static void feed(struct sup_stream *st, const char *buf, size_t n)
{
	if (st->log_fd >= 0)
		sup_write_all(st->log_fd, buf, n);
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || st->len == sizeof(st->buf) - 1) {
			st->buf[st->len] = '\0';
			st->line(st->ctx, st->buf, st->len);
			st->len = 0;
			if (buf[i] == '\n')
				continue;
		}
		if (buf[i] != '\r')
			st->buf[st->len++] = buf[i];
	}
}

int sup_stream_read(struct sup_stream *st)
{
	char buf[4096];
	ssize_t n;

	if (st->fd < 0)
		return 0;
	do
		n = read(st->fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		st->eof = true;
	feed(st, buf, (size_t)n);
	return (int)n;
}

void sup_stream_drain(struct sup_stream *st)
{
	while (sup_stream_read(st) > 0)
		;
	if (st->len) {
		st->buf[st->len] = '\0';
		st->line(st->ctx, st->buf, st->len);
		st->len = 0;
	}
}

int sup_stream_watch(struct sup *s, struct sup_stream *st, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, st->fd, &ev) ? -errno : 0;
}

void sup_stream_close(struct sup *s, struct sup_stream *st)
{
	if (st->fd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, st->fd, NULL);
	close(st->fd);
	st->fd = -1;
}
