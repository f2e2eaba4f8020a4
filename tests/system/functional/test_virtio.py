"""The monitor's virtio-pci devices and vhost-user frontend: the PCI configuration space
a driver sees (capabilities, BAR sizing and moving, MSI-X, INTx), block I/O through
qemu-storage-daemon in shared and window isolation, the window mode's guarantees
against a hostile guest and a faulty server (a fake vhost-user backend in this file),
the I/O servers of `bulkhead ioserver`, and bad --device arguments. The guest is built
here (VIRTIO_GUEST) with the host gcc; blkcheck runs too when build/inmates has it."""
import array
import json
import mmap
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

QSD = shutil.which("qemu-storage-daemon") or "/usr/bin/qemu-storage-daemon"
DISK_SIZE = 16 << 20
SLOT = 3


class Result:
    def __init__(self, proc, out, err, events):
        self.rc, self.out, self.err, self.events = proc.returncode, out, err, events

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]


def monitor(bulkhead, image, *args, memory="32M", cmdline=None, pass_fds=(), timeout=90):
    """One partition, events on a pipe of their own."""
    r, w = os.pipe()
    argv = [bulkhead, "monitor", "--name", "p", "--image", str(image), "--memory", memory,
            "--event-fd", str(w), *args]
    if cmdline is not None:
        argv += ["--cmdline", cmdline]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(w, *pass_fds))
    finally:
        os.close(w)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        os.close(r)
        raise AssertionError(f"monitor timed out; output:\n{out.decode(errors='replace')}")
    with os.fdopen(r, "rb") as f:
        events = [json.loads(line) for line in f.read().decode().splitlines()]
    return Result(proc, out.decode(errors="replace"), err.decode(errors="replace"), events)


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    """VIRTIO_GUEST, compiled once."""
    d = tmp_path_factory.mktemp("vguest")
    src, lds, elf = d / "vguest.c", d / "guest.lds", d / "vguest.elf"
    src.write_text(VIRTIO_GUEST)
    lds.write_text("ENTRY(_start)\nSECTIONS { . = 0x100000;\n .text : { *(.text.entry) "
                   "*(.text*) }\n .rodata : { *(.rodata*) }\n .data : { *(.data*) }\n"
                   " .bss : { *(.bss*) *(COMMON) } }\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-ffreestanding", "-fno-pic",
                    "-no-pie", "-mno-red-zone", "-mgeneral-regs-only",
                    "-fno-stack-protector", "-nostdlib", "-static",
                    "-Wl,--no-warn-rwx-segments", "-Wl,-T," + str(lds),
                    "-I", os.path.join(root, "include"), "-o", str(elf), str(src)],
                   check=True)
    return elf


