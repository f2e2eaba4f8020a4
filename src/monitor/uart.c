/*
 * 8250 UART: THR bytes go to the output fd at once and LSR always reports an empty
 * transmitter; received bytes (uart_input, from the I/O thread) wait in a ring that RBR
 * reads, with LSR.DR and the received-data interrupt. Both interrupts drive IRQ 4
 * through the in-kernel PIC/IOAPIC.
 */
#include <errno.h>
#include <unistd.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"

/* Register offsets from BH_UART_PORT (DLAB selects DLL/DLM at 0 and 1). */
#define UART_RBR_THR_DLL 0
#define UART_IER_DLM     1
#define UART_IIR_FCR     2
#define UART_LCR         3
#define UART_MCR         4
#define UART_LSR         5
#define UART_MSR         6
#define UART_SCR         7
#define UART_NR_REGS     8

#define UART_IER_ERBFI   0x01     /* received-data-available interrupt enable */
#define UART_IER_ETBEI   0x02     /* THR-empty interrupt enable */
#define UART_IER_MASK    0x0f
#define UART_IIR_NONE    0x01
#define UART_IIR_THRE    0x02
#define UART_IIR_RDA     0x04     /* received data available: above THRE in priority */
#define UART_IIR_FIFO    0xc0     /* FIFOs enabled */
#define UART_FCR_ENABLE  0x01
#define UART_LCR_DLAB    0x80
#define UART_MCR_MASK    0x1f
#define UART_LSR_DR      0x01     /* data ready */
#define UART_LSR_OE      0x02     /* overrun: received bytes were lost */
#define UART_LSR_THRE    0x20
#define UART_LSR_TEMT    0x40
#define UART_MSR_IDLE    0xb0     /* DCD, DSR, CTS asserted */

/* Called with the lock held. */
static void uart_update_irq(struct uart *u)
{
	int level = ((u->ier & UART_IER_ETBEI) && u->thre_pending) ||
		    ((u->ier & UART_IER_ERBFI) && u->rx_len);

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	mon_irq_line(u->mon, BH_UART_IRQ, level);
}

static void uart_transmit(struct uart *u, uint8_t byte)
{
	/* No buffering: the reader is the supervisor, which drains every console into its
	 * log and never blocks on its own stdout (it skips the echo instead), or a terminal
	 * when the monitor runs alone. So the write blocks only while a live reader is
	 * busy; a closed or failing output drops the byte. */
	for (;;) {
		ssize_t n = write(u->out_fd, &byte, 1);

		if (n == 1 || (n < 0 && errno != EINTR))
			break;
	}
	u->tx_bytes++;
	u->thre_pending = true;     /* the byte left at once: THR is empty again */
}

/* The oldest received byte, 0 when none (as RBR reads on hardware). */
static uint8_t uart_receive(struct uart *u)
{
	uint8_t byte;

	if (!u->rx_len)
		return 0;
	byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_SIZE;
	u->rx_len--;
	return byte;
}

static uint8_t uart_lsr(struct uart *u)
{
	uint8_t lsr = UART_LSR_THRE | UART_LSR_TEMT;

	if (u->rx_len)
		lsr |= UART_LSR_DR;
	if (u->overrun)
		lsr |= UART_LSR_OE;
	u->overrun = false;          /* reading LSR clears the error bits */
	return lsr;
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t fifo = (u->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;

	switch (reg) {
	case UART_RBR_THR_DLL:
		return dlab ? u->dll : uart_receive(u);
	case UART_IER_DLM:
		return dlab ? u->dlm : u->ier;
	case UART_IIR_FCR:
		/* Received data stays pending until RBR has been emptied. */
		if ((u->ier & UART_IER_ERBFI) && u->rx_len)
			return fifo | UART_IIR_RDA;
		if ((u->ier & UART_IER_ETBEI) && u->thre_pending) {
			u->thre_pending = false;    /* reading IIR acknowledges THRE */
			return fifo | UART_IIR_THRE;
		}
		return fifo | UART_IIR_NONE;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return uart_lsr(u);
	case UART_MSR:
		return UART_MSR_IDLE;
	default:
		return u->scr;
	}
}

static void uart_write(struct uart *u, unsigned reg, uint8_t val)
{
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR_DLL:
		if (dlab)
			u->dll = val;
		else
			uart_transmit(u, val);
		break;
	case UART_IER_DLM:
		if (dlab) {
			u->dlm = val;
		} else {
			/* Enabling ETBEI with an empty THR raises the interrupt at once. */
			if ((val & UART_IER_ETBEI) && !(u->ier & UART_IER_ETBEI))
				u->thre_pending = true;
			u->ier = val & UART_IER_MASK;
		}
		break;
	case UART_IIR_FCR:
		u->fcr = val;
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & UART_MCR_MASK;
		break;
	case UART_SCR:
		u->scr = val;
		break;
	default:
		break;      /* LSR and MSR are read-only: writes are ignored, as on hardware */
	}
}

static int uart_io(void *opaque, uint64_t off, uint64_t *val, unsigned size, bool write)
{
	struct uart *u = opaque;

	if (size != 1)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	if (write)
		uart_write(u, off, *val);
	else
		*val = uart_read(u, off);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

size_t uart_input(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t taken = 0;

	pthread_mutex_lock(&u->lock);
	for (; taken < n && u->rx_len < UART_RX_SIZE; taken++)
		u->rx[(u->rx_head + u->rx_len++) % UART_RX_SIZE] = buf[taken];
	u->rx_bytes += taken;
	if (taken < n) {
		u->rx_dropped += n - taken;
		u->overrun = true;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

int uart_init(struct uart *u, struct mon *m, struct io_space *io, int out_fd)
{
	*u = (struct uart){ .mon = m, .out_fd = out_fd, .irq_level = -1 };
	pthread_mutex_init(&u->lock, NULL);
	return io_register(&io->port, BH_UART_PORT, UART_NR_REGS, "uart", uart_io, u);
}
