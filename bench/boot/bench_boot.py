#!/usr/bin/python3
"""bench/boot: how fast a partition starts and how much the monitor costs.

Figures (medians of RUNS runs, taken in one run of this script):
  first_output_ms_median  start of 'bulkhead run' on a one-partition system -> the
                          partition's first console line on run's stdout
  exit_ms_median          start of 'bulkhead run' -> run returning (partition exits 0)
  floor_ms_median         the same first-output time for build/bench/boot-floor: fork, exec,
                          KVM_CREATE_VM and one KVM_RUN that writes one byte
  monitor_overhead_kib    monitor RSS minus the guest memory it has touched (shared
                          memfd pages), for a running 16 MiB partition
Writes build/bench/boot.json."""
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = BUILD / "bulkhead"
FLOOR = BUILD / "bench" / "boot-floor"
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def first_byte_ms(argv):
    """Starts argv; returns (ms to first stdout byte, ms to exit, exit status)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = os.read(p.stdout.fileno(), 1)
    t1 = time.perf_counter()
    p.stdout.read()
    p.wait()
    t2 = time.perf_counter()
    assert first, f"{argv[0]} printed nothing"
    return (t1 - t0) * 1e3, (t2 - t0) * 1e3, p.returncode


def system_file(tmp, prog, cmdline=""):
    path = pathlib.Path(tmp) / f"{prog}.yaml"
    path.write_text(f"""system: {{name: bench, cpus: [0, 1], log_dir: {tmp}/log}}
partitions:
  - {{name: p, image: {BUILD}/inmates/{prog}.elf, cmdline: "{cmdline}", cpus: [1], memory: 16M}}
""")
    return path


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def monitor_memory(tmp):
    path = system_file(tmp, "faults", "hang")
    p = subprocess.Popen([str(BULKHEAD), "run", "--quiet", str(path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = pathlib.Path(tmp) / "log" / "p.console.log"
        deadline = time.time() + 20
        while time.time() < deadline:
            if log.exists() and "halting forever" in log.read_text():
                break
            time.sleep(0.02)
        events = [json.loads(l) for l in open(pathlib.Path(tmp) / "log" / "events.jsonl")]
        pid = [e["pid"] for e in events if e["event"] == "partition_start"][0]
        time.sleep(0.2)
        return status_kib(pid)
    finally:
        p.terminate()
        p.wait(timeout=20)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        hello = system_file(tmp, "hello")
        first_byte_ms([str(BULKHEAD), "run", str(hello)])          # warm the caches
        first_byte_ms([str(FLOOR)])
        firsts, exits, floors = [], [], []
        for _ in range(RUNS):
            f, e, rc = first_byte_ms([str(BULKHEAD), "run", str(hello)])
            assert rc == 0, "the hello partition did not exit 0"
            firsts.append(f)
            exits.append(e)
            f, _, rc = first_byte_ms([str(FLOOR)])
            assert rc == 0, "boot-floor failed"
            floors.append(f)
        mem = monitor_memory(tmp)

    result = {
        "first_output_ms_median": round(statistics.median(firsts), 2),
        "exit_ms_median": round(statistics.median(exits), 2),
        "floor_ms_median": round(statistics.median(floors), 2),
        "first_output_over_floor": round(statistics.median(firsts) / statistics.median(floors), 2),
        "monitor_overhead_kib": mem["VmRSS"] - mem["RssShmem"],
        "monitor_rss_kib": mem["VmRSS"],
        "monitor_rss_anon_kib": mem["RssAnon"],
        "monitor_rss_file_kib": mem["RssFile"],
        "guest_touched_kib": mem["RssShmem"],
        "runs": RUNS,
        "samples_ms": {"first_output": [round(x, 2) for x in firsts],
                       "exit": [round(x, 2) for x in exits],
                       "floor": [round(x, 2) for x in floors]},
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "targets": {"first_output_ms_median": 50, "monitor_overhead_kib": 5120},
    }
    out = BUILD / "bench" / "boot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"bench/boot ({RUNS} runs, medians)")
    print(f"  first output     {result['first_output_ms_median']:8.2f} ms   "
          f"(floor {result['floor_ms_median']:.2f} ms, x{result['first_output_over_floor']})  "
          f"target < 50 ms")
    print(f"  run returns      {result['exit_ms_median']:8.2f} ms")
    print(f"  monitor overhead {result['monitor_overhead_kib']:8d} KiB "
          f"(RSS {mem['VmRSS']} KiB = anon {mem['RssAnon']} + file {mem['RssFile']} + "
          f"guest {mem['RssShmem']})  target < 5120 KiB")
    print(f"  written to {out}")


if __name__ == "__main__":
    main()
