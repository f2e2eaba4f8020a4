/*
 * 8250 UART driver, polled: transmit waits for the holding register to empty, receive
 * never blocks. Interrupts from the UART stay disabled (IER = 0) unless a program asks
 * for the received-data interrupt (uart_rx_irq).
 */
#include <bulkhead/platform.h>
#include <inmate/io.h>
#include <inmate/uart.h>

#define UART_THR   0   /* transmit holding (write) */
#define UART_RBR   0   /* receive buffer (read) */
#define UART_DLL   0   /* divisor latch low, when LCR.DLAB */
#define UART_IER   1
#define UART_DLM   1   /* divisor latch high, when LCR.DLAB */
#define UART_FCR   2
#define UART_LCR   3
#define UART_MCR   4
#define UART_LSR   5

#define UART_IER_ERBFI   0x01   /* received-data-available interrupt */

#define UART_LCR_8N1     0x03
#define UART_LCR_DLAB    0x80
#define UART_FCR_ENABLE  0x07   /* enable FIFOs, clear both */
#define UART_MCR_DTR_RTS 0x03
#define UART_LSR_DR      0x01   /* data ready */
#define UART_LSR_THRE    0x20   /* transmit holding register empty */

#define UART_DIVISOR_115200  1

/* Bound on LSR polls per byte: a UART that never drains must not hang the inmate. */
#define UART_TX_SPIN_MAX     100000

static int uart_ready;

void uart_init(void)
{
	outb(BH_UART_PORT + UART_IER, 0);
	outb(BH_UART_PORT + UART_LCR, UART_LCR_DLAB);
	outb(BH_UART_PORT + UART_DLL, UART_DIVISOR_115200 & 0xff);
	outb(BH_UART_PORT + UART_DLM, UART_DIVISOR_115200 >> 8);
	outb(BH_UART_PORT + UART_LCR, UART_LCR_8N1);
	outb(BH_UART_PORT + UART_FCR, UART_FCR_ENABLE);
	outb(BH_UART_PORT + UART_MCR, UART_MCR_DTR_RTS);
	uart_ready = 1;
}

void uart_putc(char c)
{
	if (!uart_ready)
		uart_init();
	for (int spin = 0; spin < UART_TX_SPIN_MAX; spin++)
		if (inb(BH_UART_PORT + UART_LSR) & UART_LSR_THRE)
			break;
	outb(BH_UART_PORT + UART_THR, (unsigned char)c);
}

void uart_write(const char *s, size_t n)
{
	while (n--)
		uart_putc(*s++);
}

int uart_getc(void)
{
	if (!uart_ready)
		uart_init();
	if (!(inb(BH_UART_PORT + UART_LSR) & UART_LSR_DR))
		return -1;
	return inb(BH_UART_PORT + UART_RBR);
}

void uart_rx_irq(int on)
{
	if (!uart_ready)
		uart_init();
	outb(BH_UART_PORT + UART_IER, on ? UART_IER_ERBFI : 0);
}
