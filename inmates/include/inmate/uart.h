/*
 * Polled 8250 UART at BH_UART_PORT: the inmate's console. Bytes go out unchanged
 * ('\n' is not expanded to "\r\n"), so the monitor's log reads like a host program's.
 */
#ifndef INMATE_UART_H
#define INMATE_UART_H

#include <stddef.h>

void uart_init(void);
void uart_putc(char c);
void uart_write(const char *s, size_t n);
/* Returns the next received byte, or -1 when none is waiting. */
int uart_getc(void);
/* Raise IRQ 4 (BH_UART_IRQ) while received bytes wait (on != 0), or not. The program
 * routes the line and handles it: drain with uart_getc, then send the EOI. */
void uart_rx_irq(int on);

#endif
