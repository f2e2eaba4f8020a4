"""`bulkhead monitor` end to end: the inmates run and exit with the right events and exit
codes, every fault kind stops the partition with its event, bad images and bad command
lines are refused before the VM runs, the platform devices behave, and the running
monitor is sandboxed. Small guests of its own are built here with gcc/as (build deps)."""
import json
import os
import re
import select
import struct
import subprocess
import time

import pytest

ELF_HEADER = "<16sHHIQQQIHHHHHH"
ELF_PHDR = "<IIQQQQQQ"
EM_X86_64, EM_AARCH64 = 62, 183


class Result:
    def __init__(self, proc, out, err, events):
        self.rc = proc.returncode
        self.out = out
        self.err = err
        self.events = events

    def kinds(self):
        return [e["event"] for e in self.events]

    def last(self):
        assert self.events, f"no events; stderr:\n{self.err}"
        return self.events[-1]


def monitor(bulkhead, image, *args, memory="32M", name="p", cmdline=None, pass_fds=(),
            timeout=60):
    """Run one partition with events on a pipe of their own; parse every event line."""
    r, w = os.pipe()
    argv = [bulkhead, "monitor", "--name", name, "--image", str(image), "--memory", memory,
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
        proc.communicate()
        os.close(r)
        raise
    with os.fdopen(r, "rb") as f:
        lines = f.read().decode().splitlines()
    events = [json.loads(line) for line in lines]   # every line must be a JSON object
    return Result(proc, out.decode(errors="replace"), err.decode(errors="replace"), events)


def elf64(segments, entry, machine=EM_X86_64, elf_class=2, data=1, etype=2):
    """A minimal ELF image: segments are (address, bytes, memsz)."""
    phoff, off = 64, 64 + 56 * len(segments)
    ident = b"\x7fELF" + bytes([elf_class, data, 1]) + bytes(9)
    out = struct.pack(ELF_HEADER, ident, etype, machine, 1, entry, phoff, 0, 0, 64, 56,
                      len(segments), 0, 0, 0)
    body = b""
    for addr, code, memsz in segments:
        out += struct.pack(ELF_PHDR, 1, 5, off + len(body), addr, addr, len(code), memsz,
                           0x1000)
        body += code
    return out + body


def build_guest(tmp_path, name, source, lang="c"):
    """Compile a freestanding guest linked at 1 MiB."""
    src = tmp_path / f"{name}.{'c' if lang == 'c' else 'S'}"
    src.write_text(source)
    lds = tmp_path / "guest.lds"
    lds.write_text("ENTRY(_start)\nSECTIONS { . = 0x100000;\n .text : { *(.text.entry) "
                   "*(.text*) }\n .rodata : { *(.rodata*) }\n .data : { *(.data*) }\n"
                   " .bss : { *(.bss*) *(COMMON) } }\n")
    elf = tmp_path / f"{name}.elf"
    subprocess.run(["gcc", "-O2", "-ffreestanding", "-fno-pic", "-no-pie", "-mno-red-zone",
                    "-mgeneral-regs-only", "-fno-stack-protector", "-nostdlib", "-static",
                    "-Wl,--no-warn-rwx-segments", "-Wl,-T," + str(lds), "-o", str(elf),
                    str(src)], check=True)
    return elf


# --- command line -------------------------------------------------------------------

def test_help_describes_every_option(bulkhead):
    r = subprocess.run([bulkhead, "monitor", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: bulkhead monitor")
    for opt in ("--name", "--id", "--image", "--kernel", "--initrd", "--memory", "--mem-fd",
                "--cpus", "--cmdline", "--event-fd", "--help"):
        assert opt in r.stdout, opt


@pytest.mark.parametrize("args,message", [
    ([], "one of --image and --kernel is required"),
    (["--image", "x.elf", "--kernel", "bz", "--memory", "2M"],
     "one of --image and --kernel is required"),
    (["--image", "x.elf", "--initrd", "rd", "--memory", "2M"], "--initrd goes with --kernel"),
    (["--image", "x.elf"], "--memory is required"),
    (["--image", "x.elf", "--memory", "3M"], "multiple of 2 MiB"),
    (["--image", "x.elf", "--memory", "0"], "positive multiple of 2 MiB"),
    (["--image", "x.elf", "--memory", "64G"], "multiple of 2 MiB"),
    (["--image", "x.elf", "--memory", "lots"], "--memory: not a size"),
    (["--image", "x.elf", "--memory", "2M", "--cpus", "1-"], "--cpus: not a CPU list"),
    (["--image", "x.elf", "--memory", "2M", "--event-fd", "999"], "--event-fd"),
    (["--image", "x.elf", "--memory", "2M", "--name", "x" * 33], "--name"),
    (["--bogus"], "unknown option"),
])
def test_bad_command_line_is_refused(bulkhead, args, message):
    r = subprocess.run([bulkhead, "monitor", *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("bulkhead monitor: ")
    assert message in r.stderr


def test_missing_image_file(bulkhead, tmp_path):
    r = monitor(bulkhead, tmp_path / "none.elf")
    assert r.rc == 2
    assert "bulkhead monitor: p: image" in r.err and "No such file" in r.err
    assert r.kinds() == ["error"]


def bzimage(version=0x020F, xloadflags=0x7F, loadflags=0x01, length=64 * 1024,
            cmdline_size=2047):
    """A bzImage's setup header and nothing worth running behind it."""
    img = bytearray(length)
    img[0x1F1] = 27
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x200:0x202] = b"\xeb\x6a"
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = loadflags
    struct.pack_into("<IIB", img, 0x22C, 0x7FFFFFFF, 2 << 20, 1)
    struct.pack_into("<HI", img, 0x236, xloadflags, cmdline_size)
    struct.pack_into("<QI", img, 0x258, 16 << 20, 48 << 20)
    return bytes(img)


def kernel_monitor(bulkhead, kernel, *args, memory="128M"):
    return subprocess.run([bulkhead, "monitor", "--name", "lx", "--kernel", str(kernel),
                           "--memory", memory, *args], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("image,memory,message", [
    (b"\x7fELF" + bytes(4096), "128M", "not a bzImage"),
    (bzimage(version=0x020B), "128M", "boot protocol older than 2.12"),
    (bzimage(xloadflags=0), "128M", "not a 64-bit kernel"),
    (bzimage(loadflags=0), "128M", "not a bzImage (a zImage loads low)"),
    (bzimage(length=28 * 512), "128M", "image is truncated"),
    (bzimage(), "32M", "too little memory below 3 GiB for the kernel"),
], ids=["elf", "old-protocol", "32-bit", "zimage", "truncated", "too-little-memory"])
def test_bad_kernel_is_refused(bulkhead, tmp_path, image, memory, message):
    path = tmp_path / "bzImage"
    path.write_bytes(image)
    r = kernel_monitor(bulkhead, path, memory=memory)
    assert r.returncode == 2, r.stderr
    assert f"bulkhead monitor: lx: kernel {path} refused: {message}" in r.stderr, r.stderr


def test_kernel_initrd_problems_are_named(bulkhead, tmp_path):
    path = tmp_path / "bzImage"
    path.write_bytes(bzimage())
    r = kernel_monitor(bulkhead, path, "--initrd", str(tmp_path / "none"))
    assert r.returncode == 2 and "initrd " in r.stderr and "No such file" in r.stderr
    big = tmp_path / "initrd"
    with open(big, "wb") as f:
        f.truncate(100 << 20)
    r = kernel_monitor(bulkhead, path, "--initrd", str(big))
    assert r.returncode == 2, r.stderr
    assert "too little memory for the initrd" in r.stderr
    path.write_bytes(bzimage(cmdline_size=100))
    r = kernel_monitor(bulkhead, path, "--cmdline", "x" * 101)
    assert r.returncode == 2 and "command line is longer than the kernel accepts" in r.stderr


# --- the inmates --------------------------------------------------------------------

def test_hello_prints_and_exits_0(bulkhead, inmates):
    r = monitor(bulkhead, inmates / "hello.elf", name="greeter", memory="64M",
                cmdline="one two")
    assert r.rc == 0, r.err
    assert "Hello from partition 'greeter' (id 0, 1 vCPU)" in r.out
    assert "memory 64 MiB (67108864 bytes)" in r.out
    assert 'argv[1] = "one"' in r.out and 'argv[2] = "two"' in r.out
    assert r.kinds() == ["start", "exit"]
    assert r.events[0] == {"event": "start", "partition": "greeter", "id": 0,
                           "memory": 67108864, "entry": r.events[0]["entry"],
                           "tsc": r.events[0]["tsc"]}
    assert r.events[0]["tsc"] in ("host", "kvm")
    assert r.last() == {"event": "exit", "partition": "greeter", "status": 0}


def test_events_default_to_stderr_and_id_reaches_guest(bulkhead, inmates):
    r = subprocess.run([bulkhead, "monitor", "--image", str(inmates / "hello.elf"),
                        "--memory", "2M", "--id", "7"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    assert "Hello from partition 'hello' (id 7, 1 vCPU)" in r.stdout   # default name
    events = [json.loads(l) for l in r.stderr.splitlines() if l.startswith("{")]
    assert events[-1] == {"event": "exit", "partition": "hello", "status": 0}


@pytest.mark.parametrize("arg,access,address,size", [
    ("ram", "mmio", "0xb0000000", 4),
    ("mmio", "mmio", "0xd0000000", 4),
    ("mmio 0xfebff000", "mmio", "0xfebff000", 4),
    ("port", "port", "0x300", 1),
    ("port 0x80", "port", "0x80", 1),
])
def test_violation_stops_partition(bulkhead, inmates, arg, access, address, size):
    r = monitor(bulkhead, inmates / "faults.elf", cmdline=arg)
    assert r.rc == 1, r.err
    ev = r.last()
    assert {k: ev[k] for k in ("event", "partition", "kind", "access", "address", "size",
                               "direction")} == \
        {"event": "fault", "partition": "p", "kind": "violation", "access": access,
         "address": address, "size": size, "direction": "write"}
    assert int(ev["rip"], 16) >= 0x100000
    assert "still running" not in r.out
    assert f"bulkhead monitor: p: isolation violation: {access} write" in r.err


def test_triple_fault(bulkhead, inmates):
    r = monitor(bulkhead, inmates / "faults.elf", cmdline="triple")
    assert r.rc == 1
    assert r.last()["kind"] == "triple_fault" and r.last()["event"] == "fault"
    assert "triple fault" in r.err
    assert "still running" not in r.out


def test_software_interrupt_is_a_fault(bulkhead, tmp_path):
    """int3 with no IDT: this machine's paravirtual KVM cannot emulate it and reports an
    internal error (suberror 1, emulation); KVM on hardware triple-faults instead."""
    elf = build_guest(tmp_path, "int3", ".code64\n.section .text.entry\n.globl _start\n"
                      "_start: int3\nhlt\n", lang="asm")
    r = monitor(bulkhead, elf, memory="2M")
    assert r.rc == 1
    ev = r.last()
    assert ev["event"] == "fault" and ev["kind"] in ("internal_error", "triple_fault")
    assert ev["rip"] == r.events[0]["entry"]           # int3 is the first instruction
    if ev["kind"] == "internal_error":
        assert isinstance(ev["suberror"], int)
        assert f"KVM internal error, suberror {ev['suberror']}" in r.err


@pytest.mark.parametrize("arg,direction,index", [
    ("rdmsr", "read", "0xc0ffee00"),
    ("wrmsr", "write", "0xc0ffee00"),
    ("rdmsr 0x12345", "read", "0x12345"),
])
def test_unknown_msr_is_a_gp_reported_by_the_monitor(bulkhead, inmates, arg, direction,
                                                     index):
    """An MSR KVM does not implement reaches the monitor (KVM_CAP_X86_USER_SPACE_MSR),
    which answers #GP whatever the host's kvm.ignore_msrs says, and reports it: the
    guest's own exception handler sees the #GP (status 0xE0 + 13) and the partition
    ends normally; no fault, the monitor unharmed."""
    r = monitor(bulkhead, inmates / "faults.elf", cmdline=arg, memory="4M")
    assert r.rc == 0, r.err
    assert r.kinds() == ["start", "msr", "exit"], r.events
    ev = r.events[1]
    assert {k: ev[k] for k in ("partition", "vcpu", "index", "direction", "action")} == \
        {"partition": "p", "vcpu": 0, "index": index, "direction": direction,
         "action": "gp"}
    assert ev.get("value") == ("0xdeadbeef" if direction == "write" else None)
    assert int(ev["rip"], 16) >= 0x100000
    assert r.last() == {"event": "exit", "partition": "p", "status": 0xE0 + 13}
    assert "general protection (vector 13)" in r.out
    assert "still running" not in r.out


def test_cpuid_and_msrs_are_what_the_monitor_promises(bulkhead, inmates):
    """CPUID says hypervisor, one package with as many cores as vCPUs (leaf 0xb filled
    in even where the host's KVM leaves it out), no PMU, no VMX/SVM; the APIC base MSR
    (one KVM implements) reads as the platform puts it. The inmate checks and prints."""
    r = monitor(bulkhead, inmates / "cpuinfo.elf", memory="4M")
    assert r.rc == 0, r.err
    assert "inmate-test: 12 checks, 0 failures" in r.out, r.out
    assert r.last() == {"event": "exit", "partition": "p", "status": 0}, r.out
    assert "msr" not in r.kinds()


@pytest.mark.parametrize("status", [0, 3, 42, 4000000000])
def test_exit_status_is_reported(bulkhead, inmates, status):
    r = monitor(bulkhead, inmates / "faults.elf", cmdline=f"exit {status}")
    assert r.rc == 0
    assert r.last() == {"event": "exit", "partition": "p", "status": status}


def test_reset_request(bulkhead, inmates):
    r = monitor(bulkhead, inmates / "faults.elf", cmdline="reset")
    assert r.rc == 3
    assert r.kinds() == ["start", "reset"]
    assert "ignored the reset" not in r.out


@pytest.mark.parametrize("args", ["", "ioapic"])
def test_timer_inmate_passes(bulkhead, inmates, args):
    r = monitor(bulkhead, inmates / "timer.elf", cmdline=args)
    assert r.rc == 0, r.out + r.err
    assert r.last()["status"] == 0, r.out
    assert re.search(r"inmate-test: \d+ checks, 0 failures", r.out), r.out


def test_selftest_inmate_passes(bulkhead, inmates):
    if not (inmates / "selftest.elf").exists():
        pytest.skip("no selftest inmate in this build")
    r = monitor(bulkhead, inmates / "selftest.elf")
    assert r.rc == 0, r.out + r.err
    assert r.last()["status"] == 0, r.out
    assert re.search(r"inmate-test: \d+ checks, 0 failures", r.out), r.out


# --- bad images: refused before the VM runs -----------------------------------------

def hello_bytes(inmates):
    return (inmates / "hello.elf").read_bytes()


def first_load(img):
    """(file offset, guest address) of the first PT_LOAD with file data."""
    phoff, phnum = struct.unpack_from("<Q", img, 32)[0], struct.unpack_from("<H", img, 56)[0]
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, _, _ = struct.unpack_from(ELF_PHDR, img, phoff + 56 * i)
        if p_type == 1 and filesz:
            return off, paddr
    raise AssertionError("no PT_LOAD")


@pytest.mark.parametrize("kind,message", [
    ("truncated", "truncated ELF header"),
    ("elf32", "not a 64-bit ELF"),
    ("machine", "not an x86-64 ELF"),
    ("boot_area", "segment overlaps the reserved boot area"),
    ("outside_ram", "segment lies outside guest RAM"),
    ("entry", "entry point lies outside"),
])
def test_bad_image_is_refused(bulkhead, inmates, tmp_path, kind, message):
    img = bytearray(hello_bytes(inmates))
    if kind == "truncated":
        img = img[:40]
    elif kind == "elf32":
        img[4] = 1
    elif kind == "machine":
        img[18:20] = struct.pack("<H", EM_AARCH64)
    elif kind == "boot_area":
        img = elf64([(0x80000, b"\xf4", 1)], 0x80000)
    elif kind == "outside_ram":
        img = elf64([(0x100000, b"\xf4", 2 << 20)], 0x100000)   # 2 MiB RAM below
    elif kind == "entry":
        img = elf64([(0x100000, b"\xf4", 1)], 0x200000)
    path = tmp_path / "bad.elf"
    path.write_bytes(bytes(img))
    r = monitor(bulkhead, path, memory="2M")
    assert r.rc == 2
    assert r.out == ""
    assert f"bulkhead monitor: p: image {path} refused: {message}" in r.err
    assert r.kinds() == ["error"] and message in r.events[0]["message"]


# --- platform devices, memory, sandbox (guests of our own) ---------------------------

DEVICES_GUEST = r"""
#include <stdint.h>
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0,%1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0,%1" :: "a"(v), "Nd"(p)); }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }

struct gate { uint16_t off0, sel; uint8_t ist, attr; uint16_t off1; uint32_t off2, zero; } __attribute__((packed));
static struct gate idt[256];
static struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
static volatile unsigned thre_irqs;
struct frame;

__attribute__((interrupt)) static void uart_irq(struct frame *f)
{
	if ((inb(0x3fa) & 0x0f) == 0x02)    /* reading IIR acknowledges THRE */
		thre_irqs++;
	outb(0x20, 0x20);                   /* EOI to the PIC */
}

static void fail(unsigned check) { outl(0x600, check); for (;;) ; }
#define CHECK(n, cond) do { if (!(cond)) fail(n); } while (0)

__attribute__((section(".text.entry"))) void _start(void)
{
	uint64_t a = (uint64_t)uart_irq;

	/* UART registers */
	outb(0x3ff, 0xa5);
	CHECK(1, inb(0x3ff) == 0xa5);                      /* scratch */
	CHECK(2, (inb(0x3fd) & 0x60) == 0x60);              /* LSR: THR empty */
	CHECK(3, (inb(0x3fa) & 0x0f) == 0x01);              /* IIR: nothing pending */
	outb(0x3fb, 0x83); outb(0x3f8, 0x0c); outb(0x3f9, 0x01);
	CHECK(4, inb(0x3f8) == 0x0c && inb(0x3f9) == 0x01); /* DLL/DLM under DLAB */
	outb(0x3fb, 0x03);
	CHECK(5, inb(0x3fb) == 0x03 && inb(0x3f9) == 0x00); /* LCR; IER back */
	outb(0x3fc, 0x0b);
	CHECK(6, inb(0x3fc) == 0x0b);                       /* MCR */
	outb(0x3f9, 0x02);
	CHECK(7, inb(0x3f9) == 0x02);
	CHECK(8, (inb(0x3fa) & 0x0f) == 0x02);              /* THRE pending once enabled */
	CHECK(9, (inb(0x3fa) & 0x0f) == 0x01);              /* and acknowledged by the read */
	outb(0x3f9, 0x00);

	/* PCI configuration mechanism #1 */
	outl(0xcf8, 0x80000000);
	CHECK(20, inl(0xcf8) == 0x80000000);
	CHECK(21, inl(0xcfc) == 0x00081b36);                /* host bridge 1b36:0008 */
	CHECK(22, inw(0xcfe) == 0x0008);
	outl(0xcf8, 0x80000008);
	CHECK(23, inl(0xcfc) >> 8 == 0x060000);             /* class: host bridge */
	outl(0xcf8, 0x80000004);
	outl(0xcfc, 0xffffffff);
	CHECK(24, inl(0xcfc) == 0);                         /* read-only command/status */
	outl(0xcf8, 0x80000800);
	CHECK(25, inl(0xcfc) == 0xffffffff);                /* empty slot 1 */
	outl(0xcf8, 0x80010000);
	CHECK(26, inl(0xcfc) == 0xffffffff);                /* bus 1 */
	outl(0xcf8, 0x00000000);
	CHECK(27, inl(0xcfc) == 0xffffffff);                /* enable bit clear */

	/* watchdog kicks are accepted */
	outl(0x608, 1);

	/* THRE interrupt on IRQ 4 through the in-kernel PIC (vector 0x24) */
	idt[0x24] = (struct gate){ a & 0xffff, 0x08, 0, 0x8e, (a >> 16) & 0xffff, a >> 32, 0 };
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" :: "m"(idtr));
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, 0xef); outb(0xa1, 0xff);                 /* only IRQ 4 */
	__asm__ volatile("sti");
	outb(0x3f9, 0x02);
	for (volatile int i = 0; i < 1000000 && !thre_irqs; i++)
		;
	for (volatile int i = 0; i < 100000; i++)   /* acknowledged: no second one */
		;
	__asm__ volatile("cli");
	CHECK(30, thre_irqs == 1);
	outl(0x600, 0);
	for (;;) ;
}
"""


def test_platform_devices(bulkhead, tmp_path):
    elf = build_guest(tmp_path, "devices", DEVICES_GUEST)
    r = monitor(bulkhead, elf, memory="4M")
    assert r.rc == 0, r.err
    assert r.last() == {"event": "exit", "partition": "p", "status": 0}, \
        "a non-zero status names the failed CHECK in DEVICES_GUEST"


SYSCTL_GUEST = r"""
	.code64
	.section .text.entry
	.globl _start
_start:	cmpb $'r', 80(%rdi)             /* bootinfo cmdline[0]: read or short write */
	mov $0x600, %dx
	je 1f
	mov $1, %al
	out %al, %dx                       /* 1-byte write: refused */
	hlt
1:	in %dx, %eax                       /* write-only register read: refused */
	hlt
"""


@pytest.mark.parametrize("cmd,size,direction", [("r", 4, "read"), ("w", 1, "write")])
def test_sysctl_refuses_bad_access(bulkhead, tmp_path, cmd, size, direction):
    elf = build_guest(tmp_path, "sysctl", SYSCTL_GUEST, lang="asm")
    r = monitor(bulkhead, elf, memory="2M", cmdline=cmd)
    assert r.rc == 1
    ev = r.last()
    assert (ev["kind"], ev["access"], ev["address"], ev["size"], ev["direction"]) == \
        ("violation", "port", "0x600", size, direction)


HIGH_RAM_GUEST = r"""
	.code64
	.section .text.entry
	.globl _start
_start:	mov $0x600, %dx
	mov $0x100000000, %rax              /* first byte of high RAM */
	movq $0x1234abcd, (%rax)
	cmpq $0x1234abcd, (%rax)
	jne 1f
	mov $0x11ffffff8, %rax               /* last quadword of high RAM (512 MiB) */
	movq $7, (%rax)
	mov $0x120000000, %rax               /* just past it: an MMIO exit */
	mov (%rax), %rcx
1:	mov $1, %eax
	out %eax, %dx
	hlt
"""


def test_high_ram_above_4g(bulkhead, tmp_path):
    elf = build_guest(tmp_path, "high", HIGH_RAM_GUEST, lang="asm")
    r = monitor(bulkhead, elf, memory="3584M")          # 3 GiB low + 512 MiB high
    assert r.rc == 1, r.err
    ev = r.last()
    assert (ev["kind"], ev["access"], ev["address"], ev["direction"]) == \
        ("violation", "mmio", "0x120000000", "read")


SPIN_GUEST = r"""
	.code64
	.section .text.entry
	.globl _start
_start:	mov $0x3f8, %dx
	lea msg(%rip), %rsi
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	cli
3:	hlt
	jmp 3b
msg:	.asciz "ready> "
"""


def test_running_monitor_is_sandboxed_pinned_and_unbuffered(bulkhead, tmp_path):
    """The prompt (no newline) arrives while the guest runs; the process is in seccomp
    filter mode, pinned, and holds no /dev/kvm system fd."""
    elf = build_guest(tmp_path, "spin", SPIN_GUEST, lang="asm")
    proc = subprocess.Popen([bulkhead, "monitor", "--image", str(elf), "--memory", "2M",
                             "--cpus", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = b""
        deadline = time.monotonic() + 20
        while b"ready> " not in out and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 1)[0]:
                out += os.read(proc.stdout.fileno(), 64)
        assert out == b"ready> "
        status = open(f"/proc/{proc.pid}/status").read()
        assert re.search(r"^Seccomp:\s+2$", status, re.M)
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
        assert re.search(r"^Cpus_allowed_list:\s+0$", status, re.M)
        fds = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
        assert "/dev/kvm" not in fds
        assert any("kvm-vcpu" in fd for fd in fds)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()


def test_supervisor_memfd(bulkhead, inmates):
    fd = os.memfd_create("guest")
    try:
        os.ftruncate(fd, 8 << 20)
        r = monitor(bulkhead, inmates / "hello.elf", "--mem-fd", str(fd), memory="8M",
                    pass_fds=(fd,))
        assert r.rc == 0, r.err
        # The guest's image is in the supervisor's memfd: the loader wrote it there.
        img = hello_bytes(inmates)
        off, addr = first_load(img)
        assert os.pread(fd, 64, addr) == img[off:off + 64]
        bad = monitor(bulkhead, inmates / "hello.elf", "--mem-fd", str(fd), memory="16M",
                      pass_fds=(fd,))
        assert bad.rc == 2
        assert "--mem-fd" in bad.err and "exactly 16777216 bytes" in bad.err
    finally:
        os.close(fd)


IGNORE_GUEST = r"""
	.code64
	.section .text.entry
	.globl _start
_start:	mov $100, %ecx                     /* 100 reads of an unassigned port */
	xor %ebx, %ebx                     /* reads that did not see all-ones */
	mov $0x300, %dx
1:	in %dx, %al
	cmp $0xff, %al
	je 2f
	inc %ebx
2:	out %al, %dx                       /* and 100 writes */
	dec %ecx
	jnz 1b
	mov %ebx, %eax
	mov $0x600, %dx
	out %eax, %dx                      /* exit status: the reads that were wrong */
	hlt
"""


def test_ignored_violations_read_all_ones_and_are_reported_16_times(bulkhead, tmp_path):
    elf = build_guest(tmp_path, "ignore", IGNORE_GUEST, lang="asm")
    r = monitor(bulkhead, elf, "--on-violation", "ignore", memory="2M")
    assert r.rc == 0
    violations = [e for e in r.events if e["event"] == "fault"]
    assert len(violations) == 16
    assert all(v["action"] == "ignored" and v["address"] == "0x300" for v in violations)
    assert r.last()["event"] == "exit" and r.last()["status"] == 0
