/*
 * bh-exit PORT STATUS: the guest image's way to end a partition on bulkhead's own
 * monitor with its command's status. It writes STATUS as one 32-bit OUT to PORT, the
 * system-control device's exit register (docs/monitor.md), which stops the partition
 * there; busybox has no tool for a 32-bit port write. On a platform without that
 * device the write does nothing and bh-exit returns 0, so /init powers off as usual.
 * Freestanding (no libc), built by guest/build.py with the host's compiler.
 */
#define SYS_EXIT   60
#define SYS_IOPERM 173

static long syscall3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

static void leave(int status)
{
	syscall3(SYS_EXIT, status, 0, 0);
	for (;;)
		;
}

/* A decimal or 0x-prefixed hexadecimal number below 2^32; -1 when it is not one. */
static long long number(const char *s)
{
	unsigned base = 10;
	long long v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		v = v * base + d;
		if (v > 0xffffffffLL)
			return -1;
	}
	return v;
}

void bh_exit_main(long *sp);

void bh_exit_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	long long port, status;

	if (argc != 3)
		leave(2);
	port = number(argv[1]);
	status = number(argv[2]);
	if (port < 0 || port > 0xfffc || (port & 3) || status < 0)
		leave(2);
	if (syscall3(SYS_IOPERM, port, 4, 1) != 0)
		leave(1);
	__asm__ volatile("outl %0, %w1" : : "a"((unsigned)status), "Nd"((unsigned short)port));
	leave(0);
}

/* The kernel starts us with argc at the stack pointer; give C an aligned stack. */
__asm__(".globl _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call bh_exit_main\n"
	"	hlt\n");
