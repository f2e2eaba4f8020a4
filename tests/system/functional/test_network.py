"""Partitions on networks under `bulkhead run`: the net I/O server switching frames
between the net inmates (netping, netperf, netecho), its policy (anti-spoofing, rate
limits, separate networks) and a TAP uplink reached from a network namespace."""
import json
import os
import shutil
import signal
import subprocess
import sys
import pathlib
import time
import warnings

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netsys  # noqa: E402
from netsys import Partition  # noqa: E402

A_IP, B_IP = "10.0.0.1", "10.0.0.2"


def ping_pair(inmates, isolation, size, count):
    return [
        Partition("pinger", inmates / "netping.elf",
                  f"ip={A_IP}/24 peer={B_IP} count={count} size={size}",
                  [{"network": "lan0"}], cpu=0, isolation=isolation),
        Partition("echoer", inmates / "netecho.elf",
                  f"ip={B_IP}/24 exit-after={count} idle-exit=10000",
                  [{"network": "lan0"}], cpu=1, isolation=isolation),
    ]


@pytest.mark.parametrize("isolation", ["window", "shared"])
@pytest.mark.parametrize("size", [56, 1000, 1472])
def test_ping_without_loss(bulkhead, inmates, tmp_path, isolation, size):
    count = 1000
    r = netsys.run(bulkhead, tmp_path, netsys.system_yaml(
        "ping", "logs", ping_pair(inmates, isolation, size, count)))
    assert r.returncode == 0, r.describe()
    ping = r.ping("pinger")
    assert ping is not None, r.describe()
    assert (ping["sent"], ping["received"], ping["lost"]) == (count, count, 0), r.describe()
    c = r.counters("pinger")
    # Every request crossed the switch once and every reply came back: nothing dropped.
    assert c["tx_frames"] >= count and c["rx_frames"] >= count, c
    assert all(v == 0 for k, v in c.items() if k.startswith("drop_")), c


def test_spoofed_frames_dropped_and_counted(bulkhead, inmates, tmp_path):
    frames = 200
    parts = [
        Partition("forger", inmates / "netperf.elf",
                  f"ip={A_IP}/24 peer={B_IP} size=128 count={frames} "
                  "src-mac=02:00:00:00:00:99", [{"network": "lan0"}], cpu=0),
        Partition("victim", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=1500",
                  [{"network": "lan0"}], cpu=1),
    ]
    r = netsys.run(bulkhead, tmp_path, netsys.system_yaml("spoof", "logs", parts))
    assert r.returncode == 0, r.describe()
    c = r.counters("forger")
    # Frames with the forged source (the end markers too) never left the forger's port.
    assert c["drop_spoof"] >= frames, c
    assert c["tx_frames"] == 0, c
    assert r.counters("victim").get("rx_frames", 0) == 0, r.counters("victim")
    assert "stream" not in r.console("victim"), r.console("victim")


def test_networks_are_separate(bulkhead, inmates, tmp_path):
    parts = [
        Partition("lan1-host", inmates / "netping.elf",
                  f"ip={A_IP}/24 peer={B_IP} count=5 timeout=200 arp-wait=1000",
                  [{"network": "lan1"}], cpu=0),
        Partition("lan0-host", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=3000",
                  [{"network": "lan0"}], cpu=1),
    ]
    r = netsys.run(bulkhead, tmp_path, netsys.system_yaml(
        "separate", "logs", parts, networks=("lan0", "lan1")))
    # B_IP is on lan0: from lan1 its address never resolves.
    assert f"netping: cannot resolve {B_IP}" in r.console("lan1-host"), r.describe()
    # The ARP requests flooded lan1 only: nobody on lan0 saw a frame.
    assert r.counters("lan1-host")["tx_frames"] > 0
    assert r.counters("lan0-host").get("rx_frames", 0) == 0, r.counters("lan0-host")