@pytest.fixture
def sockdir():
    """A short directory for unix sockets (their paths are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix="bhv")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait_for(path, proc, what, seconds=10):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate()[0] if proc.poll() is not None else b""
            raise AssertionError(f"{what} did not create {path}: {out!r}")
        time.sleep(0.02)


class Daemon:
    """A server process listening on a unix socket, killed at the end."""
    def __init__(self, argv, sock, what):
        self.sock = sock
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(sock, self.proc, what)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def qsd(sockdir):
    """qemu-storage-daemon exporting a 16 MiB image as vhost-user-blk."""
    if not os.path.exists(QSD):
        pytest.skip("qemu-storage-daemon is not installed")
    img = os.path.join(sockdir, "disk.img")
    with open(img, "wb") as f:
        f.truncate(DISK_SIZE)
    sock = os.path.join(sockdir, "qsd.sock")
    d = Daemon([QSD, "--blockdev", f"driver=file,node-name=d,filename={img}",
                "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
                f"addr.path={sock},writable=on"], sock, "qemu-storage-daemon")
    d.img = img
    yield d
    d.stop()


def dev(kind, where, isolation=None, slot=SLOT):
    arg = f"{kind},slot={slot},{where}"
    return ["--device", arg + (f",isolation={isolation}" if isolation else "")]


def assert_ok(r):
    assert r.rc == 0, f"rc {r.rc}\n{r.out}\n{r.err}"
    assert r.events[-1] == {"event": "exit", "partition": "p", "status": 0}, r.out
    assert "FAIL" not in r.out, r.out


def written_pattern(it, n=4096):
    return bytes((i * 7 + it * 13 + 1) & 0xff for i in range(n))


# --- a vhost-user backend of our own, faults on demand --------------------------------

VU_HDR = struct.Struct("<III")
VU_REPLY, VU_NEED_REPLY = 1 << 2, 1 << 3
VU_GETS = {1, 11, 15, 17, 24}          # requests that have a reply of their own


class FakeServer(threading.Thread):
    """A minimal vhost-user backend for virtio-rng (fills what the guest offers) or
    virtio-console (collects what the guest sends), trusting nothing but checking
    little: it is the test's instrument. Records the memory table it was given.
    fault: None, "bad-id" (used id never posted), "long-len" (len beyond the writable
    bytes), "scribble" (writes 0xAA over all its memory before completing)."""

    def __init__(self, sock, device="rng", fault=None):
        super().__init__(daemon=True)
        self.sock, self.device, self.fault = sock, device, fault
        self.features = (1 << 32) | (1 << 30)
        self.regions = []                   # dicts: guest, size, user, offset, mm, name
        self.vqs = {}
        self.console = bytearray()
        self.completed = 0
        self.messages = []
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        self.worker = threading.Thread(target=self.serve_rings, daemon=True)
        self.done = False

    # the control channel
    def recv_msg(self):
        data, anc, _, _ = self.sock.recvmsg(12, socket.CMSG_SPACE(8 * 4))
        if not data:
            return None
        while len(data) < 12:
            more = self.sock.recv(12 - len(data))
            if not more:
                return None
            data += more
        fds = []
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", cdata[:len(cdata) - len(cdata) % 4])
        req, flags, size = VU_HDR.unpack(data)
        payload = b""
        while len(payload) < size:
            more = self.sock.recv(size - len(payload))
            if not more:
                return None
            payload += more
        return req, flags, payload, fds

    def reply(self, req, payload):
        self.sock.sendall(VU_HDR.pack(req, 1 | VU_REPLY, len(payload)) + payload)

    def run(self):
        self.worker.start()
        try:
            while True:
                msg = self.recv_msg()
                if msg is None:
                    break
                self.handle(*msg)
        except OSError:
            pass
        finally:
            self.done = True
            os.write(self.wake_w, b"x")

    def handle(self, req, flags, payload, fds):
        self.messages.append(req)
        if req == 1:                                        # GET_FEATURES
            self.reply(req, struct.pack("<Q", self.features))
        elif req == 15:                                     # GET_PROTOCOL_FEATURES
            self.reply(req, struct.pack("<Q", 1 << 3))      # REPLY_ACK
        elif req == 5:                                      # SET_MEM_TABLE
            n = struct.unpack_from("<I", payload)[0]
            with self.lock:
                self.regions = []
                for i in range(n):
                    g, size, user, off = struct.unpack_from("<QQQQ", payload, 8 + 32 * i)
                    mm = mmap.mmap(fds[i], size + off, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)
                    self.regions.append(dict(guest=g, size=size, user=user, offset=off,
                                             mm=mm, name=os.readlink(f"/proc/self/fd/{fds[i]}"),
                                             file_size=os.fstat(fds[i]).st_size))
        elif req in (8, 10):                                # SET_VRING_NUM / _BASE
            i, num = struct.unpack("<II", payload)
            self.vqs.setdefault(i, {})["num" if req == 8 else "last"] = num
        elif req == 9:                                      # SET_VRING_ADDR
            i, _, desc, used, avail, _ = struct.unpack("<IIQQQQ", payload)
            self.vqs.setdefault(i, {}).update(desc=desc, used=used, avail=avail, used_idx=0)
        elif req in (12, 13):                               # SET_VRING_KICK / _CALL
            i = struct.unpack("<Q", payload)[0] & 0xff
            self.vqs.setdefault(i, {})["kick" if req == 12 else "call"] = fds[0]
        elif req == 18:                                     # SET_VRING_ENABLE
            i, on = struct.unpack("<II", payload)
            self.vqs.setdefault(i, {})["on"] = bool(on)
            os.write(self.wake_w, b"x")
        elif req == 11:                                     # GET_VRING_BASE
            i = struct.unpack("<II", payload)[0]
            with self.lock:
                q = self.vqs.pop(i, {})
            self.reply(req, struct.pack("<II", i, q.get("last", 0)))
        if req not in VU_GETS and flags & VU_NEED_REPLY:
            self.reply(req, struct.pack("<Q", 0))

    # the data path
    def mem(self, addr, length, by="guest"):
        for r in self.regions:
            if r[by] <= addr and addr + length <= r[by] + r["size"]:
                return r["mm"], r["offset"] + addr - r[by]
        raise ValueError(f"address {addr:#x} outside the memory table")

    def rd(self, addr, fmt, by="guest"):
        mm, o = self.mem(addr, struct.calcsize(fmt), by)
        return struct.unpack_from(fmt, mm, o)

    def wr(self, addr, fmt, *vals, by="guest"):
        mm, o = self.mem(addr, struct.calcsize(fmt), by)
        struct.pack_into(fmt, mm, o, *vals)

    def wr16(self, addr, val, by="guest"):
        """One 16-bit store (struct.pack_into clears the bytes first: a reader could
        see a transient 0, which the monitor rightly takes for a faulty server)."""
        mm, o = self.mem(addr, 2, by)
        with memoryview(mm) as m:
            m[o:o + 2].cast("H")[0] = val

    def serve_rings(self):
        while not self.done:
            with self.lock:
                qs = [q for q in self.vqs.values() if q.get("on") and "call" in q]
            fds = [q["kick"] for q in qs if "kick" in q]
            ready = select.select(fds + [self.wake_r], [], [], 0.05)[0]
            if self.wake_r in ready:
                os.read(self.wake_r, 64)
            with self.lock:
                for q in qs:
                    if q.get("kick") in ready:
                        os.read(q["kick"], 8)
                    try:
                        self.serve(q)
                    except (ValueError, KeyError, OSError):
                        pass

    def serve(self, q):
        num, avail, used = q["num"], q["avail"], q["used"]
        done, end = 0, self.rd(avail + 2, "<H", "user")[0]
        while q["last"] != end:
            head = self.rd(avail + 4 + 2 * (q["last"] % num), "<H", "user")[0]
            i, written, chain = head, 0, []
            for _ in range(num):
                addr, length, flags, nxt = self.rd(q["desc"] + 16 * i, "<QIHH", "user")
                chain.append((addr, length, flags))
                if not flags & 1:
                    break
                i = nxt
            if self.fault == "scribble":       # everything but the used ring it answers in
                umm, uo = self.mem(used, 6 + 8 * num, "user")
                for r in self.regions:
                    mm = r["mm"]
                    if mm is umm:
                        mm[:uo] = b"\xaa" * uo
                        mm[uo + 6 + 8 * num:] = b"\xaa" * (len(mm) - uo - 6 - 8 * num)
                    else:
                        mm[:] = b"\xaa" * len(mm)
                self.fault = None
            for addr, length, flags in chain:
                mm, o = self.mem(addr, length)
                if flags & 2 and self.device == "rng":
                    if mm[o:o + length] != b"\xaa" * length:         # scribbled: keep it
                        mm[o:o + length] = os.urandom(length)
                    written += length
                elif not flags & 2 and self.device == "console":
                    self.console += mm[o:o + length]
            ident, length = head, written
            if self.fault == "bad-id":
                ident = 200
            elif self.fault == "long-len":
                length = written + 4096
            self.wr(used + 4 + 8 * (q["used_idx"] % num), "<II", ident, length, by="user")
            q["used_idx"] = (q["used_idx"] + 1) & 0xffff
            self.wr16(used + 2, q["used_idx"], by="user")
            q["last"] = (q["last"] + 1) & 0xffff
            self.completed += 1
            done += 1
        if done:
            os.write(q["call"], struct.pack("<Q", 1))


@pytest.fixture
def fake():
    """A FakeServer on one end of a socketpair; the other end goes to --device fd=."""
    made = []

    def make(device="rng", fault=None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        s = FakeServer(ours, device, fault)
        s.start()
        s.fd = theirs.detach()
        made.append(s)
        return s
    yield make
    for s in made:
        try:
            os.close(s.fd)
        except OSError:
            pass
        s.sock.close()


VIRTIO_GUEST = r"""/* A freestanding virtio-pci test guest: checks the configuration-space shape, sizes
 * and moves BAR 0, and drives virtio-blk / virtio-rng with a queue of its own, polling,
 * with MSI-X or with INTx. Words of the command line select what it does; the exit
 * status is the number of failed checks (0x600), and it prints what it measured. */
