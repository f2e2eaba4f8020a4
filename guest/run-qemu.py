#!/usr/bin/python3
"""Boots bulkhead's Linux guest image (make guest) under qemu-system-x86_64, runs one
command in it and exits with the command's exit status, read from the guest's last
'bh: exit status N' console line. Devices: vhost-user blk/net/rng (any vhost-user
backend: bulkhead's I/O servers, qemu-storage-daemon) and QEMU's built-in virtio-blk and
virtio-net on a TAP for baselines. See docs/guest.md."""
import argparse
import base64
import os
import pathlib
import re
import select
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUEST = ROOT / "build" / "guest"
STATUS_RE = re.compile(rb"bh: exit status (\d+)")

EXIT_TIMEOUT = 124        # as timeout(1)
EXIT_NO_STATUS = 125
CMDLINE_MAX = 2047        # x86 COMMAND_LINE_SIZE minus the terminating NUL      # QEMU failed or the guest died without reporting a status


def split_mac(spec, index):
    """'PATH[,mac=MAC]' -> (PATH, MAC); MACs default to 52:54:00:b4:00:INDEX."""
    path, sep, mac = spec.rpartition(",mac=")
    if not sep:
        return spec, f"52:54:00:b4:00:{index:02x}"
    return path, mac


def qemu_command(a, run_cmd):
    mem = f"{a.mem}M"
    append = ["console=ttyS0", "panic=-1"]
    if not a.verbose:
        append.append("quiet")
    if a.ip:
        append.append(f"bh.ip={a.ip}")
    if a.gw:
        append.append(f"bh.gw={a.gw}")
    if run_cmd is not None:
        append.append("bh.run64=" + base64.b64encode(run_cmd.encode()).decode())
    if a.append:
        append.append(a.append)
    if len(" ".join(append)) > CMDLINE_MAX:
        raise SystemExit(f"run-qemu: the kernel command line would be "
                         f"{len(' '.join(append))} bytes, more than Linux takes "
                         f"({CMDLINE_MAX}); put a long command in a script on a disk")
    cmd = [a.qemu, "-accel", a.accel, "-machine", f"{a.machine},memory-backend=ram",
           "-cpu", a.cpu, "-smp", str(a.smp), "-m", mem,
           # Shared, file-backed guest RAM: what vhost-user backends map.
           "-object", f"memory-backend-memfd,id=ram,size={mem},share=on",
           "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-kernel", str(a.kernel), "-initrd", str(a.initrd),
           "-append", " ".join(append)]
    reconnect = f",reconnect={a.reconnect}" if a.reconnect else ""
    for i, sock in enumerate(a.blk):
        cmd += ["-chardev", f"socket,id=vublk{i},path={sock}{reconnect}",
                "-device", f"vhost-user-blk-pci,chardev=vublk{i},num-queues=1"]
    for i, spec in enumerate(a.net):
        sock, mac = split_mac(spec, i)
        cmd += ["-chardev", f"socket,id=vunet{i},path={sock}{reconnect}",
                "-netdev", f"vhost-user,id=net{i},chardev=vunet{i}",
                "-device", f"virtio-net-pci,netdev=net{i},mac={mac}"]
    for i, sock in enumerate(a.rng):
        cmd += ["-chardev", f"socket,id=vurng{i},path={sock}{reconnect}",
                "-device", f"vhost-user-rng-pci,chardev=vurng{i}"]
    for i, disk in enumerate(a.disk):
        cmd += ["-drive", f"file={disk},format=raw,if=none,id=disk{i},cache=none,aio=threads",
                "-device", f"virtio-blk-pci,drive=disk{i}"]
    for i, spec in enumerate(a.tap):
        ifname, mac = split_mac(spec, 0x80 + i)
        cmd += ["-netdev", f"tap,id=tap{i},ifname={ifname},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=tap{i},mac={mac}"]
    if a.user_net:
        cmd += ["-netdev", "user,id=user0",
                "-device", "virtio-net-pci,netdev=user0,mac=52:54:00:b4:00:ff"]
    if a.builtin_rng:
        cmd += ["-device", "virtio-rng-pci"]
    return cmd


