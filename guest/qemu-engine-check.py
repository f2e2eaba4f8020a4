#!/usr/bin/python3
"""Checks the QEMU command line docs/guest.md proposes for 'engine: qemu' partitions by
doing what the supervisor would do: guest RAM in a sealed memfd passed by fd, serial
console and QMP on socketpairs passed by fd, each vhost-user device on a listening
socket passed by fd (QEMU is the vhost-user server; the supervisor connects the I/O
server to it), bulkhead's blk and rng servers on --conn fds. The guest writes and
verifies data while the blk server is killed and restarted. Exit 0 when all of it holds.

usage: guest/qemu-engine-check.py [--bulkhead BIN] [--print-cmd]"""
import argparse
import atexit
import base64
import ctypes
import fcntl
import hashlib
import json
import mmap
import os
import pathlib
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUEST = ROOT / "build" / "guest"
MEM = 256 << 20
F_ADD_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 1033, 1, 2, 4
PR_SET_PDEATHSIG = 1
LOG = tempfile.TemporaryFile()     # QEMU's and the servers' stderr
ROUNDS = 10

# Round i writes 2 MiB of fresh random data at 2*i MiB, reads it back with O_DIRECT.
GUEST_SCRIPT = (
    "echo rng $(cat /sys/class/misc/hw_random/rng_current) "
    "$(head -c 4096 /dev/hwrng | gzip -c | wc -c); "
    f"i=0; while [ $i -lt {ROUNDS} ]; do "
    "dd if=/dev/urandom of=/tmp/w bs=64k count=32 2>/dev/null; a=$(md5sum </tmp/w); "
    "dd if=/tmp/w of=/dev/vda bs=64k count=32 seek=$((i*32)) oflag=direct 2>/dev/null "
    "|| echo write-error $i; "
    "b=$(dd if=/dev/vda bs=64k count=32 skip=$((i*32)) iflag=direct 2>/dev/null | md5sum); "
    "[ \"$a\" = \"$b\" ] && echo round $i ok ${a%% *} || echo round $i BAD; i=$((i+1)); done; "
    "read -t 30 line; echo console-input:$line; "
    "dmesg | grep -iE 'I/O error|blk_update_request' && exit 1; exit 0")


def pdeathsig():
    # QEMU never outlives the supervisor: SIGKILL when the parent thread dies.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def spawn_server(bulkhead, cls, sock, extra, partition="linux"):
    """An I/O server on one connected socket, as 'bulkhead run' starts them."""
    fds = [sock.fileno()]
    spec = f"fd={sock.fileno()},partition={partition}"
    if "disk" in extra:
        dfd = os.open(extra["disk"], os.O_RDWR)
        fds.append(dfd)
        spec += f",disk-fd={dfd}"
    p = subprocess.Popen([bulkhead, "ioserver", cls, "--conn", spec], pass_fds=fds,
                         stdin=subprocess.DEVNULL, stderr=LOG)
    for fd in fds:
        os.close(fd)
    sock.detach()
    return p


def qemu_command(ram, ser, qmp, blk, rng, append):
    return ["qemu-system-x86_64",
            "-name", "linux,debug-threads=on",
            "-accel", "tcg", "-cpu", "max", "-smp", "1",
            "-machine", "pc,memory-backend=ram", "-m", f"{MEM >> 20}M",
            "-object", f"memory-backend-file,id=ram,size={MEM},"
                       f"mem-path=/proc/self/fd/{ram},share=on",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
                        "resourcecontrol=deny",
            "-chardev", f"socket,id=ser0,fd={ser}", "-serial", "chardev:ser0",
            "-chardev", f"socket,id=qmp0,fd={qmp}", "-mon", "chardev=qmp0,mode=control",
            "-chardev", f"socket,id=vu0,fd={blk},server=on",
            "-device", "vhost-user-blk-pci,chardev=vu0,num-queues=1",
            "-chardev", f"socket,id=vu1,fd={rng},server=on",
            "-device", "vhost-user-rng-pci,chardev=vu1",
            "-kernel", str(GUEST / "vmlinuz"), "-initrd", str(GUEST / "initramfs.cpio.gz"),
            "-append", append]


def qmp_call(f, cmd):
    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            return msg