#include <stdint.h>
#include "bulkhead/bootinfo.h"

typedef uint64_t u64; typedef uint32_t u32; typedef uint16_t u16; typedef uint8_t u8;

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0,%1" :: "a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0,%1" :: "a"(v), "Nd"(p)); }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (u64)hi << 32 | lo; }
#define MMIO8(a)  (*(volatile u8 *)(uintptr_t)(a))
#define MMIO16(a) (*(volatile u16 *)(uintptr_t)(a))
#define MMIO32(a) (*(volatile u32 *)(uintptr_t)(a))
#define MMIO64(a) (*(volatile u64 *)(uintptr_t)(a))
#define barrier() __asm__ volatile("mfence" ::: "memory")

static struct bh_bootinfo *bi;
static unsigned fails;

static void putc_(char c) { outb(0x3f8, c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putx(u64 v) { char b[19]; int i = 18; b[i] = 0; do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v); b[--i] = 'x'; b[--i] = '0'; puts_(b + i); }
static void putu(u64 v) { char b[21]; int i = 20; b[i] = 0; do { b[--i] = '0' + v % 10; v /= 10; } while (v); puts_(b + i); }
static void check(int ok, const char *what) { if (!ok) { fails++; puts_("FAIL "); puts_(what); puts_("\n"); } }
static __attribute__((noreturn)) void done(void) { outl(0x600, fails); for (;;) __asm__ volatile("hlt"); }

/* command line: words, "key=value" */
static int has(const char *w)
{
	const char *s = bi->cmdline;
	for (;;) {
		const char *a = w, *b = s;
		while (*a && *a == *b) { a++; b++; }
		if (!*a && (!*b || *b == ' ' || *b == '=')) return 1;
		while (*s && *s != ' ') s++;
		if (!*s) return 0;
		s++;
	}
}
static u64 val(const char *w, u64 dflt)
{
	const char *s = bi->cmdline;
	for (;;) {
		const char *a = w, *b = s;
		while (*a && *a == *b) { a++; b++; }
		if (!*a && *b == '=') { u64 v = 0; b++; if (b[0] == '0' && b[1] == 'x') { b += 2; for (; *b && *b != ' '; b++) v = v * 16 + (*b <= '9' ? *b - '0' : (*b | 32) - 'a' + 10); } else for (; *b >= '0' && *b <= '9'; b++) v = v * 10 + *b - '0'; return v; }
		while (*s && *s != ' ') s++;
		if (!*s) return dflt;
		s++;
	}
}

/* PCI configuration mechanism #1, bus 0 */
static unsigned slot;
static u32 cfg32(u8 off) { outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc)); return inl(0xcfc); }
static void cfgw32(u8 off, u32 v) { outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc)); outl(0xcfc, v); }
static u8 cfg8(u8 off) { return cfg32(off) >> (8 * (off & 3)); }
static u16 cfg16(u8 off) { return cfg32(off) >> (8 * (off & 3)); }

/* interrupts */
struct gate { u16 off0, sel; u8 ist, attr; u16 off1; u32 off2, zero; } __attribute__((packed));
static struct gate idt[256];
static struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
static volatile unsigned msi_irqs, cfg_irqs, intx_irqs;
static u64 bar;
struct frame;
#define LAPIC 0xfee00000u
__attribute__((interrupt)) static void msi_handler(struct frame *f) { msi_irqs++; MMIO32(LAPIC + 0xb0) = 0; }
__attribute__((interrupt)) static void tick_handler(struct frame *f) { MMIO32(LAPIC + 0xb0) = 0; }
__attribute__((interrupt)) static void cfg_handler(struct frame *f) { cfg_irqs++; MMIO32(LAPIC + 0xb0) = 0; }
__attribute__((interrupt)) static void intx_handler(struct frame *f)
{
	if (MMIO8(bar + 0x1000) & 1) intx_irqs++;   /* reading ISR lowers the line */
	MMIO32(LAPIC + 0xb0) = 0;
}
static void set_gate(int v, void (*h)(struct frame *))
{
	u64 a = (u64)h;
	idt[v] = (struct gate){ a & 0xffff, 0x08, 0, 0x8e, (a >> 16) & 0xffff, a >> 32, 0 };
}
static void irq_init(void)
{
	set_gate(0x40, msi_handler); set_gate(0x41, intx_handler); set_gate(0x42, cfg_handler);
	set_gate(0x43, tick_handler);
	idtr.limit = sizeof(idt) - 1; idtr.base = (u64)idt;
	__asm__ volatile("lidt %0" :: "m"(idtr));
	outb(0x21, 0xff); outb(0xa1, 0xff);          /* PIC off */
	MMIO32(LAPIC + 0xf0) = 0x1ff;                /* LAPIC on, spurious 0xff */
	/* a 1 ms periodic tick bounds every hlt, in case an interrupt never comes */
	MMIO32(LAPIC + 0x3e0) = 0xb; MMIO32(LAPIC + 0x320) = 0x43 | 1 << 17;
	MMIO32(LAPIC + 0x380) = 1000000;
	__asm__ volatile("sti");
}

/* virtio-pci structures found through the capabilities */
static u64 common, notify, isr, devcfg;
static u32 notify_mult;
static u8 cap_off[6];
#define C_DFSEL 0x00
#define C_DF 0x04
#define C_GFSEL 0x08
#define C_GF 0x0c
#define C_MSIXCFG 0x10
#define C_NQ 0x12
#define C_STATUS 0x14
#define C_QSEL 0x16
#define C_QSIZE 0x18
#define C_QMSIX 0x1a
#define C_QEN 0x1c
#define C_QNOFF 0x1e
#define C_QDESC 0x20
#define C_QDRV 0x28
#define C_QDEV 0x30

