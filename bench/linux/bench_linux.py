#!/usr/bin/python3
"""bench/linux: two Linux partitions (the `make guest` image, QEMU TCG, one vCPU each,
pinned to CPUs 0 and 1) under `bulkhead run`, their NICs and a disk served by bulkhead's
net and blk I/O servers over vhost-user; against the same guests in plain QEMU with its
built-in virtio-net on a TAP each, joined by a Linux bridge, and its built-in virtio-blk
on the same image file: the set-up a user would otherwise pick. A third target, "built-in
matched", is the built-in NIC restricted to what bulkhead's NIC gets (INTx: see
MATCHED), for networking only: it shows what the difference is made of.
The bridge and TAPs live in a network namespace this bench makes and removes; only
10.0.0.1 and 10.0.0.2 talk, inside it (root needed).

One boot per target and run does everything: the first guest pings the second
(PINGS pings each of 56, 1000 and 1900 bytes, the last fragmented; min/avg/max RTT,
lost), runs iperf3 against it for IPERF_S seconds each way (client->server, then -R;
the first second omitted), then writes and reads DD_MIB MiB sequentially with dd
(64 KiB blocks, O_DIRECT in the guest). RUNS runs, rotating which target goes first;
figures are medians, ratios are bulkhead / built-in from this invocation.
Writes build/bench/linux.json. See docs/benchmarks.md."""
import base64
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = str(BUILD / "bulkhead")
GUEST = BUILD / "guest"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PINGS = int(os.environ.get("BENCH_PINGS", "50"))
IPERF_S = int(os.environ.get("BENCH_IPERF_S", "4"))
DD_MIB = int(os.environ.get("BENCH_DD_MIB", "128"))
SIZES = (56, 1000, 1900)
MEM = "256M"
BOOT_TIMEOUT = 240
MACS = ("02:62:68:00:00:01", "02:62:68:00:00:02")

# The client (10.0.0.1): pings, iperf3 both ways, then dd on its disk. Lines the bench
# reads start with a tag: P (ping summary), I (iperf3 receiver line), D (dd: 64 KiB
# blocks, then the kernel's monotonic clock in ns before the write, between write and
# read, and after the read; busybox's dd prints no rate and its date no nanoseconds).
CLIENT = (
    "until ping -c 1 -W 1 10.0.0.2 >/dev/null; do :; done; "
    "for s in " + " ".join(map(str, SIZES)) + "; do "
    "echo P $s $(ping -q -c {pings} -i 0.05 -W 2 -s $s 10.0.0.2 | tail -2); done; "
    "for d in fwd rev; do o=''; [ $d = rev ] && o=-R; "
    "until iperf3 -c 10.0.0.2 -t {iperf} -O 1 $o >/tmp/o 2>&1; do "
    "grep -q 'unable to connect' /tmp/o || {{ cat /tmp/o; exit 1; }}; sleep 0.2; done; "
    "echo I $d $(grep receiver /tmp/o); done; ")
DD = (
    "t() {{ sed -n '3s/^now at \\([0-9]*\\) nsecs$/\\1/p;3q' /proc/timer_list; }}; "
    "a=$(t); dd if=/dev/zero of=/dev/vda bs=64k count={blocks} oflag=direct conv=fsync "
    "2>/dev/null; b=$(t); dd if=/dev/vda of=/dev/null bs=64k count={blocks} iflag=direct "
    "2>/dev/null; c=$(t); echo D {blocks} $a $b $c")
# What bulkhead's NIC lacks, applied to the built-in one for the "matched" baseline
# (networking only): INTx instead of MSI-X (qemu.c sets vectors=0 under TCG, where QEMU
# 7.2 crashes starting a vhost-user NIC with MSI-X). Checksum and segmentation offloads
# are on for both since the net server offers them.
MATCHED = ",vectors=0"
SERVER = "iperf3 -s -1 >/dev/null && iperf3 -s -1 >/dev/null"

