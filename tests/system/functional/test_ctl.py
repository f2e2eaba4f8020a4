"""`bulkhead ctl` against a running system: every command, every error, and the control
socket's own guarantees (mode 0600, removed at exit, one supervisor per socket)."""
import json
import os
import stat
import subprocess
import time

import pytest

from supervised import running


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


def test_restart_needs_a_name(bulkhead, system):
    _, sock, _ = system
    r = ctl(bulkhead, "--socket", sock, "restart")
    assert r.returncode == 2 and "needs a partition or I/O server name" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "restart", "a", "b")
    assert r.returncode == 2 and "'restart server NAME'" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "restart", "nosuch")
    assert r.returncode == 1 and "no partition or I/O server named 'nosuch'" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "restart", "server", "a")
    assert r.returncode == 1 and "no such I/O server 'a'" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "restart", "partition", "a")
    assert r.returncode == 0 and "restart partition a: done" in r.stdout


def blk_system(tmp_path, inmates, restart, name="blkio", part="one", loops=40):
    path = tmp_path / "srv.yaml"
    path.write_text(f"""system: {{name: srv, cpus: [0, 1], log_dir: {tmp_path}/log}}
io_servers:
  - name: {name}
    class: blk
    restart: {restart}
    disks:
      - {{name: d, file: {tmp_path}/disk.img, size: 8M, create: true}}
partitions:
  - {{name: {part}, image: {inmates}/blkcheck.elf, cmdline: "seed=5 loops={loops}", cpus: [0],
     memory: 16M, devices: [{{type: blk, server: {name}, disk: d, offset: 0, size: 2M}}]}}
""")
    return path


def server_pid(bulkhead, sock):
    return json.loads(ctl(bulkhead, "--socket", sock, "--json", "status").stdout)[
        "io_servers"][0]["pid"]


@pytest.mark.parametrize("policy", ["always", "never"])
def test_restart_an_io_server(bulkhead, inmates, tmp_path, policy):
    """`restart SERVER` ends the server and starts a new one at once, whatever its
    restart policy; the partition's device resumes and its data checks all pass."""
    proc, sock = running(bulkhead, blk_system(tmp_path, inmates, policy, name="blkio"))
    pids = [server_pid(bulkhead, sock)]
    for _ in range(3):
        time.sleep(0.3)                            # requests in flight
        r = ctl(bulkhead, "--socket", sock, "restart", "blkio")
        assert r.returncode == 0, r.stderr
        assert "restart blkio: done" in r.stdout
        pids.append(server_pid(bulkhead, sock))
    out, err = proc.communicate(timeout=120)
    assert len(set(pids)) == 4, "every restart is a new process"
    assert proc.returncode == 0, out + err
    assert "inmate-test: " in out and ", 0 failures" in out
    evs = [json.loads(l) for l in open(tmp_path / "log" / "events.jsonl")]
    ops = [e for e in evs if e["event"] == "operator_restart"]
    assert [e["server"] for e in ops] == ["blkio"] * 3
    exits = [e for e in evs if e["event"] == "server_exit" and e.get("reason") == "operator"]
    assert len(exits) == 3 and all(e["expected"] for e in exits)
    assert len([e for e in evs if e["event"] == "server_restart"]) == 3
    assert not [e for e in evs if e["event"] == "server_failed"]
    assert not [e for e in evs if e.get("state") == "needs_reset"]


def test_restart_a_name_both_kinds_have(bulkhead, inmates, tmp_path):
    proc, sock = running(bulkhead, blk_system(tmp_path, inmates, "always", name="x",
                                              part="x", loops=200))
    try:
        r = ctl(bulkhead, "--socket", sock, "restart", "x")
        assert r.returncode == 1
        assert ("'x' names both a partition and an I/O server: say 'restart partition x' "
                "or 'restart server x'") in r.stderr
        pid = server_pid(bulkhead, sock)
        r = ctl(bulkhead, "--socket", sock, "restart", "server", "x")
        assert r.returncode == 0 and "restart server x: done" in r.stdout
        assert server_pid(bulkhead, sock) not in (pid, None)
        r = ctl(bulkhead, "--socket", sock, "stop", "server")
        assert r.returncode == 1 and "no such partition 'server'" in r.stderr
    finally:
        proc.send_signal(15)
        proc.communicate(timeout=60)


@pytest.fixture
def echo_system(bulkhead, inmates, tmp_path):
    """'e' echoes the lines its UART receives (wdog echo-uart); 'a' never ends."""
    path = tmp_path / "echo.yaml"
    path.write_text(f"""system: {{name: echo, cpus: [0, 1], log_dir: {tmp_path}/log}}
partitions:
  - {{name: e, image: {inmates}/wdog.elf, cmdline: "echo-uart", cpus: [0], memory: 4M}}
  - {{name: a, image: {inmates}/faults.elf, cmdline: "hang", cpus: [1], memory: 4M}}
""")
    proc, sock = running(bulkhead, path)
    log = tmp_path / "log" / "e.console.log"
    deadline = time.time() + 20
    while time.time() < deadline and "waiting for input" not in log.read_text():
        time.sleep(0.02)
    yield sock, log, proc
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=20)