def fail(msg, out=b""):
    sys.stdout.write(out.decode(errors="replace"))
    LOG.seek(0)
    sys.stdout.write("\n--- QEMU and I/O server messages:\n" + LOG.read().decode(errors="replace"))
    print(f"\nqemu-engine-check: FAILED: {msg}")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bulkhead", default=str(ROOT / "build" / "bulkhead"))
    ap.add_argument("--print-cmd", action="store_true", help="print the command line and exit")
    a = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bh-qemu-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.chmod(tmp, 0o700)
    disk = tmp / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)

    # What the supervisor allocates up front.
    ram = os.memfd_create("linux-ram", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(ram, MEM)
    fcntl.fcntl(ram, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
    ser_sup, ser_q = socket.socketpair()
    qmp_sup, qmp_q = socket.socketpair()
    blk_listen = listener(tmp / "vu-blk")
    rng_listen = listener(tmp / "vu-rng")

    append = ("console=ttyS0 panic=-1 quiet bh.run64="
              + base64.b64encode(GUEST_SCRIPT.encode()).decode())
    cmd = qemu_command(ram, ser_q.fileno(), qmp_q.fileno(), blk_listen.fileno(),
                       rng_listen.fileno(), append)
    if a.print_cmd:
        print(shlex.join(cmd))
        return 0

    # I/O servers first: their connections wait in the listening sockets' backlogs.
    blk = spawn_server(a.bulkhead, "blk", connect(tmp / "vu-blk"), {"disk": disk})
    rng = spawn_server(a.bulkhead, "rng", connect(tmp / "vu-rng"), {})
    fds = [ram, ser_q.fileno(), qmp_q.fileno(), blk_listen.fileno(), rng_listen.fileno()]
    t0 = time.monotonic()
    qemu = subprocess.Popen(cmd, pass_fds=fds, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=LOG,
                            preexec_fn=pdeathsig)
    for s in (ser_q, qmp_q):
        s.close()

    qf = qmp_sup.makefile("rwb", buffering=0)
    json.loads(qf.readline())                       # the greeting
    qmp_call(qf, "qmp_capabilities")
    status = qmp_call(qf, "query-status")["return"]["status"]

    out, restarted, typed = b"", False, False
    deadline = time.monotonic() + 120
    while b"Power down" not in out:
        r, _, _ = select.select([ser_sup], [], [], max(0, deadline - time.monotonic()))
        if not r:
            qemu.kill()
            fail("no power-off within 120 s", out)
        chunk = ser_sup.recv(65536)
        if not chunk:
            break
        out += chunk
        if not restarted and b"round 2 ok" in out:
            blk.kill()                               # the blk server crashes mid-loop ...
            blk.wait()
            blk = spawn_server(a.bulkhead, "blk", connect(tmp / "vu-blk"), {"disk": disk})
            restarted = time.monotonic() - t0        # ... and the supervisor restarts it
        if not typed and re.search(rb"round %d [^\n]*\n" % (ROUNDS - 1), out):
            ser_sup.sendall(b"hello-from-the-supervisor\n")
            typed = True
    rc = qemu.wait(timeout=30)
    elapsed = time.monotonic() - t0
    text = out.decode(errors="replace").replace("\r", "")
    m = re.search(r"bh: exit status (\d+)", text)
    for p in (blk, rng):
        p.terminate()
        p.wait()
    data = disk.read_bytes()

    ok = re.findall(r"^round (\d+) ok ([0-9a-f]{32})$", text, re.M)
    problems = []
    if not restarted:
        problems.append("the blk server was never restarted")
    if status != "running":
        problems.append(f"QMP query-status said {status}")
    if rc != 0:
        problems.append(f"QEMU exited {rc}")
    if not m or m.group(1) != "0":
        problems.append("the guest did not report exit status 0")
    if len(ok) != ROUNDS:
        problems.append(f"{len(ok)} of {ROUNDS} rounds verified")
    for i, digest in ok:
        i = int(i)
        if hashlib.md5(data[i * 2 << 20:(i + 1) * 2 << 20]).hexdigest() != digest:
            problems.append(f"round {i}: the disk file holds other bytes")
    if not re.search(r"^rng virtio_rng\.0 (\d+)$", text, re.M):
        problems.append("no virtio_rng.0 from the rng server")
    if "console-input:hello-from-the-supervisor" not in text:
        problems.append("console input did not reach the guest")
    mm = mmap.mmap(ram, MEM, prot=mmap.PROT_READ)
    if mm.find(b"bh_arg() {") < 0:
        problems.append("the guest's RAM is not the supervisor's memfd")
    if problems:
        fail("; ".join(problems), out)
    sys.stdout.write(text)
    print(f"\nqemu-engine-check: ok: {ROUNDS} rounds verified, blk server restarted at "
          f"{restarted:.1f} s, power-off after {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
