/*
 * Memory and string helpers with the usual C library names and meanings (the compiler
 * may also emit calls to memcpy/memset/memmove/memcmp on its own).
 */
#ifndef INMATE_STRING_H
#define INMATE_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* As in C: base 0 accepts 0x (hex), 0 (octal) or decimal; *end (if given) points after
 * the digits used. Overflow saturates at ULONG_MAX / LONG_MIN / LONG_MAX. */
unsigned long strtoul(const char *s, char **end, int base);
long strtol(const char *s, char **end, int base);

#endif