def test_console_send(bulkhead, echo_system):
    sock, log, proc = echo_system
    r = ctl(bulkhead, "--socket", sock, "console", "e", "--send", "hello, partition")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    long = "x" * 1500                              # more than one request's worth
    assert ctl(bulkhead, "--socket", sock, "console", "e", "--send", long).returncode == 0
    assert ctl(bulkhead, "--socket", sock, "console", "e", "--send", "exit").returncode == 0
    deadline = time.time() + 20
    while time.time() < deadline and "wdog: echo 'exit'" not in log.read_text():
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert lines[1].startswith("wdog: echo 'hello, partition' (")
    assert lines[2].startswith(f"wdog: echo '{long[:127]}' (")   # it keeps 127 bytes a line
    assert lines[3].startswith("wdog: echo 'exit' (")
    assert wait_state(bulkhead, sock, "e", "stopped")["exit_status"] == 0


def test_console_stdin_goes_to_the_uart(bulkhead, echo_system):
    sock, log, proc = echo_system
    con = subprocess.Popen([bulkhead, "ctl", "--socket", sock, "console", "e"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    con.stdin.write("first line\nsecond\n")
    con.stdin.flush()
    seen = [con.stdout.readline().strip() for _ in range(2)]
    assert seen[0].startswith("wdog: echo 'first line' (")
    assert seen[1].startswith("wdog: echo 'second' (")
    con.stdin.write("exit\n")
    con.stdin.close()                              # the stream goes on after stdin ends
    assert con.stdout.readline().startswith("wdog: echo 'exit'")
    con.kill()
    con.wait()


def test_console_input_errors(bulkhead, echo_system):
    sock, log, proc = echo_system
    r = ctl(bulkhead, "--socket", sock, "console", "nosuch", "--send", "x")
    assert r.returncode == 1 and "no such partition 'nosuch'" in r.stderr
    r = ctl(bulkhead, "--socket", sock, "status", "--send", "x")
    assert r.returncode == 2 and "--send goes with 'console PARTITION'" in r.stderr
    assert ctl(bulkhead, "--socket", sock, "stop", "a").returncode == 0
    deadline = time.time() + 20
    while time.time() < deadline:
        r = ctl(bulkhead, "--socket", sock, "console", "a", "--send", "x")
        if r.returncode:
            break
        time.sleep(0.05)
    assert r.returncode == 1 and "partition 'a' is not running" in r.stderr


def blk_counts(bulkhead, sock):
    servers = json.loads(ctl(bulkhead, "--socket", sock, "--json", "status").stdout)["io_servers"]
    return servers[0]["devices"]


def test_status_counts_block_requests_across_restarts(bulkhead, inmates, tmp_path):
    """A blk server's per-device counters reach `status` (JSON and table) while it runs,
    keep counting across a restart (the supervisor adds up the server's lives), and each
    life's totals are logged when it ends."""
    proc, sock = running(bulkhead, blk_system(tmp_path, inmates, "always", loops=200))
    try:
        deadline = time.time() + 20
        # reports come at most once a second; the first may be the driver's GET_ID alone
        while time.time() < deadline and not [d for d in blk_counts(bulkhead, sock)
                                              if d["writes"] and d["reads"]]:
            time.sleep(0.1)
        before = blk_counts(bulkhead, sock)
        assert len(before) == 1 and before[0]["partition"] == "one" and \
            before[0]["device"] == 0, before
        assert before[0]["writes"] > 0 and before[0]["reads"] > 0, before
        assert before[0]["write_bytes"] % 512 == 0 and before[0]["errors"] == 0, before
        r = ctl(bulkhead, "--socket", sock, "status")
        assert "DEVICE" in r.stdout and "one/0" in r.stdout and " writes=" in r.stdout, r.stdout
        assert ctl(bulkhead, "--socket", sock, "restart", "blkio").returncode == 0
        time.sleep(1.5)
        after = blk_counts(bulkhead, sock)
        for k in ("reads", "writes", "read_bytes", "write_bytes"):
            assert after[0][k] > before[0][k], (before, after)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    evs = [json.loads(l) for l in open(tmp_path / "log" / "events.jsonl")]
    lives = [e for e in evs if e["event"] == "counters"]
    assert len(lives) == 2 and all(e["server"] == "blkio" and e["partition"] == "one"
                                   for e in lives), lives
    # each logged total is the running sum: the second covers both lives
    assert lives[1]["writes"] >= after[0]["writes"] > lives[0]["writes"], lives
