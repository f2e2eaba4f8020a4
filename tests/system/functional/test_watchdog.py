"""The partition watchdog (`health.watchdog`): a partition that stops kicking is
stopped as a fault and restarted from zeroed memory, up to max_restarts, then halted;
one that keeps kicking is never touched; with on_fault: ignore the miss is reported and
the partition runs on. The `wdog` inmate kicks N times, then falls silent."""
import json
import signal
import subprocess
import time

import pytest


def ctl(bulkhead, *args):
    return subprocess.run([bulkhead, "ctl", *map(str, args)], capture_output=True, text=True,
                          timeout=20)


def start(bulkhead, tmp_path, partitions):
    path = tmp_path / "wd.yaml"
    path.write_text(f"system: {{name: wd, cpus: [0, 1], log_dir: {tmp_path}/log}}\n"
                    f"partitions:\n{partitions}")
    sock = tmp_path / "log" / "control.sock"
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and not sock.exists():
        time.sleep(0.02)
    assert sock.exists()
    return proc, sock


def events(tmp_path):
    return [json.loads(l) for l in open(tmp_path / "log" / "events.jsonl")]


def status(bulkhead, sock, name):
    r = ctl(bulkhead, "--socket", sock, "--json", "status")
    return {p["name"]: p for p in json.loads(r.stdout)["partitions"]}[name]


def wait_for(what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = what()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_silent_partition_is_restarted_then_halted(bulkhead, inmates, tmp_path):
    """Kicks 5 times, then spins: every start ends in a watchdog event and a restart,
    until max_restarts; then it stays halted while its neighbour runs on."""
    proc, sock = start(bulkhead, tmp_path, f"""\
  - {{name: dog, image: {inmates}/wdog.elf, cmdline: "kicks=5 period=10", cpus: [0],
     memory: 4M, health: {{on_fault: restart, max_restarts: 2, watchdog: 100ms}}}}
  - {{name: other, image: {inmates}/faults.elf, cmdline: "hang", cpus: [1], memory: 4M}}
""")
    try:
        dog = wait_for(lambda: (d := status(bulkhead, sock, "dog"))["state"] == "stopped" and d)
        assert dog["starts"] == 3 and dog["restarts"] == 2
        assert "watchdog: no kick for" in dog["summary"]
        assert "max_restarts 2 reached" in dog["summary"]
        assert status(bulkhead, sock, "other")["state"] == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    evs = [e for e in events(tmp_path) if e.get("partition") == "dog"]
    kinds = [e["event"] for e in evs if e["event"] in ("watchdog", "partition_restart",
                                                        "partition_stop")]
    assert kinds == ["watchdog", "partition_restart"] * 2 + ["watchdog", "partition_stop"]
    for e in evs:
        if e["event"] == "watchdog":
            assert e["action"] == "stop" and e["kicks"] == 5
            assert e["period_ns"] == 100_000_000 and e["silent_ms"] >= 100
        if e["event"] == "partition_restart":
            assert e["reason"] == "fault"
    assert "watchdog: no kick for" in err


def test_halt_stops_at_the_first_miss(bulkhead, inmates, tmp_path):
    proc, sock = start(bulkhead, tmp_path, f"""\
  - {{name: dog, image: {inmates}/wdog.elf, cmdline: "kicks=3 period=5", cpus: [0],
     memory: 4M, health: {{on_fault: halt, watchdog: 50ms}}}}
""")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "halted after watchdog: no kick for" in err
    kinds = [e["event"] for e in events(tmp_path)]
    assert kinds.count("watchdog") == 1 and "partition_restart" not in kinds


def test_kicking_partition_is_never_hit(bulkhead, inmates, tmp_path):
    """Kicks every 10 ms against a 50 ms period for two seconds: no miss."""
    proc, sock = start(bulkhead, tmp_path, f"""\
  - {{name: dog, image: {inmates}/wdog.elf, cmdline: "kicks=forever period=10", cpus: [0],
     memory: 4M, health: {{on_fault: restart, max_restarts: 3, watchdog: 50ms}}}}
""")
    time.sleep(2)
    dog = status(bulkhead, sock, "dog")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert dog["state"] == "running" and dog["starts"] == 1
    assert not [e for e in events(tmp_path) if e["event"] == "watchdog"]


def test_ignore_reports_and_runs_on(bulkhead, inmates, tmp_path):
    """Rounds of 3 kicks and 300 ms of silence: each silence is one report (the watchdog
    re-arms at the next kick), and the partition is never stopped."""
    proc, sock = start(bulkhead, tmp_path, f"""\
  - {{name: dog, image: {inmates}/wdog.elf, cmdline: "kicks=3 period=10 pause=300",
     cpus: [0], memory: 4M, health: {{on_fault: ignore, watchdog: 100ms}}}}
""")
    try:
        wait_for(lambda: len([e for e in events(tmp_path) if e["event"] == "watchdog"]) >= 3)
        log = tmp_path / "log" / "dog.console.log"
        wait_for(lambda: "wdog: round 4:" in log.read_text())      # it ran on after them
        dog = status(bulkhead, sock, "dog")
        assert dog["state"] == "running" and dog["starts"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    wd = [e for e in events(tmp_path) if e["event"] == "watchdog"]
    assert all(e["action"] == "ignored" for e in wd)
    assert [e["misses"] for e in wd[:3]] == [1, 2, 3]
    assert [e["kicks"] for e in wd[:3]] == [3, 6, 9]


@pytest.mark.parametrize("args,message", [
    (["--watchdog", "999999"], "--watchdog: not a period of at least 1000000 ns"),
    (["--watchdog", "x"], "--watchdog: not a period"),
    (["--on-watchdog", "reboot"], "--on-watchdog: 'stop' or 'ignore', not 'reboot'"),
])
def test_monitor_option_errors(bulkhead, inmates, args, message):
    r = subprocess.run([bulkhead, "monitor", "--image", str(inmates / "wdog.elf"),
                        "--memory", "4M", *args], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and message in r.stderr


def test_monitor_never_kicked_is_not_watched(bulkhead, inmates):
    """The watchdog arms at the first kick: a guest that never kicks runs on."""
    r = subprocess.run(["timeout", "1", bulkhead, "monitor", "--image",
                        str(inmates / "faults.elf"), "--cmdline", "hang", "--memory", "4M",
                        "--watchdog", "10000000"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 124, r.stderr       # still running when timeout ended it
    assert "watchdog" not in r.stderr
