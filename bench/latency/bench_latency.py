#!/usr/bin/python3
"""bench/latency: how late a timer interrupt reaches a partition (Jailhouse's apic-demo
measurement), against how late a Linux thread on the host wakes from a timer.

Cases, each ROUNDS times, alternating, in one run of this script; every run takes
SAMPLES samples with a PERIOD_US period and reports min / median / p99 / max in ns:
  partition        the `latency` inmate under `bulkhead run`, alone, on CPU 1
                   (TSC-deadline LAPIC timer; sample = TSC at handler entry - deadline)
  partition_noisy  the same with a neighbour partition on CPU 0 running `gaps`, a busy
                   loop that reads the TSC (an exit each time) for the whole run; the
                   measurement starts DELAY_MS after boot, in both partition cases
  host             the baseline: build/bench/latency-host on CPU 1, SCHED_OTHER like a
                   vCPU thread, timer slack 1 ns, clock_nanosleep(TIMER_ABSTIME) on
                   CLOCK_MONOTONIC (cyclictest's method)
  host_fifo        the same at SCHED_FIFO 80 with memory locked (cyclictest's set-up)
  host_noisy       `host` with a busy shell loop pinned to CPU 0
Each figure is the median over the rounds of that round's statistic (max: the largest).
Writes build/bench/latency.json."""
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = BUILD / "bulkhead"
HOST = BUILD / "bench" / "latency-host"
ROUNDS = int(os.environ.get("BENCH_RUNS", "3"))
SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "2000"))
PERIOD_US = 1000
# The partition waits this long before its first sample, so a neighbour started with it
# is past its start-up: a monitor starting on CPU 0 delays the other partition's
# interrupts by milliseconds on this host, which is not what the noisy case measures.
DELAY_MS = 500
CPU = 1
NOISY_CPU = 0

RESULT = re.compile(r"(?:^|\| )(?:host-)?latency: result (.*)$", re.M)
HIST = re.compile(r"(?:^|\| )(?:host-)?latency: hist (.*)$", re.M)
STATS = ("min", "median", "p99", "max", "mean")


def parse(out, what):
    """The result and histogram lines of the inmate or the host helper, as dicts."""
    m, h = RESULT.search(out), HIST.search(out)
    assert m and h, f"{what}: no result line in:\n{out}"
    res = {}
    for kv in m.group(1).split():
        k, v = kv.split("=")
        res[k] = v if k == "mode" else int(v)
    res["hist"] = {k: int(v) for k, v in (kv.split("=") for kv in h.group(1).split())}
    assert res["samples"] == SAMPLES, f"{what}: {res['samples']} samples of {SAMPLES}"
    return res


def system_file(tmp, noisy, gaps_ms):
    path = pathlib.Path(tmp) / ("noisy.yaml" if noisy else "quiet.yaml")
    parts = [f"  - {{name: lat, image: {BUILD}/inmates/latency.elf, "
             f"cmdline: \"n={SAMPLES} period={PERIOD_US} delay={DELAY_MS}\", cpus: [{CPU}], memory: 16M}}"]
    if noisy:
        # gaps spins reading the TSC for gaps_ms: busy for the whole measurement.
        parts.append(f"  - {{name: noisy, image: {BUILD}/inmates/gaps.elf, "
                     f"cmdline: \"{gaps_ms}\", cpus: [{NOISY_CPU}], memory: 16M}}")
    path.write_text(f"system: {{name: latbench, cpus: [0, 1], log_dir: {tmp}/log}}\n"
                    "partitions:\n" + "\n".join(parts) + "\n")
    return path


