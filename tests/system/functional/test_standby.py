"""Hot standby I/O servers (`standby: true`): a second `bulkhead ioserver --standby-fd`
process waits, already exec'd; when the server dies the supervisor hands it the dead
server's command line and descriptors and it serves at once, while a new standby is
started. Partitions verify their data across the kills; a dead standby is replaced; the
standby side refuses what is not the supervisor's plan."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from supervised import blk_pair, events

KILLS = 5


def system_text(tmp_path, inmates, isolation, loops=20):
    return blk_pair(tmp_path, inmates, isolation, name="sb", server="\n    standby: true",
                    loops=(loops, loops))


def wait_for(proc, tmp_path, pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        ev = events(tmp_path)
        if pred(ev):
            return ev
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"never saw {what}:\n{out}\n{err}\n{ev}")
        time.sleep(0.02)


def count(ev, name):
    return sum(e["event"] == name for e in ev)


def start(bulkhead, tmp_path, inmates, isolation, loops=20):
    path = tmp_path / "sb.yaml"
    path.write_text(system_text(tmp_path, inmates, isolation, loops))
    return subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_standby_takes_over_every_kill(bulkhead, inmates, tmp_path, isolation):
    """Each kill -9 of the server is answered by the waiting standby (the new server's
    pid is the standby's), a new standby follows, and both partitions verify every
    block."""
    proc = start(bulkhead, tmp_path, inmates, isolation)
    for k in range(KILLS):
        ev = wait_for(proc, tmp_path, lambda ev: count(ev, "standby_start") == k + 1,
                      f"standby {k + 1}")
        server = [e for e in ev if e["event"] == "server_start"][-1]
        time.sleep(0.3)                      # requests in flight
        os.kill(server["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    for name in ("one", "two"):
        assert f"{name:<8} | inmate-test: " in out
    assert out.count(", 0 failures") == 2, out
    ev = events(tmp_path)
    standbys = [e["pid"] for e in ev if e["event"] == "standby_start"]
    starts = [e for e in ev if e["event"] == "server_start"]
    assert len(starts) == KILLS + 1, starts
    assert not starts[0]["standby"]
    # every restart was the standby started before it, not a fork + exec
    assert [s["standby"] for s in starts[1:]] == [True] * KILLS, starts
    assert [s["pid"] for s in starts[1:]] == standbys[:KILLS], (starts, standbys)
    assert [e["restarts"] for e in ev if e["event"] == "server_restart"] == \
        list(range(1, KILLS + 1))
    assert not [e for e in ev if e.get("state") == "needs_reset"]
    # nothing outlives run: no server, no standby
    for pid in standbys + [s["pid"] for s in starts]:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_dead_standby_is_replaced_and_shown(bulkhead, inmates, tmp_path):
    """A standby that dies is reported and replaced; `ctl status` names it; the server
    itself goes on undisturbed."""
    proc = start(bulkhead, tmp_path, inmates, "window", loops=30)
    ev = wait_for(proc, tmp_path, lambda ev: count(ev, "standby_start") == 1, "a standby")
    first = [e for e in ev if e["event"] == "standby_start"][0]["pid"]
    r = subprocess.run([bulkhead, "ctl", "--socket", str(tmp_path / "log" / "control.sock"),
                        "--json", "status"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["io_servers"][0]["standby"] == first
    r = subprocess.run([bulkhead, "ctl", "--socket", str(tmp_path / "log" / "control.sock"),
                        "status"], capture_output=True, text=True, timeout=10)
    assert "STANDBY" in r.stdout and str(first) in r.stdout, r.stdout
    os.kill(first, signal.SIGKILL)
    ev = wait_for(proc, tmp_path, lambda ev: count(ev, "standby_start") == 2,
                  "a second standby")
    gone = [e for e in ev if e["event"] == "standby_exit"]
    assert gone == [{**gone[0], "server": "blkio", "pid": first, "signal": 9}], gone
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    ev = events(tmp_path)
    assert count(ev, "server_start") == 1 and count(ev, "server_restart") == 0, ev
    assert count(ev, "standby_exit") == 1, ev       # the last one ends quietly with run


def standby_process(bulkhead, cls="rng"):
    """A standby as the supervisor starts it, with our end of its channel."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([bulkhead, "ioserver", cls, "--standby-fd", str(theirs.fileno())],
                            pass_fds=[theirs.fileno()], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    theirs.close()
    return proc, ours


def plan_message(argv, dsts=(), magic=0x42485342, argc=None):
    head = magic.to_bytes(4, "little") + len(dsts).to_bytes(4, "little") + \
        (len(argv) if argc is None else argc).to_bytes(4, "little") + bytes(4)
    return head + b"".join(d.to_bytes(4, "little", signed=True) for d in dsts) + \
        b"".join(a.encode() + b"\0" for a in argv)


def test_standby_not_needed_exits_quietly(bulkhead):
    proc, ours = standby_process(bulkhead)
    ours.close()
    out, err = proc.communicate(timeout=10)
    assert (proc.returncode, out, err) == (0, "", "")


def test_standby_becomes_the_server_it_is_sent(bulkhead, tmp_path):
    """The plan's descriptor lands at its number and the command line runs: here an rng
    server on a socket pair whose other end we hold, which then answers vhost-user."""
    proc, ours = standby_process(bulkhead)
    front, back = socket.socketpair()
    msg = plan_message(["bulkhead", "ioserver", "rng", "--name", "r",
                        "--conn", "fd=9,partition=p,device=0"], dsts=[9])
    ours.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                          back.fileno().to_bytes(4, "little"))])
    back.close()
    # VHOST_USER_GET_FEATURES (1), version 1 flags, no payload
    front.sendall((1).to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(4))
    front.settimeout(10)
    reply = front.recv(64)
    assert int.from_bytes(reply[:4], "little") == 1 and len(reply) == 20, reply
    assert int.from_bytes(reply[12:20], "little") & (1 << 32), "no VERSION_1 offered"
    front.close()                   # its only connection: the server ends
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert '"event":"ready","server":"r"' in err


