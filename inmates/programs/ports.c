/*
 * ports: drives the ports API from the command line, for the system tests. Commands
 * (several may be chained with `then`; each runs, the status is the first non-zero):
 *   send PORT N               N numbered messages, retrying while the queue is full
 *   recv PORT N [delay=MS]    N messages, checked for order and content
 *   sample-write PORT N MS    samples 1..N, one every MS ms
 *   sample-read PORT LAST     valid samples up to LAST while the writer runs, then
 *                             waits until LAST must be stale and checks it reads invalid
 *   peek PORT                 one sampling read, reported
 *   corrupt PORT tail|length  as a hostile end: scribble over the queue's tail
 *                             (destination) or write a slot with a bad length (source)
 * Status: the number of failed checks (a port error counts as one and ends the
 * command), 100 for a usage error, 101 when a port cannot be opened.
 */
#include <inmate/ports.h>
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include <inmate/string.h>
#include <inmate/tsc.h>

#define WAIT_MS         10000   /* longest wait for a peer */
#define STATUS_USAGE    100
#define STATUS_OPEN     101
#define MSG_MAX         4096    /* the largest message these tests use */

static uint8_t msg[MSG_MAX], got[MSG_MAX];

static const char *type_name(int type)
{
	return type == PORT_QUEUING ? "queuing" : "sampling";
}

static int open_port(struct port *p, const char *name, int type, int role)
{
	int err = port_open(p, name, type, role);

	if (err) {
		printf("ports: cannot open '%s' as a %s %s: %s\n", name, type_name(type),
		       role == PORT_SOURCE ? "source" : "destination", port_strerror(err));
		return STATUS_OPEN;
	}
	if (p->max_message < 8 || p->max_message > MSG_MAX) {
		printf("ports: '%s': max_message %u; this program needs 8 to %u\n", name,
		       p->max_message, MSG_MAX);
		return STATUS_USAGE;
	}
	return 0;
}

/* Message i: i itself, then bytes counting up from i; its length varies with i. */
static uint32_t fill(uint8_t *buf, uint64_t i, uint32_t max_message)
{
	uint32_t len = 8 + (uint32_t)(i % (max_message - 7));

	memcpy(buf, &i, 8);
	for (uint32_t k = 8; k < len; k++)
		buf[k] = (uint8_t)(i + k);
	return len;
}

static uint64_t number(const uint8_t *buf)
{
	uint64_t i;

	memcpy(&i, buf, 8);
	return i;
}

static int intact(const uint8_t *buf, uint32_t len, uint32_t max_message)
{
	uint64_t i = number(buf);

	if (len < 8 || len != 8 + i % (max_message - 7))
		return 0;
	for (uint32_t k = 8; k < len; k++)
		if (buf[k] != (uint8_t)(i + k))
			return 0;
	return 1;
}

static int waited_too_long(uint64_t since, uint64_t ms)
{
	return tsc_to_us(tsc_now() - since) > ms * 1000;
}

static int cmd_send(const char *name, uint64_t n)
{
	struct port p;
	uint64_t full = 0, since;
	int err = open_port(&p, name, PORT_QUEUING, PORT_SOURCE);

	if (err)
		return err;
	for (uint64_t i = 1; i <= n; i++) {
		uint32_t len = fill(msg, i, p.max_message);

		since = tsc_now();
		while ((err = queuing_send(&p, msg, len)) == -PORT_EFULL) {
			full++;
			if (waited_too_long(since, WAIT_MS))
				break;
			cpu_relax();
		}
		if (err) {
			printf("ports: send to '%s' failed at message %lu of %lu: %s\n", name, i, n,
			       port_strerror(err));
			return 1;
		}
	}
	printf("ports: sent %lu messages to '%s' (queue full %lu times)\n", n, name, full);
	return 0;
}

