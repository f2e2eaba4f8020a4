"""Partitions with I/O devices start again: by `ctl restart`/`start`, and by their
`on_fault: restart` policy. The servers they use are started anew to give the new
monitor its connections; the servers' other partitions resume as after a server crash
and lose nothing."""
import json
import subprocess
import time

import pytest

from supervised import blk_pair, events, running, ctl as ctl_


def ctl(bulkhead, sock, *args):
    return ctl_(bulkhead, "--socket", sock, *args)


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_ctl_restart_partition_with_a_disk(bulkhead, inmates, tmp_path, isolation):
    """'one' is restarted twice while both partitions verify their slices of one disk:
    'one' starts from zeroed memory on new connections each time and passes its check
    in its last life; 'two', on the same server, never sees an error."""
    path = tmp_path / "pr.yaml"
    path.write_text(blk_pair(tmp_path, inmates, isolation, name="pr", loops=(4, 16)))
    proc, sock = running(bulkhead, path)
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
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err
    assert out.count("one      | inmate-test: ") == 1, out   # only its last life finished
    assert out.count("two      | inmate-test: ") == 1, out
    assert out.count(", 0 failures") == 2, out
    ev = events(tmp_path)
    assert [e["start"] for e in ev if e["event"] == "partition_start"
            and e["partition"] == "one"] == [1, 2, 3]
    exits = [e for e in ev if e["event"] == "server_exit"]
    assert [e.get("reason") for e in exits[:2]] == ["partition_restart"] * 2, exits
    assert not [e for e in ev if e.get("state") == "needs_reset"]


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
    assert [e["reason"] for e in ev if e["event"] == "server_exit" and "reason" in e] == \
        ["partition_restart"] * 2, ev
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