def test_rate_limit_holds_within_ten_percent(bulkhead, inmates, tmp_path):
    """A 128 KiB/s limit on a bare-metal sender: delivered at no more than the limit + 10%
    always, and at no less than the limit - 10% when the limit is what set the pace.

    The lower edge says something about the limiter only if the sender could go faster:
    once, on a heavily loaded machine, netperf managed 0.886 x the old 1 MiB/s limit and
    the test could not tell a slow sender from a limiter that under-delivers. The port's
    `rate_held` counter (frames the token bucket made wait) tells them apart.

    The numbers make a slow sender unlikely, and harmless when it happens:
    - 128 KiB/s is a seventh of what that loaded machine's sender managed, and 20 to 35
      times below a quiet one's (3 to 4.5 MB/s, docs/benchmarks.md). The transmit ring
      (256 frames) fills at once and holds 3 s of traffic at this rate, so the sender's
      vCPU can stall for seconds without leaving the limiter short of a frame.
    - burst 16K, not the default 64K: the burst arrives at the start of the receiver's
      measurement and adds burst / (limit x ~5 s of stream) to the rate it sees: 64K
      would take the whole 10% margin, 16K takes 2.5%, and still absorbs a 125 ms stall
      of the server.
    Limited: rate_held >= 75% of the frames the port sent. A sender that outran the limit
    has every frame held but the ten the burst covers, ARP and the end markers; on a
    loaded machine a server that wakes late finds credit for more than the waiting frame,
    so the next few go without waiting while the pace stays the limit's (75 to 98% held at
    0.99 to 1.03 x the limit, measured with 4 and 8 busy loops on 2 CPUs), whereas a
    sender slower than the limit finds its credit there for most frames. Not limited: the
    lower edge is left unchecked, with a warning, but the sender must still have outrun
    the limit at times (rate_held > 0: a machine whose sender cannot reach 128 KiB/s
    cannot run this test), those frames delayed, not dropped (nothing lost, drop_rate 0),
    and the upper edge holds. No timing is asserted beyond the two edges.
    """
    rate = 128 << 10
    parts = [
        Partition("sender", inmates / "netperf.elf",
                  f"ip={A_IP}/24 peer={B_IP} size=1514 duration=2000",
                  [{"network": "lan0", "rate": "{bytes_per_sec: 128K, burst: 16K}"}], cpu=0),
        Partition("sink", inmates / "netecho.elf", f"ip={B_IP}/24 streams=1 idle-exit=20000",
                  [{"network": "lan0"}], cpu=1),
    ]
    r = netsys.run(bulkhead, tmp_path, netsys.system_yaml("rate", "logs", parts))
    assert r.returncode == 0, r.describe()
    streams = r.streams("sink")
    assert len(streams) == 1, r.describe()
    s = streams[0]
    c = r.counters("sender")
    # Delayed, never dropped: the limit shows as the receiver's byte rate.
    assert s["lost"] == 0, s
    assert c.get("drop_rate", 0) == 0, c
    measured = s["bytes"] / (s["us"] / 1e6)
    assert measured <= 1.1 * rate, (measured, rate, s, c)
    assert c.get("rate_held", 0) > 0, (measured, rate, s, c)
    if c["rate_held"] >= 0.75 * c["tx_frames"]:
        assert measured >= 0.9 * rate, (measured, rate, s, c)
    else:
        warnings.warn(f"the sender set the pace ({measured / rate:.3f} x the limit, "
                      f"{c['rate_held']} of {c['tx_frames']} frames held): the limit's "
                      "lower edge went unchecked")


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def uplink_net():
    """A TAP bridged to a veth whose other end is in a network namespace: the host side
    of the network at 10.0.0.254."""
    tag = f"bh{int(time.time() * 1000) % 100000}"
    ns, tap, br, veth = f"{tag}ns", f"{tag}t", f"{tag}b", f"{tag}v"
    ip("tuntap", "add", "dev", tap, "mode", "tap")
    ip("link", "add", br, "type", "bridge")
    ip("netns", "add", ns)
    ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
    ip("link", "set", f"{veth}p", "netns", ns)
    ip("link", "set", tap, "master", br)
    ip("link", "set", veth, "master", br)
    for dev in (tap, br, veth):
        ip("link", "set", dev, "up")
    ip("netns", "exec", ns, "ip", "addr", "add", "10.0.0.254/24", "dev", f"{veth}p")
    ip("netns", "exec", ns, "ip", "link", "set", f"{veth}p", "up")
    ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
    try:
        yield ns, tap
    finally:
        ip("netns", "del", ns, check=False)
        for dev in (veth, br, tap):
            ip("link", "del", dev, check=False)


def test_host_reaches_partition_through_tap_uplink(bulkhead, inmates, tmp_path, uplink_net):
    ns, tap = uplink_net
    assert shutil.which("ping"), "ping (iputils-ping) is missing: run 'make deps'"
    parts = [Partition("server", inmates / "netecho.elf", f"ip={B_IP}/24 exit-after=20",
                       [{"network": "lan0"}], cpu=1)]
    path = tmp_path / "system.yaml"
    path.write_text(netsys.system_yaml("uplink", "logs", parts, uplinks={"lan0": tap}))
    run = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        ping = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "20", "-i", "0.05",
                               "-W", "5", B_IP], capture_output=True, text=True, timeout=60)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert " 0% packet loss" in ping.stdout, (ping.stdout, ping.stderr, out, err)
    assert run.returncode == 0, (out, err)
    r = netsys.Result(subprocess.CompletedProcess(run.args, run.returncode, out, err),
                      tmp_path / "logs")
    assert r.counters("server")["rx_frames"] >= 20


