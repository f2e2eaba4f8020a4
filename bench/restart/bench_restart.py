#!/usr/bin/python3
"""bench/restart: how long a partition's block I/O stalls when its I/O server is killed.

Each run boots a system under `bulkhead run` (in a temporary directory): one blk server
on a fresh 64 MiB disk file, one partition running blkbench in verify mode (4 KiB
sequential writes of a per-sector pattern, 4 in flight, for BENCH_MS ms, then a
read-back that checks every sector written). In a kill run the server is killed with
SIGKILL once it has lived KILL_AT_MS (past the supervisor's 1 s "died young" threshold,
so the restart is not delayed by its backoff); `bulkhead run` restarts it and the
monitor resubmits what was in flight. The outage is blkbench's maxgap_us, the longest
gap between two completions seen by the guest; the baseline is the same run without a
kill. BENCH_KILLS kill runs and as many baseline runs per isolation mode (window,
shared), interleaved, and BENCH_KILLS more kill runs per mode with `standby: true`,
where a hot standby process takes over instead of a fork + exec. Every run must lose
no request and find every sector intact. Writes build/bench/restart.json."""
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = str(BUILD / "bulkhead")
IMAGE = BUILD / "inmates" / "blkbench.elf"
KILLS = int(os.environ.get("BENCH_KILLS", "20"))
BASELINE = int(os.environ.get("BENCH_BASELINE", str(KILLS)))
MS = int(os.environ.get("BENCH_MS", "1500"))
KILL_AT_MS = int(os.environ.get("BENCH_KILL_AT_MS", "1100"))  # server age at the kill
DEPTH, REQ_KIB, DISK_MB = 4, 4, 64
MODES = ("window", "shared")
TARGET_MEDIAN_MS = 50
TARGET_STANDBY_MEDIAN_MS = 20


def system_yaml(tmp, isolation, seed, standby):
    return f"""system: {{name: restart, cpus: [0, 1], log_dir: {tmp}/log}}
io_servers:
  - name: blkio
    class: blk
    restart: always
    standby: {"true" if standby else "false"}
    disks:
      - {{name: d, file: {tmp}/disk.img, size: {DISK_MB}M, create: true}}
partitions:
  - {{name: bench, image: {IMAGE}, cpus: [0], memory: 16M, isolation: {isolation},
     cmdline: "mode=verify req={REQ_KIB} depth={DEPTH} ms={MS} seed={seed}",
     devices: [{{type: blk, server: blkio, disk: d, offset: 0, size: {DISK_MB}M}}]}}
"""


