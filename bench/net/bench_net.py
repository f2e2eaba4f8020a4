#!/usr/bin/python3
"""bench/net: partition-to-partition networking through bulkhead's net I/O server, in
window and shared isolation, against two baselines measured in the same run: two
Linux network namespaces joined by a kernel bridge on this host (the RTT a host
network stack gives), and two processes bouncing an eventfd (the wake-up floor every
vhost-user kick and call pays).

Figures, medians over RUNS runs: RTT median and p99 of 56-byte pings (netping, 2000 per
run), frames/s of 64-byte frames and Mbit/s of 1514-byte frames (netperf for BENCH_MS
ms, counted by the receiving netecho). Every run must lose nothing.
Writes build/bench/net.json."""
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import netsys  # noqa: E402
from netsys import Partition  # noqa: E402

BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
BULKHEAD = str(BUILD / "bulkhead")
INMATES = BUILD / "inmates"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MS = int(os.environ.get("BENCH_MS", "2000"))
PINGS = 2000


def run_system(tmp, name, parts):
    r = netsys.run(BULKHEAD, tmp, netsys.system_yaml(name, "logs", parts), timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{r.describe()}")
    return r


def ping(tmp, isolation):
    r = run_system(tmp, "netbench-ping", [
        Partition("a", INMATES / "netping.elf", f"ip=10.0.0.1/24 peer=10.0.0.2 count={PINGS} "
                  "size=56", [{"network": "lan0"}], cpu=0, isolation=isolation),
        Partition("b", INMATES / "netecho.elf", f"ip=10.0.0.2/24 exit-after={PINGS}",
                  [{"network": "lan0"}], cpu=1, isolation=isolation)])
    p = r.ping("a")
    return p["median"], p["p99"], p["lost"]


def stream(tmp, isolation, size):
    r = run_system(tmp, "netbench-stream", [
        Partition("a", INMATES / "netperf.elf", f"ip=10.0.0.1/24 peer=10.0.0.2 size={size} "
                  f"duration={MS}", [{"network": "lan0"}], cpu=0, isolation=isolation),
        Partition("b", INMATES / "netecho.elf", "ip=10.0.0.2/24 streams=1 idle-exit=20000",
                  [{"network": "lan0"}], cpu=1, isolation=isolation)])
    s = r.streams("b")[0]
    return s["fps"], s["mbps"], s["lost"]


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def host_bridge_rtt():
    """Two namespaces, each with a veth into one bridge; 56-byte pings between them."""
    tag = f"bhb{os.getpid() % 10000}"
    nss = [f"{tag}a", f"{tag}b"]
    try:
        ip("link", "add", f"{tag}br", "type", "bridge")
        ip("link", "set", f"{tag}br", "up")
        for i, ns in enumerate(nss):
            ip("netns", "add", ns)
            ip("link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}g")
            ip("link", "set", f"{ns}g", "netns", ns)
            ip("link", "set", f"{ns}h", "master", f"{tag}br")
            ip("link", "set", f"{ns}h", "up")
            ip("netns", "exec", ns, "ip", "addr", "add", f"10.9.0.{i + 1}/24", "dev", f"{ns}g")
            ip("netns", "exec", ns, "ip", "link", "set", f"{ns}g", "up")
        out = subprocess.run(["ip", "netns", "exec", nss[0], "ping", "-c", str(PINGS), "-i",
                              "0.002", "-s", "56", "10.9.0.2"], capture_output=True,
                             text=True, timeout=120).stdout
    finally:
        for ns in nss:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{ns}h"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{tag}br"], capture_output=True)
    rtts = sorted(float(t) * 1000 for t in re.findall(r"time=([\d.]+) ms", out))
    if len(rtts) < PINGS * 0.99:
        raise RuntimeError(f"host bridge ping lost packets:\n{out[-2000:]}")
    return rtts[len(rtts) // 2], rtts[len(rtts) * 99 // 100]


def eventfd_floor():
    out = subprocess.run([str(BUILD / "bench" / "net-eventfd-floor")], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"rtt median ([\d.]+) us p99 ([\d.]+) us", out)
    return float(m.group(1)), float(m.group(2))


def main():
    keys = [f"{k}_{iso}" for iso in ("window", "shared")
            for k in ("rtt_median_us", "rtt_p99_us", "fps_64", "mbps_1514")]
    samples = {k: [] for k in keys + ["host_bridge_rtt_us", "host_bridge_p99_us",
                                      "eventfd_floor_rtt_us"]}
    lost = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(RUNS):
            for iso in ("window", "shared"):
                med, p99, l1 = ping(tmp, iso)
                fps, _, l2 = stream(tmp, iso, 64)
                _, mbps, l3 = stream(tmp, iso, 1514)
                lost += l1 + l2 + l3
                samples[f"rtt_median_us_{iso}"].append(med)
                samples[f"rtt_p99_us_{iso}"].append(p99)
                samples[f"fps_64_{iso}"].append(fps)
                samples[f"mbps_1514_{iso}"].append(mbps)
            hb, hb99 = host_bridge_rtt()
            samples["host_bridge_rtt_us"].append(hb)
            samples["host_bridge_p99_us"].append(hb99)
            samples["eventfd_floor_rtt_us"].append(eventfd_floor()[0])
            print(f"  run {run + 1}/{RUNS} done", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in samples.items()}
    result = dict(med)
    result["window_vs_shared_mbps"] = round(med["mbps_1514_window"] /
                                            max(med["mbps_1514_shared"], 1e-9), 2)
    result["rtt_vs_host_bridge"] = round(med["rtt_median_us_window"] /
                                         med["host_bridge_rtt_us"], 2)
    result["rtt_vs_host_bridge_shared"] = round(med["rtt_median_us_shared"] /
                                                med["host_bridge_rtt_us"], 2)
    result["lost"] = lost
    result["targets"] = {"lost": 0, "window_vs_shared_mbps": 0.7}
    result["runs"], result["ms_per_stream"], result["pings_per_run"] = RUNS, MS, PINGS
    result["samples"] = samples
    out = BUILD / "bench" / "net.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"bench/net (median of {RUNS} runs; {PINGS} pings, {MS} ms streams)")
    print(f"  {'':28}{'window':>10}{'shared':>10}")
    for k, label in (("rtt_median_us", "56-byte ping RTT median (us)"),
                     ("rtt_p99_us", "56-byte ping RTT p99 (us)"),
                     ("fps_64", "64-byte frames/s"), ("mbps_1514", "1514-byte Mbit/s")):
        print(f"  {label:28}{med[f'{k}_window']:>10.1f}{med[f'{k}_shared']:>10.1f}")
    print(f"  host bridge RTT median {med['host_bridge_rtt_us']:.1f} us, eventfd floor "
          f"{med['eventfd_floor_rtt_us']:.1f} us")
    print(f"  window/shared Mbit/s {result['window_vs_shared_mbps']:.2f} (target >= 0.7), "
          f"RTT vs host bridge {result['rtt_vs_host_bridge']:.2f} (window), "
          f"{result['rtt_vs_host_bridge_shared']:.2f} (shared), lost {lost} (target 0)")
    print(f"  written to {out}")
    if lost:
        sys.exit("bench/net: frames were lost")


if __name__ == "__main__":
    main()
