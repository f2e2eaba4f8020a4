"""`bulkhead run` boots real partitions: consoles, exit statuses, events, health actions,
isolation violations, bad images, signals, and that no process outlives it."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT


def write_system(tmp_path, partitions, name="t", extra=""):
    """A system file in tmp_path; each partition is (name, image, cmdline, cpu, extra)."""
    lines = [f"system: {{name: {name}, cpus: [0, 1], log_dir: {tmp_path}/log}}", extra,
             "partitions:"]
    for pname, image, cmdline, cpu, more in partitions:
        lines.append(f"  - {{name: {pname}, image: {image}, cmdline: \"{cmdline}\", "
                     f"cpus: [{cpu}], memory: 4M{', ' + more if more else ''}}}")
    path = tmp_path / "system.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(bulkhead, path, timeout=60):
    return subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True,
                          timeout=timeout)


def events(tmp_path):
    with open(tmp_path / "log" / "events.jsonl") as f:
        return [json.loads(line) for line in f]


def private_image(tmp_path, inmates, prog):
    """A copy of an inmate under tmp_path, so its path identifies this test's monitors."""
    dst = tmp_path / f"{prog}.elf"
    shutil.copy(inmates / f"{prog}.elf", dst)
    return dst


def monitors_of(tmp_path):
    r = subprocess.run(["pgrep", "-f", f"monitor.*{tmp_path}"], capture_output=True, text=True)
    return r.stdout.split()


def test_hello_example(bulkhead, inmates):
    r = run(bulkhead, ROOT / "examples" / "hello.yaml")
    assert r.returncode == 0, r.stderr
    for name in ("alpha", "beta"):
        assert f"{name:<8} | Hello from partition '{name}'" in r.stdout
        assert f"{name:<8} | hello: goodbye" in r.stdout
        assert f"{name}" in r.stderr and "exited with status 0" in r.stderr
        log = (ROOT / "build" / "run" / "hello" / f"{name}.console.log").read_text()
        assert f"Hello from partition '{name}'" in log


def test_console_lines_are_prefixed_and_logged(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "hello")
    path = write_system(tmp_path, [("one", img, "a b c", 0, ""), ("two", img, "", 1, "")])
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stderr
    assert 'one      | hello:   argv[3] = "c"' in r.stdout
    assert (tmp_path / "log" / "one.console.log").read_text().count("\n") >= 4
    evs = events(tmp_path)
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "system_start" and kinds[-1] == "system_stopped"
    assert all("time" in e and "t_ms" in e for e in evs)
    exits = {e["partition"]: e["status"] for e in evs if e["event"] == "exit"}
    assert exits == {"one": 0, "two": 0}


