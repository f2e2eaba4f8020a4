/*
 * The partition console: an 8250-compatible UART at BH_UART_PORT whose transmitter
 * writes straight to the monitor's stdout.
 */
#ifndef BH_MON_UART_H
#define BH_MON_UART_H

#include <stdbool.h>
#include <stdint.h>

struct io_space;
struct mon;

struct uart {
	struct mon *mon;          /* for the interrupt line */
	int      out_fd;
	uint8_t  ier, lcr, mcr, scr, dll, dlm, fcr;
	bool     thre_pending;    /* THR-empty interrupt raised and not yet acknowledged */
	int      irq_level;       /* what the line was last set to, -1 before the first set */
	uint64_t tx_bytes;
};

int uart_init(struct uart *u, struct mon *m, struct io_space *io, int out_fd);

#endif
