#!/usr/bin/python3
"""Runs a system file with 'bulkhead run' inside the rig (make rig): a QEMU-TCG machine
with -cpu max, whose /dev/kvm is KVM on emulated SVM, with real hardware-virtualisation
semantics. Streams what bulkhead prints and exits with bulkhead's exit status, read from
the rig's 'rig: exit status N' console line; 125 when the rig itself fails.

The system file and every file it names (as 'bulkhead check --print' shows them) go into
the rig at the same absolute paths, in a cpio appended to the rig's initramfs; the build
tree's bulkhead, inmates and guest image are in the image already. A helper script
(--helper) can run inside the rig alongside 'bulkhead run' (to kill an I/O server, say).
See docs/rig.md.

Importable: host_kvm_boots_linux() and kvm_mode() tell tests whether this host's own
/dev/kvm can boot Linux ("direct") or they need the rig; run_rig() runs a system."""
import argparse
import base64
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RIG = ROOT / "build" / "rig"
BULKHEAD = ROOT / "build" / "bulkhead"

EXIT_RIG = 125              # the rig failed: no /dev/kvm, boot failure, timeout
STATUS_RE = re.compile(rb"^rig: exit status (\d+)\r?$", re.M)
READY = b"rig: kvm ready"
FAILED_RE = re.compile(rb"^rig: error: (.*?)\r?$", re.M)

# Kernel command line of the rig: quiet, and a panic ends QEMU (-no-reboot).
APPEND = ["console=ttyS0", "panic=-1", "quiet"]


# ---- which KVM: this host's, or the rig's ---------------------------------------------

