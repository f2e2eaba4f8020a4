"""I/O servers that die are restarted by `bulkhead run` and partitions never notice: the
block server is killed with SIGKILL again and again while partitions verify data on it,
in window and shared isolation; with `restart: never` the devices fail instead, and say
so."""
import json
import os
import signal
import subprocess
import time

import pytest

from supervised import blk_pair

KILLS = 10


def system_text(tmp_path, inmates, isolation, restart="always", loops=12):
    return blk_pair(tmp_path, inmates, isolation, server=f"\n    restart: {restart}",
                    loops=(loops, loops))


def server_pid(bulkhead, sock):
    r = subprocess.run([bulkhead, "ctl", "--socket", str(sock), "--json", "status"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode:
        return None
    servers = json.loads(r.stdout)["io_servers"]
    return servers[0]["pid"]


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_killed_block_server_loses_nothing(bulkhead, inmates, tmp_path, isolation):
    path = tmp_path / "rs.yaml"
    path.write_text(system_text(tmp_path, inmates, isolation))
    sock = tmp_path / "log" / "control.sock"
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kills, killed = 0, set()
    deadline = time.time() + 120
    while kills < KILLS and proc.poll() is None and time.time() < deadline:
        pid = server_pid(bulkhead, sock) if sock.exists() else None
        if pid and pid not in killed:
            time.sleep(0.3)                      # let requests get in flight
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert kills == KILLS, f"only {kills} kills before the partitions finished:\n{out}"
    assert proc.returncode == 0, out + err
    for name in ("one", "two"):
        assert f"{name:<8} | inmate-test: " in out and ", 0 failures" in out
    events = [json.loads(l) for l in open(tmp_path / "log" / "events.jsonl")]
    assert sum(e["event"] == "server_restart" for e in events) >= KILLS
    assert not [e for e in events if e.get("state") == "needs_reset"]


def test_restart_never_fails_the_devices(bulkhead, inmates, tmp_path):
    """The server is not restarted: each partition's device goes NEEDS_RESET (the guest's
    driver then sees I/O errors rather than hanging) and the events say why."""
    path = tmp_path / "rs.yaml"
    path.write_text(system_text(tmp_path, inmates, "window", restart="never", loops=30))
    sock = tmp_path / "log" / "control.sock"
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    pid = None
    while not pid and time.time() < deadline:
        pid = server_pid(bulkhead, sock) if sock.exists() else None
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    log = tmp_path / "log" / "events.jsonl"
    failed = set()
    while len(failed) < 2 and time.time() < deadline:
        events = [json.loads(l) for l in open(log)]
        failed = {e["partition"] for e in events if e.get("state") == "needs_reset"}
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert failed == {"one", "two"}
    assert "I/O server 'blkio' ended and has 'restart: never'" in err
    events = [json.loads(l) for l in open(log)]
    assert [e["server"] for e in events if e["event"] == "server_failed"] == ["blkio"]
    assert not [e for e in events if e["event"] == "server_restart"]
