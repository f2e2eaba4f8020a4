/*
 * The partition console: an 8250-compatible UART at BH_UART_PORT whose transmitter
 * writes straight to the monitor's stdout, and whose receiver takes the bytes the
 * supervisor sends (console input, through the control socket).
 */
#ifndef BH_MON_UART_H
#define BH_MON_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_space;
struct mon;

/* Received bytes waiting for the guest: a backlog larger than a 16550's 16-byte FIFO,
 * so that a line typed at once arrives whole even when the guest polls slowly. */
#define UART_RX_SIZE 4096

struct uart {
	struct mon *mon;          /* for the interrupt line */
	pthread_mutex_t lock;     /* the vCPU thread's accesses against the I/O thread's input */
	int      out_fd;
	uint8_t  ier, lcr, mcr, scr, dll, dlm, fcr;
	bool     thre_pending;    /* THR-empty interrupt raised and not yet acknowledged */
	int      irq_level;       /* what the line was last set to, -1 before the first set */
	uint64_t tx_bytes;
	uint8_t  rx[UART_RX_SIZE];
	unsigned rx_head, rx_len;     /* ring of received bytes, oldest at rx_head */
	bool     overrun;             /* bytes were dropped since LSR was last read */
	uint64_t rx_bytes, rx_dropped;
};

int uart_init(struct uart *u, struct mon *m, struct io_space *io, int out_fd);
/* Any thread: bytes for the receiver. Returns how many were taken; the rest did not
 * fit and are dropped (the guest sees LSR.OE). */
size_t uart_input(struct uart *u, const uint8_t *buf, size_t n);

#endif
