"""The `latency` inmate (bench/latency's partition side) and its host twin
build/bench/latency-host: every sample is counted, the statistics are ordered, bad
arguments give the usage and status 2. No timing thresholds: the figures belong to
`make bench` (docs/benchmarks.md), not to pass/fail."""
import json
import re
import subprocess

import pytest

RESULT = re.compile(r"^(?:host-)?latency: result (.*)$", re.M)
HIST = re.compile(r"^(?:host-)?latency: hist (.*)$", re.M)


def run_inmate(bulkhead, inmates, cmdline):
    r = subprocess.run([bulkhead, "monitor", "--name", "lat", "--image",
                        str(inmates / "latency.elf"), "--memory", "16M",
                        "--cmdline", cmdline], capture_output=True, text=True, timeout=60)
    events = [json.loads(l) for l in r.stderr.splitlines() if l.startswith("{")]
    exits = [e for e in events if e["event"] == "exit"]
    assert exits, f"no exit event:\n{r.stdout}\n{r.stderr}"
    return exits[-1]["status"], r.stdout


def parse(out):
    m, h = RESULT.search(out), HIST.search(out)
    assert m and h, out
    res = {}
    for kv in m.group(1).split():
        k, v = kv.split("=")
        res[k] = v if k == "mode" else int(v)
    hist = {k: int(v) for k, v in (kv.split("=") for kv in h.group(1).split())}
    return res, hist


def check_sane(res, hist, n, out):
    assert res["samples"] == n, out
    assert sum(hist.values()) == n, out                 # every sample in one bucket
    assert res["early"] == 0 and res["min"] >= 0, out   # never before the deadline
    assert res["min"] <= res["median"] <= res["p99"] <= res["max"], out
    assert res["min"] <= res["mean"] <= res["max"], out
    assert res["unexpected"] == 0, out


@pytest.mark.parametrize("mode", ["", "mode=oneshot"])
def test_latency_inmate_reports_sane_statistics(bulkhead, inmates, mode):
    status, out = run_inmate(bulkhead, inmates, f"n=200 period=500 {mode}")
    assert status == 0, out
    res, hist = parse(out)
    check_sane(res, hist, 200, out)
    assert res["period_us"] == 500
    if mode:
        assert res["mode"] == "oneshot", out
    else:
        assert res["mode"] in ("deadline", "oneshot"), out


@pytest.mark.parametrize("args", ["n=0", "n=x", "n=10x", "period=5", "period=2000000",
                                  "mode=periodic", "delay=x", "delay=70000", "bogus"])
def test_latency_inmate_bad_arguments(bulkhead, inmates, args):
    status, out = run_inmate(bulkhead, inmates, args)
    assert status == 2, out
    assert "usage: latency" in out, out
    assert not RESULT.search(out), out


@pytest.fixture(scope="module")
def host_helper(root):
    path = root / "build" / "bench" / "latency-host"
    if not path.exists():
        pytest.skip(f"{path} is not built")
    return str(path)


def test_latency_host_reports_sane_statistics(host_helper):
    r = subprocess.run([host_helper, "n=200", "period=500", "cpu=0"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    res, hist = parse(r.stdout)
    check_sane(res, hist, 200, r.stdout)


@pytest.mark.parametrize("args", ["n=0", "period=1", "cpu=x", "fifo=100", "bogus"])
def test_latency_host_bad_arguments(host_helper, args):
    r = subprocess.run([host_helper, args], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "usage: latency-host" in r.stderr
