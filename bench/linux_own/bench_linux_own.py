#!/usr/bin/python3
"""bench/linux_own: Linux partitions on bulkhead's own monitor (engine: kvm), window
against shared isolation. This machine's KVM cannot boot Linux, so the systems run
inside the rig (rig/run.py: QEMU-TCG with emulated SVM, docs/rig.md), or directly where
rig/run.py's kvm_mode() says the host's KVM can. Everything in the rig is emulated:
the figures compare window with shared measured the same way, as ratios; their absolute
values say nothing about real hardware.

One system per run: partition "a" (CPU 0) with a blk device (a 64 MiB disk the block
server creates) and a net device, partition "b" (CPU 1) with a net device, both in the
isolation under test, on one network of the net server. Each partition reports its
boot time to init: the kernel's own timestamp of 'Run /init as init process' (dmesg).
"a" then writes and reads DD_MIB MiB sequentially with O_DIRECT dd in 64 KiB blocks
(timed by the guest's monotonic clock, /proc/timer_list), then pings b PINGS times
(56 bytes, every 0.2 s), each RTT printed. b answers until a has gone. RUNS runs per
isolation mode, alternating; figures are medians (boot over every partition of every
run, RTT over every echo of a mode). Writes build/bench/linux_own.json. Skips (with a
JSON saying why) only when the rig or the guest image cannot be built."""
import base64
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import linuxsys  # noqa: E402
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = BUILD / "bulkhead"
GUEST = BUILD / "guest"
PYTHON = "/usr/bin/python3"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PINGS = int(os.environ.get("BENCH_PINGS", "20"))
DD_MIB = int(os.environ.get("BENCH_DD_MIB", "32"))
TIMEOUT = 400

BOOT = "echo B $(dmesg | sed -n 's/^\\[ *\\([0-9.]*\\)\\] Run \\/init as init process.*/\\1/p'); "
A_CMD = (
    BOOT +
    "t() {{ sed -n '3s/^now at \\([0-9]*\\) nsecs$/\\1/p;3q' /proc/timer_list; }}; "
    "x=$(t); dd if=/dev/zero of=/dev/vda bs=64k count={blocks} oflag=direct conv=fsync "
    "2>/dev/null || exit 10; y=$(t); dd if=/dev/vda of=/dev/null bs=64k count={blocks} "
    "iflag=direct 2>/dev/null || exit 11; z=$(t); echo D {blocks} $x $y $z; "
    "until ping -c 1 -W 1 10.0.0.2 >/dev/null; do :; done; "
    "ping -c {pings} -i 0.2 -W 3 -s 56 10.0.0.2 | sed -n 's/.*time=\\([0-9.]*\\) ms/R \\1/p'")
B_CMD = (BOOT + "until ping -c 1 -W 1 10.0.0.1 >/dev/null; do :; done; "
         "while ping -c 1 -W 3 10.0.0.1 >/dev/null; do sleep 1; done")

BOOT_RE = re.compile(r"^(a|b)\s+\| B ([\d.]+)$", re.M)
DD_RE = re.compile(r"^a\s+\| D (\d+) (\d+) (\d+) (\d+)$", re.M)
RTT_RE = re.compile(r"^a\s+\| R ([\d.]+)$", re.M)


def system_file(tmp, mode):
    blocks = DD_MIB * 16
    a64 = base64.b64encode(A_CMD.format(blocks=blocks, pings=PINGS).encode()).decode()
    b64 = base64.b64encode(B_CMD.encode()).decode()
    path = tmp / f"linux-own-{mode}.yaml"
    disk = tmp / ("disk-" + mode + ".img")
    return linuxsys.write_system(path, "bench-linux-own", tmp / ("log-" + mode), [
        linuxsys.partition("a", GUEST, f"bh.ip=10.0.0.1/24 bh.run64={a64}", isolation=mode,
                           devices=["{type: blk, server: blkio, disk: d}",
                                    "{type: net, network: lan0}"]),
        linuxsys.partition("b", GUEST, f"bh.ip=10.0.0.2/24 bh.run64={b64}", cpus="[1]",
                           isolation=mode, devices=["{type: net, network: lan0}"])],
        servers=[linuxsys.blk_server(disk, f"{DD_MIB * 2}M", more=", create: true"),
                 "{name: netio, class: net}"],
        networks=["{name: lan0, server: netio}"])