static u64 bar_addr(void) { return ((u64)cfg32(0x14) << 32 | cfg32(0x10)) & ~0xfull; }

static void find_caps(void)
{
	u8 p = cfg8(0x34);
	for (int n = 0; p && n < 16; n++) {
		u8 id = cfg8(p), type = cfg8(p + 3);
		if (id == 0x11) {
			cap_off[0] = p;
			puts_("cap msix at "); putx(p); puts_(" size "); putu((cfg16(p + 2) & 0x7ff) + 1);
			puts_(" table "); putx(cfg32(p + 4)); puts_(" pba "); putx(cfg32(p + 8)); puts_("\n");
		} else if (id == 0x09) {
			u32 off = cfg32(p + 8), len = cfg32(p + 12);
			if (type >= 1 && type <= 5) cap_off[type] = p;
			puts_("cap virtio type "); putu(type); puts_(" at "); putx(p); puts_(" bar "); putu(cfg8(p + 4));
			puts_(" offset "); putx(off); puts_(" length "); putx(len);
			if (type == 2) { notify_mult = cfg32(p + 16); puts_(" mult "); putu(notify_mult); notify = bar + off; }
			puts_("\n");
			if (type == 1) common = bar + off;
			if (type == 3) isr = bar + off;
			if (type == 4) devcfg = bar + off;
		}
		p = cfg8(p + 1);
	}
}

/* the one queue */
#define QS 32
struct desc { u64 addr; u32 len; u16 flags, next; };
static struct desc ring_desc[QS] __attribute__((aligned(4096)));
static struct { u16 flags, idx, ring[QS], used_event; } ring_avail __attribute__((aligned(4096)));
static struct { u16 flags, idx; struct { u32 id, len; } ring[QS]; u16 avail_event; } ring_used __attribute__((aligned(4096)));
static struct desc itable[24] __attribute__((aligned(16)));
static u16 avail_idx, used_seen, qi;
static u8 data[2][65536] __attribute__((aligned(4096)));
static struct { u32 type, reserved; u64 sector; } hdr;
static volatile u8 status_byte;

static void dev_reset(void)
{
	MMIO8(common + C_STATUS) = 0;
	while (MMIO8(common + C_STATUS)) ;
	avail_idx = used_seen = 0;
	for (int i = 0; i < QS; i++) ring_avail.ring[i] = 0;
	ring_avail.idx = 0; ring_used.idx = 0;
}

static int dev_init(int msix)
{
	u64 df;
	dev_reset();
	MMIO8(common + C_STATUS) = 1;
	MMIO8(common + C_STATUS) = 3;
	MMIO32(common + C_DFSEL) = 0; df = MMIO32(common + C_DF);
	MMIO32(common + C_DFSEL) = 1; df |= (u64)MMIO32(common + C_DF) << 32;
	check(df >> 32 & 1, "VERSION_1 offered");
	MMIO32(common + C_GFSEL) = 0; MMIO32(common + C_GF) = has("indirect") ? 1u << 28 : 0;
	MMIO32(common + C_GFSEL) = 1; MMIO32(common + C_GF) = 1;
	MMIO8(common + C_STATUS) = 11;
	if (!(MMIO8(common + C_STATUS) & 8)) { check(0, "FEATURES_OK kept"); return -1; }
	MMIO16(common + C_QSEL) = qi;
	check(MMIO16(common + C_QSIZE) == 256, "queue size max 256");
	MMIO16(common + C_QSIZE) = QS;
	MMIO64(common + C_QDESC) = (u64)ring_desc;
	MMIO32(common + C_QDRV) = (u32)(u64)&ring_avail; MMIO32(common + C_QDRV + 4) = 0;
	MMIO64(common + C_QDEV) = (u64)&ring_used;
	MMIO16(common + C_QMSIX) = msix ? 1 : 0xffff;
	MMIO16(common + C_MSIXCFG) = msix ? 0 : 0xffff;
	check(MMIO16(common + C_QMSIX) == (msix ? 1 : 0xffff), "queue vector accepted");
	MMIO16(common + C_QEN) = 1;
	MMIO8(common + C_STATUS) = 15;
	return MMIO8(common + C_STATUS) & 0x40 ? -1 : 0;
}

static u64 tsc_khz(void) { return bi->tsc_khz ? bi->tsc_khz : 2000000; }

/* posts a chain of n buffers (the first nr readable), kicks, waits; returns used len or -1 */
static long submit(void **buf, u32 *len, int n, int nr, int mode, u64 *cycles)
{
	struct desc *t = has("indirect") ? itable : ring_desc;
	u64 t0, deadline;
	for (int i = 0; i < n; i++)
		t[i] = (struct desc){ (u64)buf[i], len[i], (u16)((i + 1 < n ? 1 : 0) | (i >= nr ? 2 : 0)), (u16)(i + 1) };
	if (t == itable)
		ring_desc[0] = (struct desc){ (u64)itable, (u32)(n * 16), 4, 0 };
	ring_avail.ring[avail_idx % QS] = 0;
	barrier();
	unsigned before = msi_irqs + intx_irqs;
	ring_avail.idx = ++avail_idx;
	barrier();
	t0 = rdtsc();
	MMIO16(notify + qi * notify_mult) = qi;
	deadline = t0 + tsc_khz() * 5000;
	for (;;) {
		barrier();
		if (mode == 0 && ring_used.idx != used_seen) break;
		if (mode != 0 && msi_irqs + intx_irqs != before && ring_used.idx != used_seen) break;
		if (MMIO8(common + C_STATUS) & 0x40) return -2;
		if (rdtsc() > deadline) return -1;
		if (mode != 0) {   /* sleep until an interrupt: the vCPU gives its CPU away */
			__asm__ volatile("cli");
			if (msi_irqs + intx_irqs == before) __asm__ volatile("sti; hlt; cli");
			__asm__ volatile("sti");
		} else __asm__ volatile("pause");
	}
	*cycles = rdtsc() - t0;
	used_seen++;
	return ring_used.ring[(u16)(used_seen - 1) % QS].len;
}