PING_RE = re.compile(r"^P (\d+) .*?(\d+) packets transmitted, (\d+) packets received.*"
                     r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")
IPERF_RE = re.compile(r"^I (fwd|rev) .* ([\d.]+) (\w?)bits/sec .*receiver")
DD_RE = re.compile(r"^D (\d+) (\d+) (\d+) (\d+)$")


def run64(cmd):
    return "bh.run64=" + base64.b64encode(cmd.encode()).decode()


def client_cmd(dd=True):
    return (CLIENT + (DD if dd else "")).format(pings=PINGS, iperf=IPERF_S,
                                                blocks=DD_MIB * 16)


def parse(lines, what, dd=True):
    """The figures of one run from the client's console lines."""
    r = {"ping": {}, "iperf_mbps": {}, "dd_mbps": {}}
    scale = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}
    for l in lines:
        if m := PING_RE.search(l):
            r["ping"][m.group(1)] = {"min_ms": float(m.group(4)), "avg_ms": float(m.group(5)),
                                     "max_ms": float(m.group(6)),
                                     "lost": int(m.group(2)) - int(m.group(3))}
        elif m := IPERF_RE.search(l):
            r["iperf_mbps"][m.group(1)] = float(m.group(2)) * scale[m.group(3)]
        elif m := DD_RE.search(l):
            size, a, b, c = (int(g) for g in m.groups())
            r["dd_mbps"] = {"write": round(size * 65536 / ((b - a) / 1e3), 1),
                            "read": round(size * 65536 / ((c - b) / 1e3), 1)}
    if not dd:
        del r["dd_mbps"]
    if len(r["ping"]) != len(SIZES) or len(r["iperf_mbps"]) != 2 or \
            len(r.get("dd_mbps", "dd")) != 2:
        raise RuntimeError(f"{what}: the guest did not report every figure:\n" +
                           "\n".join(lines[-60:]))
    return r


# ---- bulkhead: bulkhead run, the net and blk I/O servers --------------------------------

def bulkhead_run(tmp, disk):
    kernel, initrd = GUEST / "vmlinuz", GUEST / "initramfs.cpio.gz"

    def part(name, cpu, ip, cmd, mac, blk):
        devs = f"      - {{type: net, network: lan0, mac: \"{mac}\"}}\n"
        if blk:
            devs += "      - {type: blk, server: blkio, disk: d0}\n"
        return (f"  - name: {name}\n    kernel: {kernel}\n    initrd: {initrd}\n"
                f"    cmdline: \"bh.ip={ip}/24 {run64(cmd)}\"\n    engine: qemu\n"
                f"    cpus: [{cpu}]\n    memory: {MEM}\n    devices:\n{devs}")
    path = pathlib.Path(tmp) / "linux-bench.yaml"
    path.write_text(
        f"system: {{name: linuxbench, cpus: [0, 1], log_dir: {tmp}/log}}\n"
        "io_servers:\n  - {name: netio, class: net}\n"
        f"  - name: blkio\n    class: blk\n    disks:\n"
        f"      - {{name: d0, file: {disk}, size: {DD_MIB}M}}\n"
        "networks:\n  - {name: lan0, server: netio}\n"
        "partitions:\n" + part("lx1", 0, "10.0.0.1", client_cmd(), MACS[0], True) +
        part("lx2", 1, "10.0.0.2", SERVER, MACS[1], False))
    env = {**os.environ, "BH_QEMU_ACCEL": "tcg"}
    r = subprocess.run([BULKHEAD, "run", str(path)], capture_output=True, text=True,
                       timeout=BOOT_TIMEOUT, env=env)
    lines = [l[11:] for l in r.stdout.splitlines() if l.startswith("lx1      | ")]
    if r.returncode != 0:
        raise RuntimeError(f"bulkhead run failed ({r.returncode}):\n{r.stdout[-4000:]}\n"
                           f"{r.stderr[-3000:]}")
    out = parse(lines, "bulkhead")
    with open(pathlib.Path(tmp) / "log" / "events.jsonl") as f:
        ev = [json.loads(l) for l in f]
    ports = [e for e in ev if e["event"] == "counters"]
    out["switch_drops"] = sum(p.get("drop_spoof", 0) + p.get("drop_malformed", 0)
                              for p in ports)
    return out


# ---- the baseline: QEMU's built-in virtio-net on TAPs + a bridge, virtio-blk ------------

