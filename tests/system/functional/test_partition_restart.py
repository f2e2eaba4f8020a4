"""Partitions with I/O devices start again: by `ctl restart`/`start`, and by their
`on_fault: restart` policy. The running servers they use give the new monitor new
connections over their control channels; the servers' other partitions notice nothing:
no server restart, no reconnection."""
import json
import pathlib
import subprocess
import sys
import time

import pytest

from supervised import blk_pair, events, running, ctl as ctl_

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netsys  # noqa: E402
from netsys import Partition  # noqa: E402


def ctl(bulkhead, sock, *args):
    return ctl_(bulkhead, "--socket", sock, *args)


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_ctl_restart_partition_with_a_disk(bulkhead, inmates, tmp_path, isolation):
    """'one' is restarted twice while both partitions verify their slices of one disk:
    'one' starts from zeroed memory on new connections each time and passes its check
    in its last life; 'two', on the same server, never sees an error, nor even a
    reconnection: the server process is the same throughout."""
    path = tmp_path / "pr.yaml"
    path.write_text(blk_pair(tmp_path, inmates, isolation, name="pr", loops=(4, 16)))
    proc, sock = running(bulkhead, path)
    pid = server_pid(bulkhead, sock)
    for _ in range(2):
        time.sleep(0.5)
        r = ctl(bulkhead, sock, "restart", "one")
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 20
        while time.time() < deadline:
            parts = {p["name"]: p for p in
                     json.loads(ctl(bulkhead, sock, "--json", "status").stdout)["partitions"]}
            if parts["one"]["state"] == "running" and parts["one"]["starts"] >= 1 + _ + 1:
                break
            time.sleep(0.05)
    assert server_pid(bulkhead, sock) == pid
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err
    assert out.count("one      | inmate-test: ") == 1, out   # only its last life finished
    assert out.count("two      | inmate-test: ") == 1, out
    assert out.count(", 0 failures") == 2, out
    ev = events(tmp_path)
    assert [e["start"] for e in ev if e["event"] == "partition_start"
            and e["partition"] == "one"] == [1, 2, 3]
    assert_neighbour_undisturbed(ev, "blkio", "one", 2, "two")
    assert not [e for e in ev if e.get("state") == "needs_reset"]


def server_pid(bulkhead, sock):
    deadline = time.time() + 20
    while time.time() < deadline:
        pid = json.loads(ctl(bulkhead, sock, "--json", "status").stdout)["io_servers"][0]["pid"]
        if pid:
            return pid
        time.sleep(0.05)
    raise AssertionError("the server did not start")


def assert_neighbour_undisturbed(ev, server, restarted, times, neighbour):
    """The server started once and only ended with the system; the restarted partition
    got its connections from it `times` times; the neighbour never reconnected."""
    assert [e["server"] for e in ev if e["event"] == "server_start"] == [server], ev
    assert not [e for e in ev if e["event"] == "server_restart"], ev
    assert not [e for e in ev if e["event"] in ("server_exit", "server_conn_replace_failed")
                and (e.get("reason") or not e.get("expected"))], ev
    assert len([e for e in ev if e["event"] == "server_exit"]) <= 1, ev
    replaced = [e for e in ev if e["event"] == "server_conn_replaced"]
    assert [(e["server"], e["partition"], e["device"]) for e in replaced] == \
        [(server, restarted, 0)] * times, replaced
    assert not [e for e in ev if e["event"] == "device" and e.get("partition") == neighbour], \
        [e for e in ev if e["event"] == "device"]