static int cmd_recv(const char *name, uint64_t n, uint64_t delay_ms)
{
	struct port p;
	uint64_t empty = 0, errors = 0, since;
	uint32_t len;
	int err = open_port(&p, name, PORT_QUEUING, PORT_DESTINATION);

	if (err)
		return err;
	mdelay(delay_ms);
	for (uint64_t i = 1; i <= n; i++) {
		since = tsc_now();
		while ((err = queuing_receive(&p, got, sizeof(got), &len)) == -PORT_EEMPTY) {
			empty++;
			if (waited_too_long(since, WAIT_MS))
				break;
			cpu_relax();
		}
		if (err) {
			printf("ports: receive from '%s' failed at message %lu of %lu: %s\n", name, i,
			       n, port_strerror(err));
			errors++;
			break;
		}
		if (number(got) != i || !intact(got, len, p.max_message)) {
			if (errors++ < 5)
				printf("ports: message %lu of '%s' is wrong: number %lu, %u bytes\n",
				       i, name, number(got), len);
		}
	}
	printf("ports: received %lu messages from '%s', %lu errors (queue empty %lu times)\n",
	       n, name, errors, empty);
	return errors > 99 ? 99 : (int)errors;
}

static int cmd_sample_write(const char *name, uint64_t n, uint64_t period_ms)
{
	struct port p;
	int err = open_port(&p, name, PORT_SAMPLING, PORT_SOURCE);

	if (err)
		return err;
	for (uint64_t i = 1; i <= n; i++) {
		err = sampling_write(&p, msg, fill(msg, i, p.max_message));
		if (err) {
			printf("ports: write to '%s' failed: %s\n", name, port_strerror(err));
			return 1;
		}
		if (i < n)
			mdelay(period_ms);
	}
	printf("ports: wrote %lu samples to '%s'\n", n, name);
	return 0;
}

/* One read that succeeded or failed for good: EBUSY is retried. */
static int read_sample(struct port *p, struct port_sample *s)
{
	int err;

	while ((err = sampling_read(p, got, sizeof(got), s)) == -PORT_EBUSY)
		cpu_relax();
	return err;
}

static int cmd_sample_read(const char *name, uint64_t last)
{
	struct port p;
	struct port_sample s;
	uint64_t since, prev = 0, reads = 0, stale = 0, errors = 0, seen_last;
	int err = open_port(&p, name, PORT_SAMPLING, PORT_DESTINATION);

	if (err)
		return err;
	since = tsc_now();
	while ((err = read_sample(&p, &s)) == -PORT_EEMPTY && !waited_too_long(since, WAIT_MS))
		cpu_relax();
	/* While the writer runs: every read valid, never older than the one before. */
	while (!err && prev != last && !waited_too_long(since, 2 * WAIT_MS)) {
		uint64_t v = number(got);

		reads++;
		if (!s.valid && stale++ < 5)
			printf("ports: '%s': sample %lu stale (age %lu us) while the writer runs\n",
			       name, v, s.age_us);
		if (v < prev || v > last || !intact(got, s.length, p.max_message)) {
			if (errors++ < 5)
				printf("ports: '%s': sample %lu after %lu, %u bytes: wrong\n", name, v,
				       prev, s.length);
		}
		prev = v;
		if (prev != last)
			err = read_sample(&p, &s);
	}
	if (err || prev != last) {
		printf("ports: '%s': %s before sample %lu\n", name,
		       err ? port_strerror(err) : "timed out", last);
		return (int)errors + 1;
	}
	printf("ports: '%s': latest sample %lu valid while the writer ran (%lu reads, %lu stale)\n",
	       name, last, reads, stale);
	/* The writer has stopped: `last` must turn invalid once older than refresh. */
	seen_last = tsc_now();
	while (!(err = read_sample(&p, &s)) && s.valid &&
	       !waited_too_long(seen_last, p.refresh_ns / 1000000 + WAIT_MS))
		cpu_relax();
	if (err || s.valid || number(got) != last || s.age_us < p.refresh_ns / 1000) {
		printf("ports: '%s': sample %lu still %s after the writer stopped (age %lu us, "
		       "refresh %lu us)%s%s\n", name, number(got), s.valid ? "valid" : "read",
		       s.age_us, p.refresh_ns / 1000, err ? ": " : "", err ? port_strerror(err) : "");
		return (int)(errors + stale) + 1;
	}
	printf("ports: '%s': sample %lu invalid at age %lu us (refresh %lu us)\n", name, last,
	       s.age_us, p.refresh_ns / 1000);
	return errors + stale > 99 ? 99 : (int)(errors + stale);
}