def test_uplink_that_is_not_a_tap_is_refused(bulkhead, inmates, tmp_path):
    # 'lo' exists and is no TAP: the supervisor cannot attach to it and says so before
    # any partition starts.
    parts = [Partition("server", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=100",
                       [{"network": "lan0"}], cpu=1)]
    r = netsys.run(bulkhead, tmp_path, netsys.system_yaml("notap", "logs", parts,
                                                          uplinks={"lan0": "lo"}))
    assert r.returncode == 2, r.describe()
    assert "network 'lan0': uplink tap 'lo':" in r.stderr, r.stderr
    assert not any(e["event"] == "partition_start" for e in r.events())


def wait_event(log_dir, pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = netsys.Result(subprocess.CompletedProcess([], 0, "", ""), log_dir)
        for e in r.events():
            if pred(e):
                return e
        time.sleep(0.05)
    raise AssertionError(f"no such event in {log_dir}/events.jsonl")


def ctl(bulkhead, system, *args):
    return subprocess.run([bulkhead, "ctl", "--system", str(system), *args],
                          capture_output=True, text=True, timeout=30)


def test_status_shows_port_counters(bulkhead, inmates, tmp_path):
    parts = [
        Partition("pinger", inmates / "netping.elf",
                  f"ip={A_IP}/24 peer={B_IP} count=50 size=100", [{"network": "lan0"}], cpu=0),
        Partition("echoer", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=4000",
                  [{"network": "lan0"}], cpu=1),
    ]
    path = tmp_path / "system.yaml"
    path.write_text(netsys.system_yaml("status", "logs", parts))
    run = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_event(tmp_path / "logs", lambda e: e["event"] == "exit" and
                   e.get("partition") == "pinger")
        # Reports come at most once a second while counters change.
        time.sleep(1.5)
        r = ctl(bulkhead, path, "--json", "status")
        table = ctl(bulkhead, path, "status")
    finally:
        run.terminate()
        run.communicate(timeout=30)
    assert r.returncode == 0, r.stderr
    server = json.loads(r.stdout)["io_servers"][0]
    ports = {p["partition"]: p for p in server["ports"]}
    assert ports["echoer"]["rx_frames"] >= 50 and ports["echoer"]["tx_frames"] >= 50, ports
    assert ports["echoer"]["network"] == "lan0" and ports["echoer"]["drop_spoof"] == 0
    assert ports["echoer"]["rate_held"] == 0                       # no limit
    assert table.returncode == 0 and "echoer/0" in table.stdout and "RX FRAMES" in table.stdout
    assert "RATE HELD" in table.stdout


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_net_server_killed_during_pings(bulkhead, inmates, tmp_path, isolation):
    """kill -9 of the net server while pings flow: it is restarted, the devices pause
    and resume without a reset, and the pings lost are few and reported."""
    count = 600
    parts = [
        Partition("pinger", inmates / "netping.elf",
                  f"ip={A_IP}/24 peer={B_IP} count={count} size=56 timeout=300",
                  [{"network": "lan0"}], cpu=0, isolation=isolation),
        Partition("echoer", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=5000",
                  [{"network": "lan0"}], cpu=1, isolation=isolation),
    ]
    path = tmp_path / "system.yaml"
    path.write_text(netsys.system_yaml("kill", "logs", parts))
    run = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        start = wait_event(tmp_path / "logs", lambda e: e["event"] == "server_start")
        time.sleep(0.8)
        os.kill(start["pid"], signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    r = netsys.Result(subprocess.CompletedProcess(run.args, run.returncode, out, err),
                      tmp_path / "logs")
    ev = r.events()
    assert any(e["event"] == "server_restart" for e in ev), r.describe()
    ping = r.ping("pinger")
    assert ping is not None, r.describe()
    assert ping["sent"] == count, ping
    # A frame in the server when it died is lost at most once per direction.
    assert ping["lost"] <= 2, (ping, r.console("pinger"))
    assert not any(e["event"] == "device" and e.get("state") in ("needs_reset", "failed")
                   for e in ev), [e for e in ev if e["event"] == "device"]
    resumed = {e["partition"] for e in ev if e["event"] == "device" and
               e.get("state") == "reconnected"}
    assert resumed == {"pinger", "echoer"}, [e for e in ev if e["event"] == "device"]
