/*
 * Formatted output to the UART console and into buffers. Conversions: %d %i %u %x %X
 * %o %c %s %p %%, length modifiers hh h l ll z t j, flags '-' '0' '+' ' ' '#', field
 * width and precision (numbers or '*'). No floating point.
 */
#ifndef INMATE_PRINTF_H
#define INMATE_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

#define INMATE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

int printf(const char *fmt, ...) INMATE_PRINTF(1, 2);
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) INMATE_PRINTF(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int puts(const char *s);      /* writes s and a newline */
int putchar(int c);

/* The formatting engine: calls out(c, ctx) once per output character and returns the
 * number of characters produced. */
int format(void (*out)(char c, void *ctx), void *ctx, const char *fmt, va_list ap);

#endif