static int cmd_peek(const char *name)
{
	struct port p;
	struct port_sample s;
	int err = open_port(&p, name, PORT_SAMPLING, PORT_DESTINATION);

	if (err)
		return err;
	err = read_sample(&p, &s);
	if (err == -PORT_EEMPTY) {
		printf("ports: '%s' is empty\n", name);
		return 0;
	}
	if (err) {
		printf("ports: read from '%s' failed: %s\n", name, port_strerror(err));
		return 1;
	}
	printf("ports: '%s': sample %lu, %u bytes, %s (age %lu us)\n", name, number(got),
	       s.length, s.valid ? "valid" : "invalid", s.age_us);
	return 0;
}

/* A hostile end, going behind the API's back with what its mapping allows. */
static int cmd_corrupt(const char *name, const char *what)
{
	int role = !strcmp(what, "length") ? PORT_SOURCE : PORT_DESTINATION;
	struct port p;
	uint64_t since = tsc_now();
	int err = open_port(&p, name, PORT_QUEUING, role);

	if (err)
		return err;
	if (!strcmp(what, "tail")) {
		while (p.h->queuing.tail == p.h->queuing.head && !waited_too_long(since, WAIT_MS))
			cpu_relax();
		p.h->queuing.tail = p.h->queuing.head + p.depth + 1000;
	} else if (!strcmp(what, "length")) {
		volatile uint8_t *slot = p.area + bh_queue_slot(p.own, p.depth, p.max_message);

		*(volatile uint64_t *)slot = (uint64_t)p.max_message + 1;
		p.h->queuing.tail = p.own + 1;
	} else {
		printf("ports: corrupt what? tail or length, not '%s'\n", what);
		return STATUS_USAGE;
	}
	printf("ports: corrupted the %s of '%s'\n", what, name);
	return 0;
}

static int usage(void)
{
	printf("usage: ports send PORT N | recv PORT N [delay=MS] | sample-write PORT N MS |\n"
	       "             sample-read PORT LAST | peek PORT | corrupt PORT tail|length\n"
	       "       (commands may be chained with 'then')\n");
	return STATUS_USAGE;
}

static int need(int argc, int n)
{
	return argc >= n;
}

/* One command of argc words (argv[0] the command). */
static int run(int argc, char **argv)
{
	const char *c = argc ? argv[0] : "";

	if (!strcmp(c, "send") && need(argc, 3))
		return cmd_send(argv[1], strtoul(argv[2], 0, 0));
	if (!strcmp(c, "recv") && need(argc, 3))
		return cmd_recv(argv[1], strtoul(argv[2], 0, 0),
				argc > 3 && !strncmp(argv[3], "delay=", 6) ?
				strtoul(argv[3] + 6, 0, 0) : 0);
	if (!strcmp(c, "sample-write") && need(argc, 4))
		return cmd_sample_write(argv[1], strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0));
	if (!strcmp(c, "sample-read") && need(argc, 3))
		return cmd_sample_read(argv[1], strtoul(argv[2], 0, 0));
	if (!strcmp(c, "peek") && need(argc, 2))
		return cmd_peek(argv[1]);
	if (!strcmp(c, "corrupt") && need(argc, 3))
		return cmd_corrupt(argv[1], argv[2]);
	return usage();
}

int main(int argc, char **argv)
{
	int status = 0, start = 1, st;

	if (argc < 2)
		return usage();
	for (int i = 1; i <= argc; i++) {
		if (i < argc && strcmp(argv[i], "then"))
			continue;
		st = run(i - start, argv + start);
		if (!status)
			status = st;
		start = i + 1;
	}
	return status;
}