def test_a_stalled_stdout_stalls_neither_supervisor_nor_partitions(bulkhead, inmates,
                                                                   tmp_path):
    """Nobody reads 'bulkhead run''s stdout (a terminal paused with ^S, a reader gone
    quiet) while a partition prints 6000 lines, four times what a pipe holds. The
    supervisor echoes a line only when stdout can take it: it keeps draining the
    monitors' consoles into the logs, so the partition runs to its end and the run
    stops while stdout is still unread (before, the supervisor blocked on stdout, the
    monitor's console pipe filled and the guest waited for ever). Once read, stdout
    says how many lines it skipped; the console log has every one."""
    img = private_image(tmp_path, inmates, "hello")
    n = 6000
    path = write_system(tmp_path, [("chatty", img, f"lines={n}", 0, "")])
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # stdout stays unread until the system has stopped.
        deadline = time.monotonic() + 60
        evlog = tmp_path / "log" / "events.jsonl"
        while time.monotonic() < deadline:
            if evlog.exists() and '"event":"system_stopped"' in evlog.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the system did not stop while its stdout was not read")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out, err = out.decode(), err.decode()
    assert proc.returncode == 0, err
    log = (tmp_path / "log" / "chatty.console.log").read_text()
    assert all(f"hello: line {i} of {n}\n" in log for i in (1, n // 2, n)), log[-500:]
    assert log.count("\n") >= n
    shown = out.count("chatty   | hello: line ")
    assert shown < n, "every line was echoed: stdout never stalled, the test proved nothing"
    note = re.search(r"^bulkhead: (\d+) console lines? not shown here \(stdout did not "
                     r"keep up\); every line is in \S+/<partition>\.console\.log$",
                     out + err, re.M)
    assert note, out[-2000:] + err
    skipped = sum(int(x) for x in re.findall(r"^bulkhead: (\d+) console lines? not shown",
                                             out + err, re.M))
    assert skipped > 0 and out.count("chatty   | ") + skipped == log.count("\n"), \
        (shown, skipped, log.count("\n"))


def test_nonzero_exit_status_fails_the_run(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "faults")
    path = write_system(tmp_path, [("ok", img, "exit 0", 0, ""), ("bad", img, "exit 7", 1, "")])
    r = run(bulkhead, path)
    assert r.returncode == 1
    assert "bad" in r.stderr and "exited with status 7" in r.stderr


@pytest.mark.parametrize("kind,expect", [
    ("port 0x300", {"kind": "violation", "access": "port", "address": "0x300",
                    "direction": "write", "size": 1}),
    ("ram", {"kind": "violation", "access": "mmio", "address": "0xb0000000",
             "direction": "write", "size": 4}),
    ("mmio", {"kind": "violation", "access": "mmio", "address": "0xd0000000",
              "direction": "write", "size": 4}),
    ("triple", {"kind": "triple_fault"}),
])
def test_fault_stops_only_the_faulty_partition(bulkhead, inmates, tmp_path, kind, expect):
    faults = private_image(tmp_path, inmates, "faults")
    gaps = private_image(tmp_path, inmates, "gaps")
    path = write_system(tmp_path, [("bad", faults, kind, 0, "health: {on_fault: halt}"),
                                   ("good", gaps, "300", 1, "")])
    r = run(bulkhead, path)
    assert r.returncode == 1
    faults_seen = [e for e in events(tmp_path) if e["event"] == "fault"]
    assert len(faults_seen) == 1
    assert faults_seen[0]["partition"] == "bad"
    for k, v in expect.items():
        assert faults_seen[0][k] == v
    assert "good" in r.stderr and "exited with status 0" in r.stderr
    assert "good     | gaps: " in r.stdout         # it ran its 300 ms to the end
    assert "halted after" in r.stderr


def test_restart_up_to_max_restarts(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "faults")
    path = write_system(tmp_path, [("flaky", img, "port", 0,
                                    "health: {on_fault: restart, max_restarts: 2}")])
    r = run(bulkhead, path)
    assert r.returncode == 1
    evs = events(tmp_path)
    assert [e["event"] for e in evs].count("partition_start") == 3
    assert [e["event"] for e in evs].count("partition_restart") == 2
    assert "max_restarts 2 reached" in r.stderr


def test_reset_request_restarts_within_budget(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "faults")
    path = write_system(tmp_path, [("resetter", img, "reset", 0,
                                    "health: {max_restarts: 1}")])
    r = run(bulkhead, path)
    assert r.returncode == 1
    evs = events(tmp_path)
    assert [e["event"] for e in evs].count("reset") == 2
    assert [e.get("reason") for e in evs if e["event"] == "partition_restart"] == \
        ["reset requested"]


def test_ignore_lets_the_partition_go_on(bulkhead, inmates, tmp_path):
    """on_fault: ignore reports the violation and the partition continues (the faults
    inmate then says it survived, exiting 1); its neighbour is untouched."""
    faults = private_image(tmp_path, inmates, "faults")
    hello = private_image(tmp_path, inmates, "hello")
    path = write_system(tmp_path, [("bad", faults, "port", 0, "health: {on_fault: ignore}"),
                                   ("good", hello, "", 1, "")])
    r = run(bulkhead, path)
    assert r.returncode == 1
    assert "bad      | faults: still running after the port write" in r.stdout
    assert "exited with status 1" in r.stderr
    f = [e for e in events(tmp_path) if e["event"] == "fault"]
    assert len(f) == 1 and f[0]["action"] == "ignored" and f[0]["address"] == "0x300"
    assert [e["event"] for e in events(tmp_path)].count("partition_restart") == 0


def test_on_violation_option_is_checked(bulkhead, inmates):
    bad = subprocess.run([bulkhead, "monitor", "--image", str(inmates / "hello.elf"),
                          "--memory", "4M", "--on-violation", "sometimes"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--on-violation" in bad.stderr


def test_invalid_file_starts_nothing(bulkhead, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("system: {name: x, log_dir: %s/log}\npartitions:\n"
                    "  - {name: p, image: /nonexistent.elf, cpus: [0], memory: 3M}\n" % tmp_path)
    r = run(bulkhead, path)
    assert r.returncode == 2
    assert "bad.yaml:3:" in r.stderr and "nothing was started" in r.stderr
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("defect", ["truncated", "elf32", "wrong-machine", "not-elf"])
def test_bad_image_is_refused_before_running(bulkhead, inmates, tmp_path, defect):
    data = bytearray((inmates / "hello.elf").read_bytes())
    if defect == "truncated":
        data = data[:40]
    elif defect == "elf32":
        data[4] = 1
    elif defect == "wrong-machine":
        data[18] = 0xB7          # EM_AARCH64
    else:
        data = bytearray(b"#!/bin/sh\necho not an image\n")
    img = tmp_path / "bad.elf"
    img.write_bytes(bytes(data))
    path = write_system(tmp_path, [("p", img, "", 0, "")])
    r = run(bulkhead, path)
    assert r.returncode == 2
    assert "not an ELF64 x86-64 executable" in r.stderr
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_everything_cleanly(bulkhead, inmates, tmp_path, sig):
    img = private_image(tmp_path, inmates, "faults")
    path = write_system(tmp_path, [("a", img, "hang", 0, ""), ("b", img, "hang", 1, "")])
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        log = tmp_path / "log" / "b.console.log"
        if log.exists() and "halting forever" in log.read_text() and \
                "halting forever" in (tmp_path / "log" / "a.console.log").read_text():
            break
        time.sleep(0.05)
    assert len(monitors_of(tmp_path)) == 2
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + sig
    assert "stopped by" in err
    assert monitors_of(tmp_path) == []
    assert events(tmp_path)[-1]["event"] == "system_stopped"


def test_no_monitor_outlives_a_killed_supervisor(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "faults")
    path = write_system(tmp_path, [("a", img, "hang", 0, "")])
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline and not monitors_of(tmp_path):
        time.sleep(0.05)
    assert monitors_of(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline and monitors_of(tmp_path):
        time.sleep(0.05)
    assert monitors_of(tmp_path) == []


def test_help_is_true(bulkhead):
    r = subprocess.run([bulkhead, "run", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "usage: bulkhead run" in r.stdout and "events.jsonl" in r.stdout
    r = subprocess.run([bulkhead, "run"], capture_output=True, text=True)
    assert r.returncode == 2


REGIONS = """shared_regions:
  - {name: board, size: 64K, peers: [writer, reader]}
channels:
  - {name: speed, type: sampling, max_message: 64, refresh: 10ms,
     source: {partition: writer, port: OUT}, destinations: [{partition: reader, port: IN}]}
"""


def test_shared_region_reaches_its_peers(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "shmem")
    path = write_system(tmp_path, [("writer", img, "put board 0x5eed", 0, ""),
                                   ("reader", img, "get board 0x5eed", 1, "")], extra=REGIONS)
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reader   | shmem: got 0x5eed from 'board'" in r.stdout


def test_regions_are_listed_in_boot_information(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "hello")
    path = write_system(tmp_path, [("writer", img, "", 0, ""), ("reader", img, "", 1, "")],
                        extra=REGIONS)
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stderr
    assert "writer   | hello: region 'board' at 0x100000000, 64 KiB" in r.stdout
    assert "writer   | hello: region 'speed' at 0x100200000, 4 KiB" in r.stdout
    assert "reader   | hello: region 'speed' at 0x100200000, 4 KiB (read-only)" in r.stdout


def test_write_to_read_only_channel_is_a_violation(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "shmem")
    path = write_system(tmp_path, [("writer", img, "poke speed", 0, ""),
                                   ("reader", img, "poke speed", 1, "")], extra=REGIONS)
    r = run(bulkhead, path)
    assert r.returncode == 1
    assert "writer   | shmem: the write into 'speed' was allowed" in r.stdout
    faults = [e for e in events(tmp_path) if e["event"] == "fault"]
    assert [(f["partition"], f["access"], f["address"], f["direction"]) for f in faults] == \
        [("reader", "mmio", "0x100200000", "write")]



def test_cyclic_example_runs(bulkhead, inmates):
    r = run(bulkhead, ROOT / "examples" / "cyclic.yaml")
    assert r.returncode == 0, r.stderr
    for name in ("sensor", "control", "logger"):
        assert f"{name:<8} | hello: goodbye" in r.stdout
    evs = [json.loads(l) for l in open(ROOT / "build" / "run" / "cyclic" / "events.jsonl")]
    sched = [e for e in evs if e["event"] == "schedule"]
    assert len(sched) == 1 and sched[0]["switches"] >= 3


def test_cyclic_plan_holds_a_partition_outside_its_slot(bulkhead, inmates, tmp_path):
    """One partition owning 2 ms of every 10 ms frame: while it watches its own execution
    for 200 ms it must see itself stopped about once per frame. Without the plan it
    would run straight through (the gaps inmate on a dedicated CPU sees none)."""
    img = private_image(tmp_path, inmates, "gaps")
    path = tmp_path / "cyclic.yaml"
    path.write_text(f"""system:
  name: cyc
  cpus: [1]
  scheduling: cyclic
  plan: {{major_frame: 10ms, slots: [{{partition: p, start: 0ms, duration: 2ms}}]}}
  log_dir: {tmp_path}/log
partitions:
  - {{name: p, image: {img}, cmdline: "200", memory: 4M}}
""")
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stderr
    gaps = int(r.stdout.split("gaps: ")[1].split()[0])
    assert gaps >= 10, r.stdout      # ideally 20: one per frame


def test_cyclic_partitions_stop_cleanly_on_signal(bulkhead, inmates, tmp_path):
    img = private_image(tmp_path, inmates, "faults")
    path = tmp_path / "cyclic.yaml"
    path.write_text(f"""system:
  name: cyc
  cpus: [0]
  scheduling: cyclic
  plan:
    major_frame: 10ms
    slots: [{{partition: a, start: 0ms, duration: 5ms}}, {{partition: b, start: 5ms, duration: 5ms}}]
  log_dir: {tmp_path}/log
partitions:
  - {{name: a, image: {img}, cmdline: "hang", memory: 4M}}
  - {{name: b, image: {img}, cmdline: "hang", memory: 4M}}
""")
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and len(monitors_of(tmp_path)) < 2:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert monitors_of(tmp_path) == []


@pytest.mark.parametrize("example,status,expect", [
    ("demo", 0, ["logger   | shmem: got 0x2a from 'telemetry'"]),
    ("hello", 0, ["alpha    | hello: goodbye", "beta     | hello: goodbye"]),
    ("isolation", 1, ["worker   | gaps: "]),
    ("cyclic", 0, ["logger   | hello: goodbye"]),
    ("storage", 0, ["writer   | inmate-test: 28 checks, 0 failures",
                    "reader   | inmate-test: 23 checks, 0 failures"]),
])
def test_every_runnable_example_boots(bulkhead, inmates, example, status, expect):
    r = run(bulkhead, ROOT / "examples" / f"{example}.yaml")
    assert r.returncode == status, r.stdout + r.stderr
    for line in expect:
        assert line in r.stdout


def test_example_with_every_server_class_runs(bulkhead, inmates):
    # examples/servers.yaml: blk, net, console and rng servers, window and shared.
    r = run(bulkhead, ROOT / "examples" / "servers.yaml")
    assert r.returncode == 0, r.stderr
    for p in ("web", "db"):
        assert f"{p:<8} | hello: goodbye" in r.stdout, r.stdout


def test_demo_restart_survives_three_kills(bulkhead, inmates):
    """scripts/demo-restart.sh (the last part of `make demo`): three kill -9 of the block
    server of examples/restart.yaml, each answered by its hot standby, and both
    partitions end with 0 failures."""
    r = subprocess.run([str(ROOT / "scripts" / "demo-restart.sh")], capture_output=True,
                       text=True, timeout=180, env={**os.environ, "BULKHEAD": str(bulkhead)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("demo: kill -9 of I/O server 'blkio'") == 3, r.stdout
    assert r.stdout.count('"standby":true') == 3, r.stdout
    for p in ("one", "two"):
        assert f"{p:<8} | inmate-test: 61 checks, 0 failures" in r.stdout, r.stdout