def run(cmd, timeout, echo, interactive):
    """Runs QEMU, echoing its output; returns (guest status or None, timed out, output)."""
    proc = subprocess.Popen(cmd, stdin=None if interactive else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = bytearray()
    deadline = time.monotonic() + timeout if timeout else None
    fd = proc.stdout.fileno()
    timed_out = False
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
        out += chunk
        if echo:
            sys.stdout.buffer.write(chunk.replace(b"\r\n", b"\n"))
            sys.stdout.buffer.flush()
    if timed_out:
        proc.kill()
    proc.wait()
    found = STATUS_RE.findall(bytes(out))
    return (int(found[-1]) if found else None), timed_out, bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="exit status: the guest command's, 124 on timeout, "
                                        "125 when QEMU or the guest ended without one")
    ap.add_argument("command", nargs=argparse.REMAINDER,
                    help="shell command run in the guest (words joined by spaces); "
                         "none: an interactive shell on this terminal")
    ap.add_argument("--kernel", default=GUEST / "vmlinuz", type=pathlib.Path)
    ap.add_argument("--initrd", default=GUEST / "initramfs.cpio.gz", type=pathlib.Path)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--accel", default="tcg", help="tcg (default) or kvm")
    ap.add_argument("--machine", default="pc", help="machine type (default pc)")
    ap.add_argument("--cpu", default="max", help="CPU model (default max)")
    ap.add_argument("--mem", default=256, type=int, help="guest RAM in MiB (default 256)")
    ap.add_argument("--smp", default=1, type=int, help="vCPUs (default 1)")
    ap.add_argument("--ip", help="eth0 address, ADDR/PREFIX (bh.ip=)")
    ap.add_argument("--gw", help="default gateway (bh.gw=)")
    ap.add_argument("--blk", action="append", default=[], metavar="SOCKET",
                    help="vhost-user-blk-pci on this backend socket (repeatable)")
    ap.add_argument("--net", action="append", default=[], metavar="SOCKET[,mac=MAC]",
                    help="virtio-net-pci on -netdev vhost-user (repeatable)")
    ap.add_argument("--rng", action="append", default=[], metavar="SOCKET",
                    help="vhost-user-rng-pci on this backend socket")
    ap.add_argument("--reconnect", type=int, metavar="SECONDS",
                    help="vhost-user sockets reconnect after this many seconds when "
                         "the backend goes away")
    ap.add_argument("--disk", action="append", default=[], metavar="FILE",
                    help="QEMU's built-in virtio-blk on a raw file (baselines)")
    ap.add_argument("--tap", action="append", default=[], metavar="IFNAME[,mac=MAC]",
                    help="QEMU's built-in virtio-net on an existing TAP (baselines)")
    ap.add_argument("--user-net", action="store_true",
                    help="QEMU's user-mode network (10.0.2.0/24, gateway 10.0.2.2)")
    ap.add_argument("--builtin-rng", action="store_true", help="QEMU's own virtio-rng-pci")
    ap.add_argument("--append", help="more kernel command line")
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds before QEMU is killed (default 120; 0: never)")
    ap.add_argument("--verbose", action="store_true", help="kernel messages (no 'quiet')")
    ap.add_argument("--silent", action="store_true", help="do not echo the console")
    ap.add_argument("--print-cmd", action="store_true",
                    help="print the QEMU command line and exit")
    a = ap.parse_args()

    words = a.command[1:] if a.command[:1] == ["--"] else a.command
    run_cmd = " ".join(words) if words else None
    cmd = qemu_command(a, run_cmd)
    if a.print_cmd:
        print(shlex.join(cmd))
        return 0
    for f in (a.kernel, a.initrd):
        if not f.exists():
            print(f"run-qemu: {f} is missing: run 'make guest'", file=sys.stderr)
            return EXIT_NO_STATUS
    status, timed_out, _ = run(cmd, a.timeout, not a.silent, run_cmd is None)
    if timed_out:
        print(f"run-qemu: no exit after {a.timeout:g} s, QEMU killed", file=sys.stderr)
        return EXIT_TIMEOUT
    if status is None:
        print("run-qemu: the guest reported no exit status", file=sys.stderr)
        return EXIT_NO_STATUS
    return status


if __name__ == "__main__":
    sys.exit(main())
