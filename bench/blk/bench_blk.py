#!/usr/bin/python3
"""bench/blk: block I/O from inside a partition, through bulkhead's block server in
window and shared isolation, and through qemu-storage-daemon (the peer), against the
host limit (fio on the same file, same pattern).

Patterns: sequential 64 KiB reads and writes (MB/s), random 4 KiB reads (IOPS), each
with 8 requests in flight for BENCH_MS milliseconds, RUNS times in one invocation;
figures are medians. The partition runs the blkbench inmate on bulkhead's monitor.
Writes build/bench/blk.json."""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = BUILD / "bulkhead"
IMAGE = BUILD / "inmates" / "blkbench.elf"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MS = int(os.environ.get("BENCH_MS", "1000"))
DISK_MB = 64
PATTERNS = {  # name: (blkbench mode, request KiB, fio rw)
    "seq_read": ("seqread", 64, "read"),
    "seq_write": ("seqwrite", 64, "write"),
    "randread": ("randread", 4, "randread"),
}
DEPTH = 8


def wait_for(path, proc, what):
    deadline = time.time() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)


def start_server(kind, disk, sock):
    if kind == "qsd":
        argv = ["qemu-storage-daemon", "--blockdev",
                f"driver=file,node-name=d,filename={disk},cache.direct=off",
                "--export", f"type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
                f"addr.path={sock},writable=on"]
    else:
        argv = [str(BULKHEAD), "ioserver", "blk", "--socket", sock, "--disk", disk]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(sock, proc, kind)
    return proc


def partition(sock, isolation, mode, req_kib):
    r = subprocess.run([str(BULKHEAD), "monitor", "--image", str(IMAGE), "--memory", "64M",
                        "--device", f"blk,slot=1,socket={sock},isolation={isolation}",
                        "--cmdline", f"mode={mode} req={req_kib} depth={DEPTH} ms={MS}"],
                       capture_output=True, text=True, timeout=120)
    line = [l for l in r.stdout.splitlines() if l.startswith("blkbench: mode=")]
    if r.returncode != 0 or not line:
        raise RuntimeError(f"blkbench failed ({isolation}, {mode}):\n{r.stdout}\n{r.stderr}")
    fields = dict(kv.split("=") for kv in line[0].split()[1:])
    if int(fields["errors"]):
        raise RuntimeError(f"blkbench saw errors: {line[0]}")
    return int(fields["mbps"]), int(fields["iops"])


def host(disk, rw, req_kib):
    r = subprocess.run(["fio", "--name=host", f"--filename={disk}", f"--rw={rw}",
                        f"--bs={req_kib}k", "--ioengine=io_uring", f"--iodepth={DEPTH}",
                        "--direct=0", "--time_based", f"--runtime={MS}ms",
                        f"--size={DISK_MB}m", "--output-format=json"],
                       capture_output=True, text=True, timeout=120)
    job = json.loads(r.stdout)["jobs"][0]
    side = job["write"] if "write" in rw else job["read"]
    return int(side["bw_bytes"] / 1e6), int(side["iops"])


def main():
    for tool in ("fio", "qemu-storage-daemon"):
        if not shutil.which(tool):
            sys.exit(f"bench/blk needs {tool}: run 'make deps'")
    samples = {f"{p}_{t}": [] for p in PATTERNS for t in ("window", "shared", "qsd", "host")}
    with tempfile.TemporaryDirectory() as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.write(os.urandom(DISK_MB << 20))
        for _ in range(RUNS):
            for target in ("window", "shared", "qsd", "host"):
                sock = os.path.join(tmp, f"{target}.sock")
                server = None if target == "host" else \
                    start_server("qsd" if target == "qsd" else "bulkhead", disk, sock)
                try:
                    for name, (mode, req, rw) in PATTERNS.items():
                        if target == "host":
                            mbps, iops = host(disk, rw, req)
                        else:
                            mbps, iops = partition(sock, "shared" if target == "qsd" else
                                                   target, mode, req)
                        samples[f"{name}_{target}"].append(iops if name == "randread" else mbps)
                finally:
                    if server:
                        server.terminate()
                        server.wait(timeout=20)
                        if os.path.exists(sock):
                            os.unlink(sock)

    med = {k: statistics.median(v) for k, v in samples.items()}
    result = {}
    for t in ("window", "shared", "qsd", "host"):
        result[f"seq_read_mbps_{t}"] = med[f"seq_read_{t}"]
        result[f"seq_write_mbps_{t}"] = med[f"seq_write_{t}"]
        result[f"randread_iops_{t}"] = med[f"randread_{t}"]
    result["shared_vs_qsd"] = round(med["seq_read_shared"] / max(med["seq_read_qsd"], 1), 2)
    result["window_vs_shared"] = round(med["seq_read_window"] / max(med["seq_read_shared"], 1), 2)
    result["targets"] = {"shared_vs_qsd": 1.0, "window_vs_shared": 0.8}
    result["runs"] = RUNS
    result["ms_per_run"] = MS
    result["depth"] = DEPTH
    result["samples"] = samples
    out = BUILD / "bench" / "blk.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"bench/blk (median of {RUNS} runs of {MS} ms, {DEPTH} in flight)")
    print(f"  {'':22}{'window':>10}{'shared':>10}{'qsd':>10}{'host':>10}")
    for name, unit in (("seq_read", "MB/s"), ("seq_write", "MB/s"), ("randread", "IOPS")):
        print(f"  {name + ' (' + unit + ')':22}" +
              "".join(f"{med[f'{name}_{t}']:>10.0f}" for t in ("window", "shared", "qsd", "host")))
    print(f"  shared/qsd (64K read) {result['shared_vs_qsd']:.2f} (target >= 1.0), "
          f"window/shared {result['window_vs_shared']:.2f} (target >= 0.8)")
    print(f"  written to {out}")


if __name__ == "__main__":
    main()