def run_partition(path):
    r = subprocess.run([str(BULKHEAD), "run", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"bulkhead run {path} failed:\n{r.stdout}{r.stderr}"
    res = parse(r.stdout, "partition")
    g = re.search(r"gaps: .* ran (\d+)% of the time", r.stdout)
    if g:
        res["neighbour_ran_pct"] = int(g.group(1))
    return res


def run_host(*extra, noisy=False):
    spinner = None
    if noisy:
        spinner = subprocess.Popen(["taskset", "-c", str(NOISY_CPU), "sh", "-c",
                                    "while :; do :; done"])
    try:
        r = subprocess.run([str(HOST), f"n={SAMPLES}", f"period={PERIOD_US}", f"cpu={CPU}",
                            *extra], capture_output=True, text=True, timeout=120)
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    assert r.returncode == 0, f"latency-host failed:\n{r.stdout}{r.stderr}"
    return parse(r.stdout, "host")


def summary(runs):
    out = {f"{k}_ns": int(statistics.median(r[k] for r in runs)) for k in STATS if k != "max"}
    out["max_ns"] = max(r["max"] for r in runs)
    out["overruns"] = sum(r["overruns"] for r in runs)
    out["early"] = sum(r["early"] for r in runs)
    out["runs"] = [{k: v for k, v in r.items()} for r in runs]
    return out


def us(ns):
    return f"{ns / 1000:9.1f}"


def main():
    t0 = time.monotonic()
    # The neighbour must outlast the measurement: SAMPLES periods plus the latency
    # partition's own start and its sort, with room to spare.
    gaps_ms = DELAY_MS + SAMPLES * PERIOD_US // 1000 + 2000
    cases = {
        "partition": lambda: run_partition(quiet),
        "partition_noisy": lambda: run_partition(noisy),
        "host": lambda: run_host(),
        "host_fifo": lambda: run_host("fifo=80"),
        "host_noisy": lambda: run_host(noisy=True),
    }
    runs = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        quiet = system_file(tmp, False, gaps_ms)
        noisy = system_file(tmp, True, gaps_ms)
        for _ in range(ROUNDS):
            for name, fn in cases.items():
                runs[name].append(fn())
    figures = {k: summary(v) for k, v in runs.items()}
    p, h = figures["partition"], figures["host"]
    ratios = {
        "median_vs_host": round(p["median_ns"] / h["median_ns"], 2),
        "p99_vs_host": round(p["p99_ns"] / h["p99_ns"], 2),
        "median_vs_host_fifo": round(p["median_ns"] / figures["host_fifo"]["median_ns"], 2),
        "noisy_median_vs_quiet": round(figures["partition_noisy"]["median_ns"] /
                                       p["median_ns"], 2),
        "noisy_p99_vs_quiet": round(figures["partition_noisy"]["p99_ns"] / p["p99_ns"], 2),
        "host_noisy_p99_vs_quiet": round(figures["host_noisy"]["p99_ns"] / h["p99_ns"], 2),
    }
    elapsed = time.monotonic() - t0
    result = {
        "figures": figures,
        "ratios": ratios,
        "baseline": "host",
        "partition_mode": runs["partition"][0]["mode"],
        "samples": SAMPLES,
        "period_us": PERIOD_US,
        "delay_ms": DELAY_MS,
        "rounds": ROUNDS,
        "cpu": CPU,
        "noisy_cpu": NOISY_CPU,
        "elapsed_s": round(elapsed, 1),
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
    }
    out = BUILD / "bench" / "latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"bench/latency ({ROUNDS} rounds of {SAMPLES} samples every {PERIOD_US} us, "
          f"CPU {CPU}; medians over rounds, max over all; us)")
    print(f"  {'case':16s} {'min':>9s} {'median':>9s} {'p99':>9s} {'max':>9s}  overruns")
    for name, f in figures.items():
        print(f"  {name:16s} {us(f['min_ns'])} {us(f['median_ns'])} {us(f['p99_ns'])} "
              f"{us(f['max_ns'])}  {f['overruns']}")
    ran = [r.get("neighbour_ran_pct") for r in runs["partition_noisy"]]
    print(f"  neighbour partition ran {ran} % of its time")
    print("  " + "  ".join(f"{k} {v}" for k, v in ratios.items()))
    print(f"  {elapsed:.1f} s; written to {out}")


if __name__ == "__main__":
    main()
