"""`bulkhead ctl` against a running system: every command, every error, and the control
socket's own guarantees (mode 0600, removed at exit, one supervisor per socket)."""
import json
import os
import stat
import subprocess
import time

import pytest


@pytest.fixture
def system(bulkhead, inmates, tmp_path):
    """A running system: 'a' never ends, 'b' prints and exits. Yields (path, socket, proc)."""
    path = tmp_path / "ctl.yaml"
    path.write_text(f"""system: {{name: ctl, cpus: [0, 1], log_dir: {tmp_path}/log}}
partitions:
  - {{name: a, image: {inmates}/faults.elf, cmdline: "hang", cpus: [0], memory: 4M}}
  - {{name: b, image: {inmates}/hello.elf, cpus: [1], memory: 4M}}
""")
    sock = tmp_path / "log" / "control.sock"
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and not sock.exists():
        time.sleep(0.02)
    assert sock.exists()
    yield path, sock, proc
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=20)


def ctl(bulkhead, *args):
    return subprocess.run([bulkhead, "ctl", *map(str, args)], capture_output=True, text=True,
                          timeout=20)


def wait_state(bulkhead, sock, name, state):
    deadline = time.time() + 20
    while time.time() < deadline:
        r = ctl(bulkhead, "--socket", sock, "--json", "status")
        parts = {p["name"]: p for p in json.loads(r.stdout)["partitions"]}
        if parts[name]["state"] == state:
            return parts[name]
        time.sleep(0.05)
    raise AssertionError(f"{name} never became {state}")


def test_status_table_and_json(bulkhead, system):
    path, sock, _ = system
    wait_state(bulkhead, sock, "b", "stopped")
    r = ctl(bulkhead, "--system", path, "status")
    assert r.returncode == 0, r.stderr
    assert "PARTITION" in r.stdout and "STATE" in r.stdout
    assert any(l.startswith("a ") and "running" in l for l in r.stdout.splitlines())
    assert any(l.startswith("b ") and "exited with status 0" in l for l in r.stdout.splitlines())
    j = json.loads(ctl(bulkhead, "--socket", sock, "--json", "status").stdout)
    a = {p["name"]: p for p in j["partitions"]}["a"]
    assert a["cpus"] == [0] and a["memory"] == 4 << 20 and a["pid"] > 0
    assert a["uptime_ms"] >= 0 and a["restarts"] == 0


def test_socket_is_owner_only_and_removed_at_exit(bulkhead, system):
    path, sock, proc = system
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert ctl(bulkhead, "--socket", sock, "stop", "a").returncode == 0
    proc.communicate(timeout=20)
    assert not sock.exists()


def test_stop_restart_start(bulkhead, system):
    path, sock, proc = system
    r = ctl(bulkhead, "--socket", sock, "restart", "a")
    assert r.returncode == 0, r.stderr
    a = wait_state(bulkhead, sock, "a", "running")
    deadline = time.time() + 20
    while a["starts"] < 2 and time.time() < deadline:
        a = wait_state(bulkhead, sock, "a", "running")
    assert a["starts"] == 2
    r = ctl(bulkhead, "--socket", sock, "start", "a")
    assert r.returncode == 1 and "already running" in r.stderr
    # stopping the last running partition ends the system
    assert ctl(bulkhead, "--socket", sock, "stop", "a").returncode == 0
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "stopped by the operator" in err
    evs = [json.loads(l) for l in open(path.parent / "log" / "events.jsonl")]
    kinds = [e["event"] for e in evs]
    assert "operator_restart" in kinds and "operator_stop" in kinds


def test_start_a_stopped_partition(bulkhead, system):
    path, sock, _ = system
    wait_state(bulkhead, sock, "b", "stopped")
    r = ctl(bulkhead, "--socket", sock, "stop", "b")
    assert r.returncode == 1 and "not running" in r.stderr
    assert ctl(bulkhead, "--socket", sock, "start", "b").returncode == 0
    deadline = time.time() + 20
    while time.time() < deadline:
        b = wait_state(bulkhead, sock, "b", "stopped")
        if b["starts"] == 2:
            break
    assert b["starts"] == 2 and b["exit_status"] == 0


def test_events_and_console_stream(bulkhead, system):
    path, sock, _ = system
    ev = subprocess.Popen([bulkhead, "ctl", "--socket", sock, "--json", "events"],
                          stdout=subprocess.PIPE, text=True)
    con = subprocess.Popen([bulkhead, "ctl", "--socket", sock, "console", "a"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert ctl(bulkhead, "--socket", sock, "restart", "a").returncode == 0
    deadline = time.time() + 20
    lines = []
    while time.time() < deadline:
        line = ev.stdout.readline()
        lines.append(json.loads(line))
        if lines[-1]["event"] == "partition_start":
            break
    kinds = [e["event"] for e in lines]
    assert "operator_restart" in kinds
    assert kinds[kinds.index("operator_restart") + 1] == "partition_restart"
    assert con.stdout.readline().strip() == "faults: halting forever"
    ev.kill()
    con.kill()


@pytest.mark.parametrize("args,message", [
    (["stop", "nosuch"], "no such partition 'nosuch'"),
    (["console", "nosuch"], "no such partition 'nosuch'"),
    (["dance", "a"], "unknown command 'dance'"),
])
def test_command_errors(bulkhead, system, args, message):
    _, sock, _ = system
    r = ctl(bulkhead, "--socket", sock, *args)
    assert r.returncode == 1
    assert message in r.stderr


def test_socket_errors(bulkhead, system, tmp_path):
    _, sock, _ = system
    r = ctl(bulkhead, "--socket", tmp_path / "none.sock", "status")
    assert r.returncode == 2 and "no control socket" in r.stderr
    r = subprocess.run(["runuser", "-u", "nobody", "--", bulkhead, "ctl", "--socket", str(sock),
                        "status"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "permission denied" in r.stderr
    r = ctl(bulkhead, "status")
    assert r.returncode == 2 and "usage" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "stop")
    assert r.returncode == 2 and "needs a partition" in r.stderr


def test_second_supervisor_on_the_same_socket_is_refused(bulkhead, system):
    path, sock, _ = system
    r = subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert "another supervisor is listening there" in r.stderr
    assert ctl(bulkhead, "--socket", sock, "status").returncode == 0


def test_stale_socket_is_replaced(bulkhead, inmates, tmp_path):
    import socket
    stale = tmp_path / "log" / "control.sock"
    stale.parent.mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()                    # bound, never listened: a dead supervisor's leftover
    path = tmp_path / "s.yaml"
    path.write_text(f"system: {{name: s, log_dir: {tmp_path}/log}}\npartitions:\n"
                    f"  - {{name: p, image: {inmates}/hello.elf, cpus: [0], memory: 4M}}\n")
    r = subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