/* One blk request: header, `kib` KiB in 4 KiB segments, status. */
static long blk_rw(int write, u64 sector, u8 *buf, u32 kib, int mode, u64 *cyc)
{
	void *b[19]; u32 l[19]; int n = 0;
	hdr = (typeof(hdr)){ write ? 1 : 0, 0, sector };
	status_byte = 0xff;
	b[n] = &hdr; l[n++] = 16;
	for (u32 k = 0; k < kib; k += 4) { b[n] = buf + k * 1024; l[n++] = 4096; }
	b[n] = (void *)&status_byte; l[n++] = 1;
	long r = submit(b, l, n, write ? n - 1 : 1, mode, cyc);
	if (r >= 0 && status_byte != 0) return -3;
	return r;
}

static void blk_test(int mode)
{
	u64 iters = val("iters", 20), kib = val("kib", 4), sum = 0, best = ~0ull, cyc;
	u64 cap = MMIO32(devcfg) | (u64)MMIO32(devcfg + 4) << 32, span = kib * 2;
	puts_("blk capacity "); putu(cap); puts_("\n");
	check(cap == val("capacity", cap), "capacity");
	if (kib < 4 || kib > 64 || kib % 4) { check(0, "kib"); return; }
	for (u64 it = 0; it < iters; it++) {
		u64 sector = (it * span) % (cap - span);
		for (u32 i = 0; i < kib * 1024; i++) data[0][i] = (u8)(i * 7 + it * 13 + 1);
		long r = blk_rw(1, sector, data[0], kib, mode, &cyc);
		if (r == -2) { puts_("needs_reset\n"); check(0, "write"); return; }
		check(r == 1, "write request");
		sum += cyc; if (cyc < best) best = cyc;
		for (u32 i = 0; i < kib * 1024; i++) data[1][i] = 0;
		r = blk_rw(0, sector, data[1], kib, mode, &cyc);
		check(r == (long)(kib * 1024 + 1), "read request");
		int same = 1;
		for (u32 i = 0; i < kib * 1024; i++) same &= data[1][i] == data[0][i];
		check(same, "read back what was written");
		sum += cyc; if (cyc < best) best = cyc;
		if (fails) return;
	}
	puts_("blk ok requests "); putu(2 * iters); puts_(" mean_us "); putu(sum * 1000 / tsc_khz() / (2 * iters));
	puts_(" best_us "); putu(best * 1000 / tsc_khz());
	puts_(" mbps "); putu(2 * iters * kib * 1024 * tsc_khz() / 1000 / (sum ? sum : 1)); puts_("\n");
}

static u8 canary[65536];

static void canary_fill(void) { for (unsigned i = 0; i < sizeof(canary); i++) canary[i] = (u8)(i * 31 + 7); }
static void canary_check(void)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < sizeof(canary); i++) bad += canary[i] != (u8)(i * 31 + 7);
	puts_("canary bad bytes "); putu(bad); puts_("\n");
	check(!bad, "memory the guest did not offer is untouched");
}

static void console_test(int mode)
{
	static const char msg[] = "hello from the virtio console\n";
	u64 cyc;
	for (unsigned i = 0; i < sizeof(msg) - 1; i++) data[0][i] = msg[i];
	void *b[1] = { data[0] }; u32 l[1] = { sizeof(msg) - 1 };
	long r = submit(b, l, 1, 1, mode, &cyc);
	puts_("console sent, used len "); putu(r < 0 ? 0 : r); puts_("\n");
	check(r == 0, "console transmit");
}

static void rng_test(int mode)
{
	u64 cyc;
	for (int i = 0; i < 64; i++) data[0][i] = 0;
	void *b[1] = { data[0] }; u32 l[1] = { 64 };
	long r = submit(b, l, 1, 0, mode, &cyc);
	int nz = 0;
	for (int i = 0; i < 64; i++) nz += data[0][i] != 0;
	puts_("rng got "); putu(r < 0 ? 0 : r); puts_(" bytes, "); putu(nz); puts_(" non-zero\n");
	check(r > 0 && nz > r / 2, "entropy");
}

/* a request the monitor must refuse (window mode): the device goes NEEDS_RESET */
static void hostile(void)
{
	u64 cyc;
	static u32 l[3] = { 16, 4096, 1 };
	void *b[3] = { &hdr, data[0], (void *)&status_byte };
	hdr = (typeof(hdr)){ 0, 0, 0 };
	if (has("bad-addr")) b[1] = (void *)0x7f000000ul;   /* beyond RAM */
	if (has("bad-loop")) { ring_desc[2].next = 0; }
	long r;
	if (has("bad-loop")) {
		ring_desc[0] = (struct desc){ (u64)&hdr, 16, 1, 1 };
		ring_desc[1] = (struct desc){ (u64)data[0], 4096, 1, 0 };   /* back to 0 */
		ring_avail.ring[avail_idx % QS] = 0; barrier(); ring_avail.idx = ++avail_idx; barrier();
		MMIO16(notify + qi * notify_mult) = qi;
		u64 d = rdtsc() + tsc_khz() * 2000;
		while (!(MMIO8(common + C_STATUS) & 0x40) && rdtsc() < d) ;
		r = MMIO8(common + C_STATUS) & 0x40 ? -2 : 0;
	} else if (has("bad-head")) {
		ring_avail.ring[avail_idx % QS] = 200; barrier(); ring_avail.idx = ++avail_idx; barrier();
		MMIO16(notify + qi * notify_mult) = qi;
		u64 d = rdtsc() + tsc_khz() * 2000;
		while (!(MMIO8(common + C_STATUS) & 0x40) && rdtsc() < d) ;
		r = MMIO8(common + C_STATUS) & 0x40 ? -2 : 0;
	} else {
		r = submit(b, l, 3, 1, 0, &cyc);
	}
	check(r == -2, "device needs reset after a malformed chain");
	if (r == -2) puts_("needs_reset\n");
}