def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Netns:
    """A network namespace with a bridge and two TAPs in it: nothing outside sees them."""

    def __init__(self):
        self.name = f"bhlinux{os.getpid()}"

    def __enter__(self):
        ip("netns", "add", self.name)
        try:
            ip("-n", self.name, "link", "add", "br0", "type", "bridge")
            for tap in ("tap0", "tap1"):
                ip("-n", self.name, "tuntap", "add", "dev", tap, "mode", "tap")
                ip("-n", self.name, "link", "set", tap, "master", "br0")
                ip("-n", self.name, "link", "set", tap, "up")
            ip("-n", self.name, "link", "set", "br0", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def qemu_builtin(ns, cpu, ip_addr, cmd, tap, mac, disk, log, matched):
    """One guest in plain QEMU, as qemu.c starts it but with QEMU's own devices; matched:
    its NIC restricted to what bulkhead's gets (below)."""
    append = f"console=ttyS0 panic=-1 quiet bh.ip={ip_addr}/24 {run64(cmd)}"
    argv = ["ip", "netns", "exec", ns, "taskset", "-c", str(cpu), "qemu-system-x86_64",
            "-accel", "tcg", "-cpu", "max", "-smp", "1", "-machine", "pc", "-m", MEM,
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "stdio",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac}{MATCHED if matched else ''}"]
    if disk:
        argv += ["-drive", f"file={disk},format=raw,if=none,id=d0",
                 "-device", "virtio-blk-pci,drive=d0"]
    argv += ["-kernel", str(GUEST / "vmlinuz"), "-initrd", str(GUEST / "initramfs.cpio.gz"),
             "-append", append]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)


def builtin_run(tmp, disk, matched=False):
    logs = [pathlib.Path(tmp) / f"builtin-lx{i}.log" for i in (1, 2)]
    procs = []
    with Netns() as ns:
        try:
            with open(logs[0], "w") as l1, open(logs[1], "w") as l2:
                procs.append(qemu_builtin(ns.name, 0, "10.0.0.1", client_cmd(not matched),
                                          "tap0", MACS[0], None if matched else disk, l1,
                                          matched))
                procs.append(qemu_builtin(ns.name, 1, "10.0.0.2", SERVER, "tap1",
                                          MACS[1], None, l2, matched))
                deadline = time.monotonic() + BOOT_TIMEOUT
                for p in procs:
                    p.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    lines = [l.rstrip("\r") for l in logs[0].read_text(errors="replace").splitlines()]
    status = [l for l in lines if l.startswith("bh: exit status")]
    if status != ["bh: exit status 0"]:
        raise RuntimeError("built-in QEMU guest failed:\n" + "\n".join(lines[-60:]))
    return parse(lines, "qemu built-in", dd=not matched)


# ---- figures ----------------------------------------------------------------------------