@pytest.mark.parametrize("msg,why", [
    (plan_message(["bulkhead", "ioserver", "rng"], magic=1), "is not a plan"),
    (plan_message(["bulkhead", "ioserver", "blk", "--conn", "fd=9,partition=p"]),
     "not for this server"),
    (plan_message(["bulkhead", "ioserver", "rng"], argc=5), "not for this server"),
    (plan_message(["bulkhead", "ioserver", "rng"], dsts=[9]), "is not a plan"),
    (b"\x01\x02", "cut short"),
])
def test_standby_refuses_what_is_not_a_plan(bulkhead, msg, why):
    proc, ours = standby_process(bulkhead)
    ours.send(msg)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2, err
    assert f"bulkhead ioserver: standby: " in err and why in err, err


def test_standby_takes_no_devices(bulkhead):
    r = subprocess.run([bulkhead, "ioserver", "rng", "--standby-fd", "0", "--conn",
                        "fd=0,partition=p"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--standby-fd takes no device" in r.stderr


def test_standby_after_a_partition_restart(bulkhead, inmates, tmp_path):
    """'one' is restarted (its new connections come over the server's control channel),
    then the server is killed: the standby takes over with the connections as they are
    now, and its own control channel gives 'one' new connections at the next restart.
    Both partitions verify every block."""
    path = tmp_path / "sb.yaml"
    path.write_text(blk_pair(tmp_path, inmates, "window", name="sb",
                             server="\n    standby: true", loops=(8, 20)))
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sock = tmp_path / "log" / "control.sock"

    def restart_one(n):
        r = subprocess.run([bulkhead, "ctl", "--socket", str(sock), "restart", "one"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        wait_for(proc, tmp_path, lambda ev: count(ev, "server_conn_replaced") == n,
                 f"replacement {n}")

    wait_for(proc, tmp_path, lambda ev: count(ev, "standby_start") == 1, "the standby")
    time.sleep(0.3)
    restart_one(1)
    time.sleep(0.3)
    server = [e for e in events(tmp_path) if e["event"] == "server_start"][-1]
    os.kill(server["pid"], signal.SIGKILL)
    wait_for(proc, tmp_path, lambda ev: count(ev, "standby_start") == 2, "a new standby")
    time.sleep(0.3)
    restart_one(2)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert out.count(", 0 failures") == 2, out
    ev = events(tmp_path)
    assert [e["start"] for e in ev if e["event"] == "partition_start"
            and e["partition"] == "one"] == [1, 2, 3]
    assert [s["standby"] for s in ev if s["event"] == "server_start"] == [False, True], ev
    assert count(ev, "server_restart") == 1
    assert not [e for e in ev if e["event"] == "server_exit" and e.get("reason")], ev
    assert [(e["partition"], e["device"]) for e in ev
            if e["event"] == "server_conn_replaced"] == [("one", 0)] * 2
    assert not [e for e in ev if e.get("state") == "needs_reset"]