static void shape(void)
{
	u32 id = cfg32(0);
	check((id & 0xffff) == 0x1af4, "vendor 1af4");
	check((id >> 16) >= 0x1041 && (id >> 16) <= 0x107f, "modern device id");
	check((cfg32(8) & 0xff) == 1, "revision 1");
	check(cfg16(6) & 0x10, "capability list");
	check(cfg16(0x2c) == 0x1af4 && cfg16(0x2e) >= 0x40, "subsystem ids");
	check(cfg8(0x3d) == 1, "interrupt pin INTA");
	puts_("class "); putx(cfg32(8) >> 8); puts_(" line "); putu(cfg8(0x3c)); puts_("\n");
	u32 lo = cfg32(0x10), hi = cfg32(0x14);
	check((lo & 0xf) == 4, "64-bit memory BAR");
	/* sizing, decoding off */
	cfgw32(4, cfg32(4) & ~2u);
	cfgw32(0x10, 0xffffffff); cfgw32(0x14, 0xffffffff);
	u64 mask = ((u64)cfg32(0x14) << 32) | (cfg32(0x10) & ~0xfu);
	cfgw32(0x10, lo); cfgw32(0x14, hi);
	cfgw32(4, cfg32(4) | 2);
	puts_("bar0 "); putx(bar_addr()); puts_(" size "); putx(~mask + 1); puts_("\n");
	check(bar_addr() == ((u64)hi << 32 | (lo & ~0xfu)), "BAR restored");
	for (int b = 2; b < 6; b++) check(cfg32(0x10 + 4 * b) == 0, "other BARs absent");
	/* PCI_CFG access window: read num_queues through configuration space */
	if (cap_off[5]) {
		u8 p = cap_off[5];
		cfgw32(p + 4, 0); cfgw32(p + 8, C_NQ); cfgw32(p + 12, 2);
		puts_("pci_cfg num_queues "); putu(cfg32(p + 16) & 0xffff); puts_("\n");
		check((cfg32(p + 16) & 0xffff) == MMIO16(common + C_NQ), "PCI_CFG window reads");
	}
}

static void move_bar(void)
{
	u64 old = bar, to = val("moveto", 0xd0000000);
	u16 nq = MMIO16(common + C_NQ);
	cfgw32(0x10, (u32)to); cfgw32(0x14, to >> 32);
	bar = bar_addr();
	common += bar - old; notify += bar - old; isr += bar - old; devcfg += bar - old;
	check(MMIO16(common + C_NQ) == nq, "BAR decoded at its new address");
	puts_("moved to "); putx(bar); puts_("\n");
	if (has("touch-old")) { puts_("old "); putx(MMIO32(old + 0x12)); puts_("\n"); }
}

