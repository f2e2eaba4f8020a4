/*
 * printf family: one formatting engine (`format`) writing through a callback, used by
 * printf (to the UART) and snprintf (to a buffer). Integers only; no floating point.
 */
#include <stdint.h>
#include <inmate/printf.h>
#include <inmate/string.h>
#include <inmate/uart.h>

#define FMT_LEFT   0x01   /* '-' */
#define FMT_ZERO   0x02   /* '0' */
#define FMT_PLUS   0x04   /* '+' */
#define FMT_SPACE  0x08   /* ' ' */
#define FMT_ALT    0x10   /* '#' */
#define FMT_UPPER  0x20

#define FMT_DIGITS_MAX 24  /* 2^64 in octal is 22 digits */

struct fmt_spec {
	unsigned flags;
	int width;
	int precision;       /* -1 when not given */
};

struct fmt_sink {
	void (*out)(char c, void *ctx);
	void *ctx;
	int count;
};

static void emit(struct fmt_sink *k, char c)
{
	k->out(c, k->ctx);
	k->count++;
}

static void emit_pad(struct fmt_sink *k, char c, int n)
{
	while (n-- > 0)
		emit(k, c);
}

static void emit_string(struct fmt_sink *k, const struct fmt_spec *sp, const char *s)
{
	int len;

	if (!s)
		s = "(null)";
	len = (int)strnlen(s, sp->precision >= 0 ? (size_t)sp->precision : SIZE_MAX);
	if (!(sp->flags & FMT_LEFT))
		emit_pad(k, ' ', sp->width - len);
	for (int i = 0; i < len; i++)
		emit(k, s[i]);
	if (sp->flags & FMT_LEFT)
		emit_pad(k, ' ', sp->width - len);
}