def host_kvm_boots_linux(probe=False):
    """(True/False, reason): can this host's /dev/kvm boot an unmodified Linux kernel?

    The heuristic (no guest is started): False when /dev/kvm is missing or cannot be
    opened read-write; False when the host's KVM is PVM, the paravirtual KVM that runs
    bare-metal guests but no unmodified kernel (its module 'kvm_pvm' is loaded:
    /sys/module/kvm_pvm); False when the CPU shows neither 'svm' nor 'vmx' in
    /proc/cpuinfo (then KVM is not hardware-assisted); True otherwise.
    probe=True goes further when the heuristic says True: it boots the Linux guest image
    (make guest) under QEMU with -accel kvm -cpu host and runs 'true' (guest/run-qemu.py,
    20 s), and says True only if that exits 0."""
    kvm = "/dev/kvm"
    if not os.path.exists(kvm):
        return False, "no /dev/kvm"
    try:
        os.close(os.open(kvm, os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return False, f"cannot open /dev/kvm: {e.strerror}"
    if os.path.isdir("/sys/module/kvm_pvm"):
        return False, "the host's KVM is PVM (module kvm_pvm), which boots no unmodified Linux"
    try:
        flags = set()
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        flags = set()
    if not flags & {"svm", "vmx"}:
        return False, "the CPU has no svm/vmx flag: KVM here is not hardware-assisted"
    if not probe:
        return True, "hardware-assisted KVM (svm/vmx, not PVM)"
    r = subprocess.run([sys.executable, str(ROOT / "guest" / "run-qemu.py"), "--accel",
                        "kvm", "--cpu", "host", "--timeout", "20", "--silent", "--", "true"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if r.returncode != 0:
        return False, f"the guest image did not boot under -accel kvm (status {r.returncode})"
    return True, "the guest image booted under -accel kvm"


def kvm_mode(probe=False):
    """("direct" or "rig", reason): where a test should boot Linux on bulkhead's monitor.
    BULKHEAD_KVM_MODE=direct|rig in the environment overrides the heuristic."""
    forced = os.environ.get("BULKHEAD_KVM_MODE")
    if forced in ("direct", "rig"):
        return forced, "BULKHEAD_KVM_MODE"
    ok, why = host_kvm_boots_linux(probe)
    return ("direct" if ok else "rig"), why


# ---- the files a system names ----------------------------------------------------------

def _cpio_class():
    spec = importlib.util.spec_from_file_location("guest_build", ROOT / "guest" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Cpio


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def named_paths(system, bulkhead):
    """Every absolute path in 'bulkhead check --print' that names a regular file on this
    host (images, disks, kernels, ...), or (None, errors) when the file does not check."""
    r = subprocess.run([str(bulkhead), "check", "--print", str(system)],
                       capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip()
    paths = []

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and v.startswith("/") and os.path.isfile(v):
            paths.append(v)

    walk(json.loads(r.stdout))
    return sorted(set(paths)), ""


def overlay(system, paths, rig):
    """A cpio with the system file and the named files at their absolute paths, leaving
    out those the rig image holds already, unchanged; with the build-tree files of the
    image that changed since 'make rig' (a rebuilt bulkhead, say). Returns (bytes, notes)."""
    base = {}
    lst = rig / "files.txt"
    if lst.exists():
        for line in lst.read_text().splitlines():
            digest, _, path = line.partition(" ")
            base[path] = digest
    cp = _cpio_class()()
    notes = []
    for path, digest in base.items():
        if os.path.isfile(path) and _sha256(path) != digest:
            paths.append(path)
            notes.append(f"{path} changed since 'make rig': carrying the current one")
    for p in [str(system)] + paths:
        parts = p.split("/")
        for i, part in enumerate(parts):       # /a/b/../c needs /a/b inside the rig too
            if part == ".." and i > 1:
                cp.dir(os.path.normpath("/".join(parts[:i])).lstrip("/"))
        name = os.path.normpath(p)
        if base.get(name) and p != str(system) and _sha256(p) == base[name]:
            continue
        st = os.stat(p)
        with open(p, "rb") as f:
            cp.file(name.lstrip("/"), f.read(), st.st_mode & 0o777)
    return cp.finish(), notes


# ---- running the rig --------------------------------------------------------------------

def qemu_command(rig, initrd, system, mem, smp, cpu="max", append=(),
                 qemu="qemu-system-x86_64", helper=None):
    cmdline = APPEND + [f"rig.system64={base64.b64encode(str(system).encode()).decode()}"]
    if helper:
        cmdline.append(f"rig.helper64={base64.b64encode(str(helper).encode()).decode()}")
    return [qemu, "-accel", "tcg,thread=multi", "-machine", "pc", "-cpu", cpu,
            "-smp", str(smp), "-m", f"{mem}M",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-no-reboot", "-kernel", str(rig / "vmlinuz"), "-initrd", str(initrd),
            "-append", " ".join(cmdline + list(append))]


class RigError(Exception):
    """The rig itself failed (status 125)."""


def run_rig(system, timeout=300, mem=2048, smp=2, rig=RIG, bulkhead=BULKHEAD,
            out="stdout", verbose=False, cpu="max", append=(), helper=None):
    """Runs SYSTEM under 'bulkhead run' in the rig. Writes the console from the rig's
    'kvm ready' line on (all of it with verbose) to OUT, a binary stream ("stdout":
    sys.stdout's, None: nowhere). HELPER, a shell script, runs inside the rig alongside
    'bulkhead run' (docs/rig.md). Returns
    (bulkhead's exit status, the whole console) or raises RigError(message, console)."""
    system = pathlib.Path(os.path.abspath(system))
    if helper:
        helper = pathlib.Path(os.path.abspath(helper))
        if not helper.is_file():
            raise RigError(f"{helper}: no such file", b"")
    if out == "stdout":
        out = sys.stdout.buffer
    for f in (rig / "vmlinuz", rig / "initramfs.cpio"):
        if not f.is_file():
            raise RigError(f"{f} is missing: run 'make rig'", b"")
    if not system.is_file():
        raise RigError(f"{system}: no such file", b"")

    def note(msg):
        if out:
            out.write(f"rig: {msg}\n".encode())
            out.flush()

    paths, _ = named_paths(system, bulkhead)
    if paths is None:
        note("the system file does not check on the host; the rig's bulkhead will say why")
        paths = []
    if helper:
        paths.append(str(helper))
    image, notes = overlay(system, paths, rig)
    for n in notes:
        note(n)
    if len(image) > mem * (1 << 20) // 2:
        raise RigError(f"the files the system names take {len(image) >> 20} MiB, more "
                       f"than half the rig's {mem} MiB of RAM", b"")
    with tempfile.NamedTemporaryFile(prefix="rig-initrd-", suffix=".cpio") as initrd:
        with open(rig / "initramfs.cpio", "rb") as f:
            while chunk := f.read(1 << 22):
                initrd.write(chunk)
        initrd.write(image)
        initrd.flush()
        cmd = qemu_command(rig, initrd.name, system, mem, smp, cpu, append, helper=helper)
        console, timed_out = _run_qemu(cmd, timeout, out, verbose)
    found = STATUS_RE.findall(console)
    if found:
        return int(found[-1]), console
    failed = FAILED_RE.findall(console)
    if timed_out:
        why = f"no exit status after {timeout:g} s: QEMU killed"
    elif failed:
        why = failed[-1].decode(errors="replace")
    elif READY not in console:
        why = "the rig did not boot (no 'rig: kvm ready' line)"
    else:
        why = "the rig ended without an exit status (kernel panic or power loss?)"
    raise RigError(why, console)


def _run_qemu(cmd, timeout, out, verbose):
    """Runs QEMU, echoing the console from the ready line on; returns (console, timed
    out)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    console = bytearray()
    echoed = 0 if verbose else None     # how much of console went to OUT
    done = False                        # the status line went to OUT
    deadline = time.monotonic() + timeout if timeout else None
    fd = proc.stdout.fileno()
    timed_out = False
    try:
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            console += chunk
            if not out or done:
                continue
            start = echoed
            if start is None:           # not echoing yet: wait for the ready line
                start = console.find(READY)
                if start < 0:
                    continue
            # Stop echoing after the status line: the rest is the power going off. Search
            # from the start of the line: the status line may arrive in pieces.
            m = STATUS_RE.search(console, console.rfind(b"\n", 0, start) + 1)
            end = m.end() if m else len(console)
            out.write(bytes(console[start:end]).replace(b"\r", b"") + (b"\n" if m else b""))
            out.flush()
            echoed, done = end, bool(m)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return bytes(console), timed_out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="exit status: bulkhead's; 125 when the rig failed "
                                        "(no /dev/kvm, boot failure, timeout)")
    ap.add_argument("system", nargs="?", help="the system file")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds before QEMU is killed (default 300; 0: never)")
    ap.add_argument("--mem", type=int, default=2048, help="rig RAM in MiB (default 2048)")
    ap.add_argument("--smp", type=int, default=2, help="rig CPUs (default 2)")
    ap.add_argument("--rig", type=pathlib.Path, default=RIG,
                    help="the rig image's directory (default build/rig)")
    ap.add_argument("--bulkhead", type=pathlib.Path, default=BULKHEAD,
                    help="host binary for 'check --print' (default build/bulkhead)")
    ap.add_argument("--cpu", default="max",
                    help="QEMU CPU model (default max: the one with SVM)")
    ap.add_argument("--append", action="append", default=[],
                    help="more rig kernel command line")
    ap.add_argument("--helper", type=pathlib.Path,
                    help="a shell script to run inside the rig alongside 'bulkhead run' "
                         "(in the system's directory, RIG_SYSTEM set; stopped when "
                         "bulkhead ends)")
    ap.add_argument("--verbose", action="store_true",
                    help="the whole console, boot included")
    ap.add_argument("--print-cmd", action="store_true",
                    help="print the QEMU command line (initrd: the rig's, without the "
                         "system's files) and exit")
    ap.add_argument("--mode", action="store_true",
                    help="say whether this host's /dev/kvm boots Linux ('direct') or "
                         "the rig is needed ('rig'), and why, then exit")
    a = ap.parse_args()
    if a.mode:
        mode, why = kvm_mode()
        print(f"{mode} ({why})")
        return 0
    if not a.system:
        ap.error("a system file is needed")
    if a.print_cmd:
        print(shlex.join(qemu_command(a.rig, a.rig / "initramfs.cpio",
                                      pathlib.Path(os.path.abspath(a.system)), a.mem,
                                      a.smp, a.cpu, a.append, helper=a.helper and
                                      pathlib.Path(os.path.abspath(a.helper)))))
        return 0
    start = time.monotonic()
    try:
        status, _ = run_rig(a.system, a.timeout, a.mem, a.smp, a.rig, a.bulkhead,
                            verbose=a.verbose, cpu=a.cpu, append=a.append,
                            helper=a.helper)
    except RigError as e:
        msg, console = e.args
        if console and not a.verbose:
            sys.stderr.write("rig: the console:\n")
            sys.stderr.write(console.decode(errors="replace").replace("\r\n", "\n"))
        print(f"rig/run.py: the rig failed: {msg}", file=sys.stderr)
        return EXIT_RIG
    print(f"rig/run.py: bulkhead exited with status {status} "
          f"({time.monotonic() - start:.1f} s in the rig)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