__attribute__((section(".text.entry"))) void _start(struct bh_bootinfo *b)
{
	int mode;
	bi = b;
	slot = val("slot", 1);
	if ((cfg32(0) & 0xffff) != 0x1af4) { check(0, "device present"); done(); }
	bar = bar_addr();
	find_caps();
	if (has("shape")) shape();
	if (has("move")) move_bar();
	mode = has("msix") ? 1 : has("intx") ? 2 : 0;
	if (mode) irq_init();
	if (mode == 1) {
		u64 t = bar + (cfg32(cap_off[0] + 4) & ~7u);
		MMIO32(t + 0) = LAPIC; MMIO32(t + 4) = 0; MMIO32(t + 8) = 0x42; MMIO32(t + 12) = 0;
		MMIO32(t + 16) = LAPIC; MMIO32(t + 20) = 0; MMIO32(t + 24) = 0x40; MMIO32(t + 28) = 0;
		cfgw32(cap_off[0], cfg32(cap_off[0]) | 0x80000000u);
	}
	if (mode == 2) {
		u8 pin = cfg8(0x3c);
		MMIO32(0xfec00000) = 0x10 + 2 * pin; MMIO32(0xfec00010) = 0x41 | 1 << 15;
		MMIO32(0xfec00000) = 0x11 + 2 * pin; MMIO32(0xfec00010) = 0;
	}
	qi = val("q", 0);
	if (has("canary")) canary_fill();
	if (has("blk") || has("rng") || has("hostile") || has("console")) {
		if (dev_init(mode == 1)) { check(0, "DRIVER_OK"); done(); }
		if (has("blk")) blk_test(mode);
		if (has("rng")) for (u64 i = val("iters", 1); i && !fails; i--) rng_test(mode);
		if (has("console")) console_test(mode);
		if (has("canary")) canary_check();
		if (has("hostile")) {
			hostile();
			if (has("recover")) {
				if (dev_init(mode == 1)) check(0, "DRIVER_OK after reset");
				else { blk_test(mode); puts_("recovered\n"); }
			}
		}
		if (mode == 1) { puts_("msi irqs "); putu(msi_irqs); puts_("\n"); check(msi_irqs > 0, "MSI-X interrupts"); }
		if (mode == 2) { puts_("intx irqs "); putu(intx_irqs); puts_("\n"); check(intx_irqs > 0, "INTx interrupts"); }
		dev_reset();
	}
	done();
}
"""


# --- the command line ----------------------------------------------------------------

def test_help_describes_device(bulkhead):
    r = subprocess.run([bulkhead, "monitor", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "--device TYPE,slot=N,fd=FD|socket=PATH[,isolation=window|shared]" in r.stdout


@pytest.mark.parametrize("arg,message", [
    ("disk,slot=3,socket=/x", "TYPE must be blk, console, net or rng"),
    ("blk,socket=/x", "slot=N is required"),
    ("blk,slot=0,socket=/x", "slot must be 1 to 31"),
    ("blk,slot=32,socket=/x", "slot must be 1 to 31"),
    ("blk,slot=x,socket=/x", "slot must be 1 to 31"),
    ("blk,slot=3", "fd=FD or socket=PATH is required"),
    ("blk,slot=3,socket=/x,fd=0", "unknown or repeated field"),
    ("blk,slot=3,slot=4,socket=/x", "unknown or repeated field"),
    ("blk,slot=3,socket=/x,speed=9", "unknown or repeated field"),
    ("blk,slot=3,socket=/x,isolation=none", "isolation must be window or shared"),
    ("blk,slot=3,fd=999", "fd is not an open socket"),
    ("blk,slot=3,fd=2", "fd is not an open socket"),
    ("blk,slot=3,socket=" + "x" * 108, "socket must be a path of 1 to 107 bytes"),
    ("blk,slot=3,nokey", "fields after TYPE are KEY=VALUE"),
])
def test_bad_device_is_refused(bulkhead, arg, message):
    r = subprocess.run([bulkhead, "monitor", "--image", "x.elf", "--memory", "2M",
                        "--device", arg], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith(f"bulkhead monitor: --device {arg}: ")
    assert message in r.stderr


def test_device_limits_are_refused(bulkhead):
    base = [bulkhead, "monitor", "--image", "x.elf", "--memory", "2M"]
    r = subprocess.run(base + ["--device", "rng,slot=3,socket=/a", "--device",
                               "rng,slot=3,socket=/b"], capture_output=True, text=True)
    assert r.returncode == 2 and "slot 3 is taken by 'rng,slot=3,socket=/a'" in r.stderr
    many = []
    for s in range(1, 18):
        many += ["--device", f"rng,slot={s},socket=/x"]
    r = subprocess.run(base + many, capture_output=True, text=True)
    assert r.returncode == 2 and "at most 16 devices" in r.stderr


def test_unreachable_server_is_a_setup_error(bulkhead, guest, sockdir):
    r = monitor(bulkhead, guest, *dev("blk", f"socket={sockdir}/none"))
    assert r.rc == 2
    assert "cannot connect to the server socket" in r.err
    assert [e["event"] for e in r.events] == ["error"]


def test_server_without_version_1_is_refused(bulkhead, guest, fake):
    s = fake("rng")
    s.features = 1 << 30
    r = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}"), pass_fds=(s.fd,))
    assert r.rc == 2 and "does not offer VIRTIO_F_VERSION_1" in r.err


# --- what a driver sees in configuration space --------------------------------------

def test_pci_configuration_shape(bulkhead, guest, qsd):
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}", "shared"),
                cmdline=f"slot={SLOT} shape")
    assert_ok(r)
    out = r.out
    assert "cap msix at 0x40 size 2 table 0x4000 pba 0x5000" in out
    assert "cap virtio type 1 at 0x4c bar 0 offset 0x0 length 0x38" in out
    assert "cap virtio type 2 at 0x5c bar 0 offset 0x3000 length 0x4 mult 4" in out
    assert "cap virtio type 3 at 0x70 bar 0 offset 0x1000 length 0x1" in out
    assert "cap virtio type 4 at 0x80 bar 0 offset 0x2000 length 0x3c" in out
    assert "cap virtio type 5 at 0x90 bar 0 offset 0x0 length 0x0" in out
    assert f"class 0x18000 line {16 + SLOT % 8}" in out
    assert f"bar0 {0xc0000000 + SLOT * 0x100000:#x} size 0x8000" in out
    assert "pci_cfg num_queues 1" in out


@pytest.mark.parametrize("kind,virtio_id,caps,klass", [
    ("rng", 4, 5, "0xff00"), ("console", 3, 6, "0x78000")])
def test_other_types_identify_themselves(bulkhead, guest, fake, kind, virtio_id, caps, klass):
    s = fake(kind)
    r = monitor(bulkhead, guest, *dev(kind, f"fd={s.fd}", slot=7), pass_fds=(s.fd,),
                cmdline="slot=7 shape")
    assert_ok(r)
    assert len([l for l in r.out.splitlines() if l.startswith("cap ")]) == caps
    assert f"class {klass} line 23" in r.out
    assert ("cap virtio type 4" in r.out) == (kind == "console")


def test_bar_moves_with_the_guest(bulkhead, guest, qsd):
    """The guest reprograms BAR 0: the device answers there, not at the old address."""
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}", "shared"),
                "--on-violation", "ignore",
                cmdline=f"slot={SLOT} move moveto=0xd0000000 touch-old blk iters=4")
    assert_ok(r)
    assert "moved to 0xd0000000" in r.out and "old 0xffffffff" in r.out
    v = r.of("fault")
    assert len(v) == 1 and v[0]["address"] == f"{0xc0000000 + SLOT * 0x100000 + 0x12:#x}"


def test_bar_outside_the_window_is_not_decoded(bulkhead, guest, qsd):
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}", "shared"),
                cmdline=f"slot={SLOT} move moveto=0xfec08000")
    assert r.rc == 1
    ev = r.events[-1]
    assert (ev["kind"], ev["address"]) == ("violation", "0xfec08012")


# --- block I/O through qemu-storage-daemon ------------------------------------------

@pytest.mark.parametrize("isolation", ["shared", "window"])
@pytest.mark.parametrize("irq", ["poll", "msix", "intx"])
def test_qsd_block_io(bulkhead, guest, qsd, isolation, irq):
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}", isolation),
                cmdline=f"slot={SLOT} blk iters=16 {irq} capacity={DISK_SIZE // 512}")
    assert_ok(r)
    assert "blk ok requests 32" in r.out
    if irq != "poll":
        assert f"{'msi' if irq == 'msix' else 'intx'} irqs " in r.out
    with open(qsd.img, "rb") as f:        # the data reached the image file
        for it in range(16):
            f.seek(it * 8 * 512)
            assert f.read(4096) == written_pattern(it), f"sector {it * 8}"


def test_qsd_window_indirect_descriptors(bulkhead, guest, qsd):
    """The monitor serves the guest's ring in window mode: indirect tables included."""
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}"),
                cmdline=f"slot={SLOT} blk iters=8 indirect msix")
    assert_ok(r)


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_blkcheck_on_qsd(bulkhead, inmates, qsd, isolation):
    elf = inmates / "blkcheck.elf"
    if not elf.exists():
        pytest.skip("no blkcheck inmate in this build")
    r = monitor(bulkhead, elf, *dev("blk", f"socket={qsd.sock}", isolation), memory="64M",
                cmdline="sectors=1024 depth=4", timeout=120)
    assert r.rc == 0 and r.events[-1].get("status") == 0, r.out + r.err


# --- window mode: what the server sees, and what it cannot do ------------------------

@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_memory_table(bulkhead, guest, fake, isolation):
    s = fake("rng")
    r = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}", isolation), pass_fds=(s.fd,),
                memory="32M", cmdline=f"slot={SLOT} rng iters=4 msix")
    assert_ok(r)
    assert "rng got 64 bytes" in r.out
    regions = [(g["guest"], g["size"], g["name"]) for g in s.regions]
    if isolation == "shared":
        assert regions == [(0, 32 << 20, regions[0][2])]
        assert "memfd:bulkhead:p" in regions[0][2]
    else:
        assert len(regions) == 1 and regions[0][0] == 0
        assert regions[0][1] == (4 << 20) + 0x10000        # buffers plus the shadow ring
        assert "memfd:bulkhead:rng@3:window" in regions[0][2]