/* Lays out [sign][prefix][zeros][digits] inside the field width. */
static void emit_number(struct fmt_sink *k, const struct fmt_spec *sp, uint64_t v,
			int negative, unsigned base)
{
	const char *digits = (sp->flags & FMT_UPPER) ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[FMT_DIGITS_MAX];
	const char *prefix = "";
	char sign = 0;
	int n = 0, zeros, len;

	do {
		buf[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (sp->precision == 0 && n == 1 && buf[0] == '0')
		n = 0;   /* C: zero with precision 0 prints no digits */

	if (negative)
		sign = '-';
	else if (sp->flags & FMT_PLUS)
		sign = '+';
	else if (sp->flags & FMT_SPACE)
		sign = ' ';
	if (sp->flags & FMT_ALT) {
		if (base == 16)
			prefix = (sp->flags & FMT_UPPER) ? "0X" : "0x";
		else if (base == 8 && (n == 0 || buf[n - 1] != '0'))
			prefix = "0";
	}

	zeros = sp->precision > n ? sp->precision - n : 0;
	len = n + zeros + (sign ? 1 : 0) + (int)strlen(prefix);
	if ((sp->flags & FMT_ZERO) && !(sp->flags & FMT_LEFT) && sp->precision < 0 &&
	    sp->width > len) {
		zeros += sp->width - len;
		len = sp->width;
	}

	if (!(sp->flags & FMT_LEFT))
		emit_pad(k, ' ', sp->width - len);
	if (sign)
		emit(k, sign);
	while (*prefix)
		emit(k, *prefix++);
	emit_pad(k, '0', zeros);
	while (n)
		emit(k, buf[--n]);
	if (sp->flags & FMT_LEFT)
		emit_pad(k, ' ', sp->width - len);
}

static const char *parse_flags(const char *f, unsigned *flags)
{
	for (;; f++) {
		switch (*f) {
		case '-': *flags |= FMT_LEFT; break;
		case '0': *flags |= FMT_ZERO; break;
		case '+': *flags |= FMT_PLUS; break;
		case ' ': *flags |= FMT_SPACE; break;
		case '#': *flags |= FMT_ALT; break;
		default: return f;
		}
	}
}

static const char *parse_int(const char *f, int *out)
{
	int v = 0;

	while (*f >= '0' && *f <= '9')
		v = v * 10 + (*f++ - '0');
	*out = v;
	return f;
}

/* Length modifiers, as the size of the argument in bytes. */
static const char *parse_length(const char *f, int *size)
{
	*size = sizeof(int);
	switch (*f) {
	case 'h':
		f++;
		*size = sizeof(short);
		if (*f == 'h') {
			f++;
			*size = sizeof(char);
		}
		break;
	case 'l':
		f++;
		*size = sizeof(long);
		if (*f == 'l') {
			f++;
			*size = sizeof(long long);
		}
		break;
	case 'z': f++; *size = sizeof(size_t); break;
	case 't': f++; *size = sizeof(ptrdiff_t); break;
	case 'j': f++; *size = sizeof(intmax_t); break;
	}
	return f;
}

static int64_t fetch_signed(va_list *ap, int size)
{
	if (size == sizeof(int64_t))
		return va_arg(*ap, int64_t);
	int v = va_arg(*ap, int);   /* narrower types were promoted to int */
	return size == sizeof(char) ? (signed char)v : size == sizeof(short) ? (short)v : v;
}

static uint64_t fetch_unsigned(va_list *ap, int size)
{
	if (size == sizeof(uint64_t))
		return va_arg(*ap, uint64_t);
	unsigned v = va_arg(*ap, unsigned);
	return size == sizeof(char) ? (unsigned char)v : size == sizeof(short) ? (unsigned short)v : v;
}

static void convert(struct fmt_sink *k, struct fmt_spec *sp, char conv, int size, va_list *ap)
{
	int64_t s;
	char c;

	switch (conv) {
	case 'd':
	case 'i':
		s = fetch_signed(ap, size);
		emit_number(k, sp, s < 0 ? 0 - (uint64_t)s : (uint64_t)s, s < 0, 10);
		break;
	case 'u':
		emit_number(k, sp, fetch_unsigned(ap, size), 0, 10);
		break;
	case 'X':
		sp->flags |= FMT_UPPER;
		/* fall through */
	case 'x':
		emit_number(k, sp, fetch_unsigned(ap, size), 0, 16);
		break;
	case 'o':
		emit_number(k, sp, fetch_unsigned(ap, size), 0, 8);
		break;
	case 'p':
		sp->flags |= FMT_ALT;
		emit_number(k, sp, (uintptr_t)va_arg(*ap, void *), 0, 16);
		break;
	case 'c':
		c = (char)va_arg(*ap, int);
		if (!(sp->flags & FMT_LEFT))
			emit_pad(k, ' ', sp->width - 1);
		emit(k, c);
		if (sp->flags & FMT_LEFT)
			emit_pad(k, ' ', sp->width - 1);
		break;
	case 's':
		emit_string(k, sp, va_arg(*ap, const char *));
		break;
	case '%':
		emit(k, '%');
		break;
	default:
		/* Unknown conversion: show it rather than silently eat arguments. */
		emit(k, '%');
		emit(k, conv);
		break;
	}
}

int format(void (*out)(char c, void *ctx), void *ctx, const char *f, va_list ap_in)
{
	struct fmt_sink k = { out, ctx, 0 };
	va_list ap;

	va_copy(ap, ap_in);
	while (*f) {
		struct fmt_spec sp = { 0, 0, -1 };
		int size;

		if (*f != '%') {
			emit(&k, *f++);
			continue;
		}
		f = parse_flags(f + 1, &sp.flags);
		if (*f == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.flags |= FMT_LEFT;
				sp.width = -sp.width;
			}
			f++;
		} else {
			f = parse_int(f, &sp.width);
		}
		if (*f == '.') {
			if (*++f == '*') {
				sp.precision = va_arg(ap, int);
				f++;
			} else {
				f = parse_int(f, &sp.precision);
			}
		}
		f = parse_length(f, &size);
		if (!*f)
			break;
		convert(&k, &sp, *f++, size, &ap);
	}
	va_end(ap);
	return k.count;
}

static void out_uart(char c, void *ctx)
{
	(void)ctx;
	uart_putc(c);
}

int vprintf(const char *fmt, va_list ap)
{
	return format(out_uart, 0, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

struct buf_sink {
	char *buf;
	size_t size;
	size_t used;
};

static void out_buf(char c, void *ctx)
{
	struct buf_sink *b = ctx;

	if (b->used + 1 < b->size)
		b->buf[b->used] = c;
	b->used++;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct buf_sink b = { buf, size, 0 };
	int n = format(out_buf, &b, fmt, ap);

	if (size)
		buf[b.used < size ? b.used : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *s)
{
	uart_write(s, strlen(s));
	uart_putc('\n');
	return 0;
}

int putchar(int c)
{
	uart_putc((char)c);
	return (unsigned char)c;
}