def median_of(runs):
    """The median of every figure over the runs (same shape as one run's figures)."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_of([r[k] for r in runs]) for k in first}
    return statistics.median(runs)


def ratio(a, b):
    return round(a / b, 2) if b else None


def main():
    if os.geteuid() != 0:
        sys.exit("bench/linux: needs root (TAP, bridge and network namespace for the "
                 "baseline)")
    # make guest's builder: a no-op in under a second when the image is up to date
    r = subprocess.run([sys.executable, str(ROOT / "guest" / "build.py"), "--out", str(GUEST)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"bench/linux: the guest image could not be built:\n{r.stdout}{r.stderr}")
    for tool in ("qemu-system-x86_64", "ip", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench/linux: {tool} is missing")
    targets = ("bulkhead", "qemu_builtin", "qemu_builtin_matched")
    samples = {t: [] for t in targets}
    drops = 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        disk = pathlib.Path(tmp) / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(DD_MIB << 20)
        for run in range(RUNS):
            for target in targets[run % 3:] + targets[:run % 3]:     # rotate who goes first
                if target == "bulkhead":
                    r = bulkhead_run(tmp, disk)
                    drops += r.pop("switch_drops")
                    shutil.rmtree(pathlib.Path(tmp) / "log", ignore_errors=True)
                else:
                    r = builtin_run(tmp, disk, matched=target.endswith("matched"))
                samples[target].append(r)
            print(f"  run {run + 1}/{RUNS} done ({time.monotonic() - t0:.0f} s)",
                  file=sys.stderr)
    med = {t: median_of(v) for t, v in samples.items()}
    bh, qb, qm = (med[t] for t in targets)
    iperf = {t: m["iperf_mbps"]["fwd"] + m["iperf_mbps"]["rev"] for t, m in med.items()}
    dd_time = {t: DD_MIB * 1.048576 * (1 / m["dd_mbps"]["write"] + 1 / m["dd_mbps"]["read"])
               for t, m in med.items() if "dd_mbps" in m}
    lost = {t: sum(r["ping"][str(s)]["lost"] for r in samples[t] for s in SIZES)
            for t in samples}
    result = {
        **med,
        # both directions together: the sum of the two Mbit/s
        "iperf_vs_qemu_builtin": ratio(iperf["bulkhead"], iperf["qemu_builtin"]),
        "iperf_fwd_vs_qemu_builtin": ratio(bh["iperf_mbps"]["fwd"], qb["iperf_mbps"]["fwd"]),
        "iperf_rev_vs_qemu_builtin": ratio(bh["iperf_mbps"]["rev"], qb["iperf_mbps"]["rev"]),
        "iperf_vs_qemu_builtin_matched": ratio(iperf["bulkhead"],
                                               iperf["qemu_builtin_matched"]),
        # a write then a read of DD_MIB each: total bytes over total time
        "dd_vs_qemu_builtin": ratio(dd_time["qemu_builtin"], dd_time["bulkhead"]),
        "dd_write_vs_qemu_builtin": ratio(bh["dd_mbps"]["write"], qb["dd_mbps"]["write"]),
        "dd_read_vs_qemu_builtin": ratio(bh["dd_mbps"]["read"], qb["dd_mbps"]["read"]),
        "pings_lost": lost,
        "switch_spoof_malformed_drops": drops,
        "targets": {"iperf_vs_qemu_builtin": 1.0, "dd_vs_qemu_builtin": 1.0,
                    "pings_lost": 0},
        "runs": RUNS, "pings_per_size": PINGS, "iperf_seconds": IPERF_S, "dd_mib": DD_MIB,
        "accel": "tcg", "seconds": round(time.monotonic() - t0),
        "samples": samples,
    }
    out = BUILD / "bench" / "linux.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    def rtt(m, size):
        p = m["ping"][str(size)]
        return f"{p['min_ms']:.2f}/{p['avg_ms']:.2f}/{p['max_ms']:.2f}"
    print(f"bench/linux (median of {RUNS} runs; two Linux guests, QEMU TCG; "
          f"{PINGS} pings per size, iperf3 {IPERF_S} s, dd {DD_MIB} MiB)")
    print(f"  {'':32}{'bulkhead':>18}{'QEMU built-in':>18}{'built-in matched':>18}")
    for size in SIZES:
        print(f"  {f'{size}-byte ping min/avg/max (ms)':32}{rtt(bh, size):>18}"
              f"{rtt(qb, size):>18}{rtt(qm, size):>18}")
    for k, label in (("fwd", "iperf3 lx1->lx2 (Mbit/s)"), ("rev", "iperf3 -R lx2->lx1 (Mbit/s)")):
        print(f"  {label:32}{bh['iperf_mbps'][k]:>18.1f}{qb['iperf_mbps'][k]:>18.1f}"
              f"{qm['iperf_mbps'][k]:>18.1f}")
    for k in ("write", "read"):
        print(f"  {f'dd 64 KiB O_DIRECT {k} (MB/s)':32}{bh['dd_mbps'][k]:>18.1f}"
              f"{qb['dd_mbps'][k]:>18.1f}{'-':>18}")
    print(f"  pings lost: {', '.join(f'{t} {n}' for t, n in lost.items())} "
          f"(of {RUNS * PINGS * len(SIZES)} each); switch spoof/malformed drops {drops}")
    print(f"  iperf_vs_qemu_builtin {result['iperf_vs_qemu_builtin']} (target >= 1.0; "
          f"vs matched {result['iperf_vs_qemu_builtin_matched']}), "
          f"dd_vs_qemu_builtin {result['dd_vs_qemu_builtin']} (target >= 1.0)")
    print(f"  written to {out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