def test_faulting_partition_with_a_device_restarts_up_to_its_budget(bulkhead, inmates,
                                                                       tmp_path):
    """A partition with an rng device that faults on every run is restarted
    max_restarts times (each time on new connections), then stays halted; its
    neighbour on the same rng server reads entropy undisturbed."""
    path = tmp_path / "pf.yaml"
    path.write_text(f"""system: {{name: pf, cpus: [0, 1], log_dir: {tmp_path}/log}}
io_servers:
  - {{name: rng, class: rng}}
partitions:
  - {{name: bad, image: {inmates}/faults.elf, cmdline: "port", cpus: [0], memory: 16M,
     health: {{on_fault: restart, max_restarts: 2}}, devices: [{{type: rng, server: rng}}]}}
  - {{name: good, image: {inmates}/rngcheck.elf, cmdline: "bytes=1048576", cpus: [1],
     memory: 16M, devices: [{{type: rng, server: rng}}]}}
""")
    r = subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr          # 'bad' did not end well
    ev = events(tmp_path)
    starts = [e["start"] for e in ev if e["event"] == "partition_start"
              and e["partition"] == "bad"]
    assert starts == [1, 2, 3], ev
    assert_neighbour_undisturbed(ev, "rng", "bad", 2, "good")
    summary = r.stderr.split("stopped:", 1)[1]
    assert "bad" in summary and "max_restarts" in summary, r.stderr
    assert "good             exited with status 0" in summary, r.stderr
    assert "good     | inmate-test: " in r.stdout and ", 0 failures" in r.stdout, r.stdout


def test_partition_whose_server_failed_is_not_started(bulkhead, inmates, tmp_path):
    """A server with 'restart: never' that died leaves its partition's devices failed:
    starting that partition again is refused with a reason, not started without them."""
    path = tmp_path / "nf.yaml"
    path.write_text(f"""system: {{name: nf, cpus: [0, 1], log_dir: {tmp_path}/log}}
io_servers:
  - {{name: rng, class: rng, restart: never}}
partitions:
  - {{name: p, image: {inmates}/faults.elf, cmdline: "hang", cpus: [0], memory: 16M,
     devices: [{{type: rng, server: rng}}]}}
  - {{name: q, image: {inmates}/faults.elf, cmdline: "hang", cpus: [1], memory: 4M}}
""")
    proc, sock = running(bulkhead, path)
    try:
        deadline = time.time() + 20
        pid = None
        while time.time() < deadline and not pid:
            pid = json.loads(ctl(bulkhead, sock, "--json", "status").stdout)["io_servers"][0]["pid"]
            time.sleep(0.05)
        subprocess.run(["kill", "-9", str(pid)], check=True)
        while time.time() < deadline and json.loads(ctl(
                bulkhead, sock, "--json", "status").stdout)["io_servers"][0]["state"] != "failed":
            time.sleep(0.05)
        assert ctl(bulkhead, sock, "stop", "p").returncode == 0
        while time.time() < deadline and json.loads(ctl(
                bulkhead, sock, "--json", "status").stdout)["partitions"][0]["state"] != "stopped":
            time.sleep(0.05)
        r = ctl(bulkhead, sock, "start", "p")
        assert r.returncode == 1
        assert "partition 'p': an I/O server it uses has failed for good (restart it first)" \
            in r.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


A_IP, B_IP = "10.0.0.1", "10.0.0.2"


def test_ctl_restart_pinger_leaves_its_peer_on_the_switch(bulkhead, inmates, tmp_path):
    """The pinger is restarted while it pings its echoer through one net server: its new
    port is on the switch with the same MAC and its last life loses nothing; the echoer
    never reconnects and the server is never restarted."""
    count = 300
    parts = [
        Partition("pinger", inmates / "netping.elf",
                  f"ip={A_IP}/24 peer={B_IP} count={count} size=56 interval=5000",
                  [{"network": "lan0"}], cpu=0),
        Partition("echoer", inmates / "netecho.elf", f"ip={B_IP}/24 idle-exit=3000",
                  [{"network": "lan0"}], cpu=1),
    ]
    path = tmp_path / "system.yaml"
    path.write_text(netsys.system_yaml("nr", "log", parts))
    proc, sock = running(bulkhead, path)
    try:
        pid = server_pid(bulkhead, sock)
        time.sleep(0.7)
        r = ctl(bulkhead, sock, "restart", "pinger")
        assert r.returncode == 0, r.stderr
        assert server_pid(bulkhead, sock) == pid
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    res = netsys.Result(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                        tmp_path / "log")
    assert res.returncode == 0, res.describe()
    ev = res.events()
    assert [e["start"] for e in ev if e["event"] == "partition_start"
            and e["partition"] == "pinger"] == [1, 2], ev
    ping = res.ping("pinger")
    assert ping is not None, res.describe()
    assert (ping["sent"], ping["received"], ping["lost"]) == (count, count, 0), ping
    assert_neighbour_undisturbed(ev, "netio", "pinger", 1, "echoer")