def events(tmp):
    try:
        with open(os.path.join(tmp, "log", "events.jsonl")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def one_run(isolation, seed, kill, standby=False):
    """Runs the system once; returns blkbench's fields and, for a kill run, the kill's
    timing from the supervisor's events."""
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        path = os.path.join(tmp, "restart.yaml")
        with open(path, "w") as f:
            f.write(system_yaml(tmp, isolation, seed, standby))
        proc = subprocess.Popen([BULKHEAD, "run", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killed = None
        if kill:
            deadline = time.monotonic() + 30
            seen = None                  # (pid, when we first saw its server_start)
            while killed is None and proc.poll() is None and time.monotonic() < deadline:
                if seen is None:
                    starts = [e for e in events(tmp) if e["event"] == "server_start"]
                    if starts:
                        seen = (starts[0]["pid"], time.monotonic())
                elif time.monotonic() - seen[1] >= KILL_AT_MS / 1000:
                    os.kill(seen[0], signal.SIGKILL)
                    killed = seen[0]
                    break
                time.sleep(0.002)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"bulkhead run timed out ({isolation}):\n{out}\n{err}")
        ev = events(tmp)
    line = [l for l in out.splitlines() if "blkbench: mode=" in l]
    if not line:
        raise RuntimeError(f"no blkbench result ({isolation}, kill={kill}):\n{out}\n{err}")
    fields = {k: int(v) for k, v in (kv.split("=") for kv in
                                     line[0].split("blkbench: ", 1)[1].split()) if k != "mode"}
    fields["rc"] = proc.returncode
    fields["lost_requests"] = fields["lost"] + fields["errors"] + fields["readback_errors"]
    if kill:
        if killed is None:
            raise RuntimeError(f"the server was never killed ({isolation}):\n{out}\n{err}")

        def t(name, **match):
            hits = [e["t_ms"] for e in ev if e["event"] == name and
                    all(e.get(k) == v for k, v in match.items())]
            return hits[0] if hits else None
        start, sstart = t("start", partition="bench"), t("server_start", pid=killed)
        sexit, recon = t("server_exit", server="blkio"), t("device", state="reconnected")
        replayed = [e.get("replayed") for e in ev if e.get("state") == "reconnected"]
        restart = [e for e in ev if e["event"] == "server_restart"]
        if len(restart) != 1 or recon is None:
            raise RuntimeError(f"expected one restart and a reconnect ({isolation}): {ev}")
        fields["kill_in_run_ms"] = round(sexit - start) if None not in (sexit, start) else None
        fields["server_age_ms"] = round(sexit - sstart) if None not in (sexit, sstart) else None
        fields["host_reconnect_ms"] = round(recon - sexit, 1) if None not in (recon, sexit) \
            else None
        fields["backoff_ms"] = restart[0].get("backoff_ms") if restart else None
        fields["restarts"] = len(restart)
        fields["replayed"] = replayed[0] if replayed else None
        after = [e for e in ev if e["event"] == "server_start" and e["pid"] != killed]
        fields["took_over"] = bool(after and after[0].get("standby"))
        if standby and not fields["took_over"]:
            raise RuntimeError(f"the standby did not take over ({isolation}): {ev}")
    return fields


def summary(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    return {"median": statistics.median(v) if v else None, "max": max(v) if v else None,
            "min": min(v) if v else None}


def rnd(v):
    return round(v, 1) if v is not None else None


def main():
    if not IMAGE.exists():
        sys.exit(f"bench/restart needs {IMAGE}: run 'make'")
    kinds = ("kill", "standby", "baseline")
    runs = {m: {k: [] for k in kinds} for m in MODES}
    seed = 1
    for i in range(max(KILLS, BASELINE)):
        for m in MODES:
            for kind in kinds:
                if len(runs[m][kind]) < (BASELINE if kind == "baseline" else KILLS):
                    runs[m][kind].append(one_run(m, seed, kind != "baseline",
                                                 standby=kind == "standby"))
                    seed += 1

    result = {"kills_per_mode": KILLS, "baseline_runs_per_mode": BASELINE, "ms_per_run": MS,
              "depth": DEPTH, "req_kib": REQ_KIB, "kill_at_server_age_ms": KILL_AT_MS,
              "target_median_outage_ms": TARGET_MEDIAN_MS,
              "target_standby_median_outage_ms": TARGET_STANDBY_MEDIAN_MS}
    lost = corrupt = 0
    for m in MODES:
        k, b, sb = runs[m]["kill"], runs[m]["baseline"], runs[m]["standby"]
        out = summary(k, "maxgap_us")
        sb_out = summary(sb, "maxgap_us")
        base = summary(b, "maxgap_us")
        def ms(v):
            return round(v / 1000, 1) if v is not None else None
        result[m] = {
            "outage_ms_median": ms(out["median"]),
            "outage_ms_max": ms(out["max"]),
            "outage_ms_min": ms(out["min"]),
            "baseline_maxgap_ms_median": ms(base["median"]),
            "baseline_maxgap_ms_max": ms(base["max"]),
            "host_reconnect_ms_median": rnd(summary(k, "host_reconnect_ms")["median"]),
            "kill_in_run_ms_median": summary(k, "kill_in_run_ms")["median"],
            "replayed_median": rnd(summary(k, "replayed")["median"]),
            "kills_with_replay": sum(bool(r.get("replayed")) for r in k),
            "standby_outage_ms_median": ms(sb_out["median"]),
            "standby_outage_ms_max": ms(sb_out["max"]),
            "standby_outage_ms_min": ms(sb_out["min"]),
            "standby_host_reconnect_ms_median":
                rnd(summary(sb, "host_reconnect_ms")["median"]),
            "standby_vs_restart_outage": (round(sb_out["median"] / out["median"], 2)
                                          if sb_out["median"] and out["median"] else None),
            "lost_requests": sum(r["lost_requests"] for r in k + b + sb),
            "corrupt_blocks": sum(r["corrupt"] for r in k + b + sb),
            "verified_sectors": sum(r["verified"] for r in k + b + sb),
            "runs_failed": sum(r["rc"] != 0 for r in k + b + sb),
        }
        lost += result[m]["lost_requests"]
        corrupt += result[m]["corrupt_blocks"]
    result["lost_requests"] = lost
    result["corrupt_blocks"] = corrupt
    result["samples"] = {m: {kind: [{k: r.get(k) for k in (
        "maxgap_us", "requests", "kill_in_run_ms", "server_age_ms", "host_reconnect_ms",
        "backoff_ms", "restarts", "replayed", "took_over", "lost_requests", "corrupt",
        "verified", "rc") if k in r}
        for r in runs[m][kind]] for kind in kinds} for m in MODES}
    dest = BUILD / "bench" / "restart.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=2) + "\n")

    print(f"bench/restart ({KILLS} kills without and {KILLS} with a standby, and "
          f"{BASELINE} undisturbed runs per mode; "
          f"{REQ_KIB} KiB writes, {DEPTH} in flight, {MS} ms; kill at server age "
          f"{KILL_AT_MS} ms)")
    print(f"  {'':34}{'window':>10}{'shared':>10}")
    rows = (("outage median (ms)", "outage_ms_median"), ("outage max (ms)", "outage_ms_max"),
            ("no-kill maxgap median (ms)", "baseline_maxgap_ms_median"),
            ("no-kill maxgap max (ms)", "baseline_maxgap_ms_max"),
            ("host: server exit to reconnect (ms)", "host_reconnect_ms_median"),
            ("standby: outage median (ms)", "standby_outage_ms_median"),
            ("standby: outage max (ms)", "standby_outage_ms_max"),
            ("standby: exit to reconnect (ms)", "standby_host_reconnect_ms_median"),
            ("standby / restart (median outage)", "standby_vs_restart_outage"),
            ("kills with requests replayed", "kills_with_replay"),
            ("lost requests", "lost_requests"), ("corrupt sectors", "corrupt_blocks"))
    for label, key in rows:
        print(f"  {label:34}" + "".join(f"{str(result[m][key]):>10}" for m in MODES))
    print(f"  targets: median outage < {TARGET_MEDIAN_MS} ms without standby, "
          f"< {TARGET_STANDBY_MEDIAN_MS} ms with it")
    print(f"  written to {dest}")
    if lost or corrupt or any(result[m]["runs_failed"] for m in MODES):
        sys.exit("bench/restart: a run lost a request, found a bad sector or failed")


if __name__ == "__main__":
    main()
