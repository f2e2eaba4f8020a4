/*
 * wdog: exercises the monitor's watchdog (and, in echo-uart mode, the UART's receiver).
 *   wdog [kicks=N|forever] [period=MS] [pause=MS]
 *       kick the watchdog N times (default forever), MS ms apart (default 10), then stop
 *       kicking: spin forever, saying so every 500 ms; with pause=MS stay silent that
 *       long instead and start over.
 *   wdog echo-uart
 *       echo each line received on the UART, read from its received-data interrupt;
 *       the line "exit" ends the program with status 0.
 */
#include <inmate/inmate.h>

#define WDOG_STATUS_USAGE  2
#define WDOG_ALIVE_MS      500       /* while not kicking, one line this often */
#define WDOG_LINE_MAX      128
#define WDOG_RING          256       /* received bytes between interrupt and main loop */

static int usage(const char *bad)
{
	printf("wdog: bad argument '%s'\n"
	       "usage: wdog [kicks=N|forever] [period=MS] [pause=MS]\n"
	       "       wdog echo-uart\n", bad);
	return WDOG_STATUS_USAGE;
}

static uint64_t ms_now(void)
{
	return tsc_to_us(tsc_now()) / 1000;
}

/* "key=NUMBER": 1 and *out set when arg is that key, 0 when another key, -1 when bad. */
static int arg_num(const char *arg, const char *key, unsigned long *out)
{
	size_t n = strlen(key);
	char *end;

	if (strncmp(arg, key, n) || arg[n] != '=')
		return 0;
	*out = strtoul(arg + n + 1, &end, 10);
	return end == arg + n + 1 || *end ? -1 : 1;
}

/* No kick for `ms` ms (forever when 0), with a line every WDOG_ALIVE_MS. */
static void silence(unsigned long ms)
{
	uint64_t start = ms_now(), next = start + WDOG_ALIVE_MS;

	for (;;) {
		uint64_t now = ms_now();

		if (ms && now - start >= ms)
			return;
		if (now >= next) {
			printf("wdog: alive, not kicking for %lu ms\n", (unsigned long)(now - start));
			next += WDOG_ALIVE_MS;
		}
		cpu_relax();
	}
}

static int kicker(int argc, char **argv)
{
	unsigned long kicks = 0, period = 10, pause = 0;
	int forever = 1;

	for (int i = 1; i < argc; i++) {
		int r;

		if (!strcmp(argv[i], "kicks=forever"))
			continue;
		r = arg_num(argv[i], "kicks", &kicks);
		if (r > 0) {
			forever = 0;
			continue;
		}
		if (!r)
			r = arg_num(argv[i], "period", &period);
		if (!r)
			r = arg_num(argv[i], "pause", &pause);
		if (r <= 0)
			return usage(argv[i]);
	}
	if (forever) {
		printf("wdog: kicking every %lu ms, forever\n", period);
		for (;;) {
			bh_watchdog_kick();
			mdelay(period);
		}
	}
	for (unsigned long round = 1;; round++) {
		printf("wdog: round %lu: kicking %lu times every %lu ms\n", round, kicks, period);
		for (unsigned long k = 0; k < kicks; k++) {
			bh_watchdog_kick();
			mdelay(period);
		}
		if (!pause) {
			printf("wdog: stopped kicking after %lu kicks; spinning forever\n", kicks);
			silence(0);
		}
		printf("wdog: stopped kicking; silent for %lu ms\n", pause);
		silence(pause);
	}
}

static volatile char ring[WDOG_RING];
static volatile unsigned ring_head, ring_tail;   /* written by the handler / main loop */
static volatile uint64_t uart_irqs;

/* Moves received bytes into the ring while it has room. Bytes left in the UART keep
 * its interrupt line up, so no new edge comes for them: the main loop calls this
 * again once it has emptied the ring. With interrupts off, or from the handler. */
static void uart_drain(void)
{
	int c;

	while (ring_head - ring_tail < WDOG_RING && (c = uart_getc()) >= 0)
		ring[ring_head++ % WDOG_RING] = (char)c;
}

/* IRQ 4: the UART has bytes (the line drops once RBR is empty). */
static void uart_irq(struct irq_frame *f)
{
	(void)f;
	uart_irqs++;
	uart_drain();
	pic_eoi(BH_UART_IRQ);
}

static int echo_uart(void)
{
	char line[WDOG_LINE_MAX];
	size_t len = 0;

	pic_init();
	irq_register(PIC_VECTOR(BH_UART_IRQ), uart_irq);
	pic_unmask(BH_UART_IRQ);
	uart_rx_irq(1);
	printf("wdog: echo-uart: waiting for input\n");
	for (;;) {
		char c;

		irq_disable();
		if (ring_tail == ring_head)
			uart_drain();            /* what did not fit last time */
		while (ring_tail == ring_head) {
			cpu_sti_hlt();           /* woken by the UART's interrupt */
			irq_disable();
		}
		c = ring[ring_tail++ % WDOG_RING];
		irq_enable();
		if (c == '\r')
			continue;
		if (c != '\n') {
			if (len < sizeof(line) - 1)
				line[len++] = c;
			continue;
		}
		line[len] = '\0';
		printf("wdog: echo '%s' (%lu interrupts)\n", line, (unsigned long)uart_irqs);
		if (!strcmp(line, "exit"))
			return 0;
		len = 0;
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "echo-uart"))
		return echo_uart();
	return kicker(argc, argv);
}