def run(kvm, system):
    """bulkhead run SYSTEM in the rig or directly: its stdout, or an exception."""
    if kvm == "rig":
        cmd = [PYTHON, str(ROOT / "rig" / "run.py"), "--timeout", str(TIMEOUT), str(system)]
    else:
        cmd = [str(BULKHEAD), "run", str(system)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT + 60)
    if r.returncode != 0:
        raise SystemExit(f"bench/linux_own: {system.name} ended with status "
                         f"{r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    return r.stdout


def parse(out):
    boots = [float(m.group(2)) for m in BOOT_RE.finditer(out)]
    dd = DD_RE.search(out)
    rtts = [float(x) for x in RTT_RE.findall(out)]
    if len(boots) != 2 or not dd or len(rtts) != PINGS:
        raise SystemExit(f"bench/linux_own: a run's output lacks figures (boot {boots}, "
                         f"dd {bool(dd)}, {len(rtts)} of {PINGS} echoes):\n{out[-3000:]}")
    blocks, x, y, z = map(int, dd.groups())
    mb = blocks * 65536 / 1e6
    return {"boot_s": boots, "write_mbs": mb / ((y - x) / 1e9),
            "read_mbs": mb / ((z - y) / 1e9), "rtt_ms": rtts}


def skip(why):
    print(f"bench/linux_own: skipped: {why}")
    out = BUILD / "bench" / "linux_own.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"skipped": why}, indent=2) + "\n")
    return 0


def main():
    runner = linuxsys.load_runner()
    kvm, why = runner.kvm_mode()
    builders = [ROOT / "guest" / "build.py"] + ([ROOT / "rig" / "build.py"]
                                                 if kvm == "rig" else [])
    for b in builders:
        r = subprocess.run([PYTHON, str(b)], capture_output=True, text=True, timeout=900)
        if r.returncode:
            return skip(f"{b.relative_to(ROOT)} failed: {(r.stdout + r.stderr).strip()[-500:]}")
    print(f"bench/linux_own: Linux on bulkhead's monitor, mode {kvm} ({why}); "
          f"{RUNS} runs per isolation mode")
    res = {"window": [], "shared": []}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-linux-own-") as tmp:
        tmp = pathlib.Path(tmp)
        for i in range(RUNS):
            for mode in (("window", "shared") if i % 2 == 0 else ("shared", "window")):
                r = parse(run(kvm, system_file(tmp, mode)))
                res[mode].append(r)
                print(f"  run {i + 1} {mode:<6}: boot {r['boot_s'][0]:.2f}/"
                      f"{r['boot_s'][1]:.2f} s, dd write {r['write_mbs']:.1f} MB/s, "
                      f"read {r['read_mbs']:.1f} MB/s, RTT median "
                      f"{statistics.median(r['rtt_ms']):.2f} ms", flush=True)
    med = statistics.median
    fig = {}
    for mode, rs in res.items():
        fig[mode] = {
            "dd_write_mbs": round(med(r["write_mbs"] for r in rs), 2),
            "dd_read_mbs": round(med(r["read_mbs"] for r in rs), 2),
            "rtt_ms_median": round(med(x for r in rs for x in r["rtt_ms"]), 3),
            "boot_to_init_s_median": round(med(x for r in rs for x in r["boot_s"]), 2),
        }
    boots = [x for rs in res.values() for r in rs for x in r["boot_s"]]
    result = {
        "where": kvm, "why": why,
        "note": "inside the rig (QEMU-TCG with emulated SVM) the absolute figures mean "
                "nothing for real hardware: compare window with shared as ratios",
        "runs_per_mode": RUNS, "dd_mib": DD_MIB, "dd_block": 65536, "pings": PINGS,
        "boot_to_init_s_median": round(med(boots), 2), "boots": len(boots),
        "window": fig["window"], "shared": fig["shared"],
        "window_vs_shared_dd_read": round(fig["window"]["dd_read_mbs"] /
                                          fig["shared"]["dd_read_mbs"], 3),
        "window_vs_shared_dd_write": round(fig["window"]["dd_write_mbs"] /
                                           fig["shared"]["dd_write_mbs"], 3),
        # RTT: shared / window, so that above 1 means window is faster, as for dd.
        "window_vs_shared_rtt": round(fig["shared"]["rtt_ms_median"] /
                                      fig["window"]["rtt_ms_median"], 3),
        "seconds": round(time.monotonic() - start, 1),
    }
    out = BUILD / "bench" / "linux_own.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"bench/linux_own: boot to init {result['boot_to_init_s_median']} s (median of "
          f"{len(boots)}); dd 64 KiB read window/shared {fig['window']['dd_read_mbs']}/"
          f"{fig['shared']['dd_read_mbs']} MB/s (x{result['window_vs_shared_dd_read']}, "
          f"target >= 0.8), write {fig['window']['dd_write_mbs']}/"
          f"{fig['shared']['dd_write_mbs']} MB/s; ping RTT window/shared "
          f"{fig['window']['rtt_ms_median']}/{fig['shared']['rtt_ms_median']} ms "
          f"(x{result['window_vs_shared_rtt']}); {result['seconds']} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