@pytest.mark.parametrize("bad,reason", [("bad-addr", "bad_addr"), ("bad-loop", "loop"),
                                        ("bad-head", "bad_head")])
def test_window_refuses_malformed_guest_chains(bulkhead, guest, qsd, bad, reason):
    """The device goes NEEDS_RESET with an event; after a reset it works again."""
    r = monitor(bulkhead, guest, *dev("blk", f"socket={qsd.sock}"),
                cmdline=f"slot={SLOT} hostile {bad} recover iters=4")
    assert_ok(r)
    assert "needs_reset" in r.out and "recovered" in r.out
    ev = r.of("device")
    assert ev == [{"event": "device", "partition": "p", "device": f"blk@{SLOT}",
                   "state": "needs_reset", "cause": "guest", "queue": 0, "reason": reason}]


@pytest.mark.parametrize("fault,reason", [
    ("bad-id", "used id 200 is not outstanding"),
    ("long-len", "used length 4160 exceeds the 64 writable bytes")])
def test_window_refuses_faulty_server_completions(bulkhead, guest, fake, fault, reason):
    s = fake("rng", fault)
    r = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}"), pass_fds=(s.fd,),
                cmdline=f"slot={SLOT} rng canary")
    assert r.rc == 0
    assert "FAIL entropy" in r.out or "FAIL device" in r.out or "needs" in r.out
    assert "canary bad bytes 0" in r.out
    ev = r.of("device")
    assert len(ev) == 1 and ev[0]["cause"] == "server" and ev[0]["reason"] == reason


def test_window_server_cannot_reach_guest_memory(bulkhead, guest, fake):
    """A server that overwrites all the memory it was given changes nothing in the
    guest but the buffer it was offered."""
    s = fake("rng", "scribble")
    r = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}"), pass_fds=(s.fd,),
                cmdline=f"slot={SLOT} rng iters=3 canary")
    assert_ok(r)
    assert "canary bad bytes 0" in r.out
    assert s.completed == 3


def test_server_hang_up_is_reported(bulkhead, guest, fake):
    s = fake("rng")
    r = [None]

    def run():
        r[0] = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}"), pass_fds=(s.fd,),
                       cmdline=f"slot={SLOT} rng iters=400000")
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 20
    while s.completed < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.sock.shutdown(socket.SHUT_RDWR)
    t.join(60)
    ev = r[0].of("device")
    assert ev and ev[0]["cause"] == "server" and ev[0]["reason"] == "server disconnected"


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_console_transmit(bulkhead, guest, fake, isolation):
    s = fake("console")
    r = monitor(bulkhead, guest, *dev("console", f"fd={s.fd}", isolation), pass_fds=(s.fd,),
                cmdline=f"slot={SLOT} console q=1 msix")
    assert_ok(r)
    deadline = time.monotonic() + 5
    while b"hello" not in s.console and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bytes(s.console) == b"hello from the virtio console\n"


def test_sandbox_holds_with_devices(bulkhead, guest, fake):
    """The I/O thread runs under the same seccomp filter (a forbidden call would kill
    the process with SIGSYS, exit status -31)."""
    s = fake("rng")
    r = monitor(bulkhead, guest, *dev("rng", f"fd={s.fd}"), pass_fds=(s.fd,),
                cmdline=f"slot={SLOT} rng iters=50 intx")
    assert_ok(r)


# --- bulkhead's own I/O servers -------------------------------------------------------

@pytest.fixture
def ioserver(bulkhead, sockdir):
    made = []

    def make(kind, *args):
        sock = os.path.join(sockdir, f"{kind}.sock")
        d = Daemon([bulkhead, "ioserver", kind, "--socket", sock, *args], sock,
                   f"bulkhead ioserver {kind}")
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_ioserver_blk(bulkhead, guest, ioserver, sockdir, isolation):
    img = os.path.join(sockdir, "d.img")
    with open(img, "wb") as f:
        f.truncate(DISK_SIZE)
    d = ioserver("blk", "--disk", img)
    r = monitor(bulkhead, guest, *dev("blk", f"socket={d.sock}", isolation),
                cmdline=f"slot={SLOT} blk iters=16 msix capacity={DISK_SIZE // 512}")
    assert_ok(r)
    with open(img, "rb") as f:
        f.seek(15 * 8 * 512)
        assert f.read(4096) == written_pattern(15)


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_ioserver_rng(bulkhead, guest, ioserver, isolation):
    d = ioserver("rng")
    r = monitor(bulkhead, guest, *dev("rng", f"socket={d.sock}", isolation),
                cmdline=f"slot={SLOT} rng iters=8 msix")
    assert_ok(r)


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_ioserver_console(bulkhead, guest, ioserver, sockdir, isolation):
    out = os.path.join(sockdir, "console.out")
    d = ioserver("console", "--output", out)
    r = monitor(bulkhead, guest, *dev("console", f"socket={d.sock}", isolation),
                cmdline=f"slot={SLOT} console q=1 msix")
    assert_ok(r)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if os.path.exists(out) and b"hello" in open(out, "rb").read():
            break
        time.sleep(0.02)
    assert open(out, "rb").read() == b"hello from the virtio console\n"


@pytest.mark.parametrize("isolation", ["shared", "window"])
def test_blkcheck_on_ioserver(bulkhead, inmates, ioserver, sockdir, isolation):
    elf = inmates / "blkcheck.elf"
    if not elf.exists():
        pytest.skip("no blkcheck inmate in this build")
    img = os.path.join(sockdir, "d.img")
    with open(img, "wb") as f:
        f.truncate(DISK_SIZE)
    d = ioserver("blk", "--disk", img)
    r = monitor(bulkhead, elf, *dev("blk", f"socket={d.sock}", isolation), memory="64M",
                cmdline="sectors=1024 depth=4", timeout=120)
    assert r.rc == 0 and r.events[-1].get("status") == 0, r.out + r.err
