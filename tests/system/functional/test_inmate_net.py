"""The inmates' virtio-net driver and network stack end to end, on bulkhead's monitor
and a standalone `bulkhead ioserver net` (every monitor that connects is a port of one
switch): netping against netecho (ICMP echo of 56, 1000 and 1472 bytes, and UDP echo, no
loss, every reply checked byte for byte by netping), a netperf stream counted by
netecho, a forged source address dropped by the switch, and argument errors; in window
and shared isolation. The same programs under `bulkhead run` are test_network.py's."""
import json
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netsys  # noqa: E402

ISOLATIONS = ["window", "shared"]
A_IP, B_IP = "10.0.0.1", "10.0.0.2"
TIMEOUT = 180


class Guest:
    """A monitor running one net inmate on the standalone server's socket (or none)."""

    def __init__(self, bulkhead, image, cmdline, sock=None, isolation="window"):
        argv = [bulkhead, "monitor", "--image", str(image), "--memory", "16M",
                "--cmdline", cmdline]
        if sock:
            argv += ["--device", f"net,slot=3,socket={sock},isolation={isolation}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def wait(self, timeout=TIMEOUT):
        """(exit status of the guest or None, UART output, events and errors)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"monitor timed out:\n{out}\n{err}")
        status = None
        for line in err.splitlines():
            if line.startswith("{"):
                e = json.loads(line)
                if e.get("event") == "exit":
                    status = e["status"]
        return status, out, err


@pytest.fixture
def switch(bulkhead, tmp_path):
    """A standalone net server; yields its socket, and afterwards its events are in
    switch.events (read once it has been stopped)."""
    sock = tmp_path / "n.sock"
    proc = subprocess.Popen([bulkhead, "ioserver", "net", "--socket", str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.02)

    class Switch:
        path = str(sock)
        events = []

        @staticmethod
        def stop():
            if proc.poll() is None:
                proc.terminate()
            out = proc.communicate(timeout=10)[0]
            Switch.events = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            return Switch.events

        @staticmethod
        def counters(mac):
            """The last counters of the port with this MAC."""
            last = {}
            for e in Switch.events:
                if e.get("event") == "counters" and e.get("mac") == mac:
                    last = e
            return last

    yield Switch
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def pair(bulkhead, inmates, switch, isolation, echo_args, image, args):
    """netecho first, then the client; both must finish. Returns both results."""
    echo = Guest(bulkhead, inmates / "netecho.elf", f"ip={B_IP}/24 {echo_args}",
                 switch.path, isolation)
    client = Guest(bulkhead, inmates / image, f"ip={A_IP}/24 peer={B_IP} {args}",
                   switch.path, isolation)
    c = client.wait()
    e = echo.wait()
    return c, e


def assert_started(out, name):
    assert any(line.startswith(f"{name}: ") and "mac 02:62:68:ff:00:0" in line
               for line in out.splitlines()), out


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("size", [56, 1000, 1472])
def test_ping_without_loss(bulkhead, inmates, switch, isolation, size):
    count = 300
    (cst, cout, cerr), (est, eout, eerr) = pair(
        bulkhead, inmates, switch, isolation, f"exit-after={count} idle-exit=20000",
        "netping.elf", f"count={count} size={size}")
    ping = netsys.PING_RE.search(cout)
    assert ping, cout + cerr
    sent, received, lost, mn, avg, mx, median, p99 = map(int, ping.groups())
    assert (sent, received, lost) == (count, count, 0), cout
    assert cst == 0, cout + cerr
    assert 0 < mn <= median <= p99 <= mx and mn <= avg <= mx, cout
    assert "wrong replies" not in cout, cout
    assert_started(cout, "netping")
    assert est == 0, eout + eerr
    assert f"answered {count} echo requests" in eout, eout
    assert ", 0 bad," in eout, eout


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_udp_echo_without_loss(bulkhead, inmates, switch, isolation):
    count = 100
    (cst, cout, cerr), (est, eout, eerr) = pair(
        bulkhead, inmates, switch, isolation, "idle-exit=1500", "netping.elf",
        f"count={count} size=1472 udp")
    ping = netsys.PING_RE.search(cout)
    assert ping and ping.group(1, 2, 3) == (str(count), str(count), "0"), cout + cerr
    assert cst == 0, cout
    assert est == 0 and f"{count} UDP echoes" in eout and ", 0 bad," in eout, eout


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("size,how", [(1514, "duration=1000"), (64, "count=1500")])
def test_stream_counted(bulkhead, inmates, switch, isolation, size, how):
    (cst, cout, cerr), (est, eout, eerr) = pair(
        bulkhead, inmates, switch, isolation, "streams=1 idle-exit=20000", "netperf.elf",
        f"size={size} {how}")
    assert cst == 0, cout + cerr
    sent = netsys.SEND_RE.search(cout)
    assert sent, cout
    frames, nbytes = int(sent.group(1)), int(sent.group(2))
    assert nbytes == frames * size and frames > 0, cout
    if how.startswith("count="):
        assert frames == int(how[6:]), cout
    assert est == 0, eout + eerr
    streams = list(netsys.STREAM_RE.finditer(eout))
    assert len(streams) == 1, eout           # one line per stream, however many markers
    received, total, lost, reordered, rbytes = map(int, streams[0].groups()[:5])
    assert total == frames, (cout, eout)
    assert (received, lost, reordered) == (frames, 0, 0), eout
    assert rbytes == nbytes, eout


def test_forged_source_dropped_by_the_switch(bulkhead, inmates, switch):
    count = 100
    (cst, cout, cerr), (est, eout, eerr) = pair(
        bulkhead, inmates, switch, "shared", "idle-exit=2000", "netperf.elf",
        f"size=128 count={count} src-mac=02:00:00:00:00:99")
    assert cst == 0, cout + cerr
    assert f"netperf: sent {count} frames" in cout, cout
    assert est == 0, eout + eerr
    assert "stream" not in eout and " 0 frames in," in eout, eout
    switch.stop()
    forger = [e for e in switch.events if e.get("event") == "counters" and e.get("drop_spoof")]
    assert forger and forger[-1]["drop_spoof"] >= count + 5, switch.events  # + end markers
    assert forger[-1]["tx_frames"] == 0, forger[-1]


@pytest.mark.parametrize("image,cmdline", [
    ("netping.elf", f"ip={A_IP}/24"),                              # no peer
    ("netping.elf", f"ip={A_IP}/33 peer={B_IP}"),
    ("netping.elf", f"ip={A_IP}/24 peer={B_IP} size=1473"),
    ("netping.elf", f"ip={A_IP}/24 peer={B_IP} count=ten"),
    ("netping.elf", f"ip={A_IP}/24 peer=10.0.0.256"),
    ("netperf.elf", f"ip={A_IP}/24 peer={B_IP} size=63"),
    ("netperf.elf", f"ip={A_IP}/24 peer={B_IP} src-mac=02:00:00:00:00"),
    ("netperf.elf", f"ip={A_IP}/24 peer={B_IP} count=10 duration=10"),
    ("netecho.elf", "exit-after=3"),                               # no address
    ("netecho.elf", f"ip={B_IP}/24 bogus"),
])
def test_bad_arguments(bulkhead, inmates, image, cmdline):
    status, out, err = Guest(bulkhead, inmates / image, cmdline).wait(timeout=60)
    assert status == 2, out + err
    assert out.strip(), "no message for the error"


def test_no_device(bulkhead, inmates):
    status, out, err = Guest(bulkhead, inmates / "netping.elf",
                             f"ip={A_IP}/24 peer={B_IP}").wait(timeout=60)
    assert status == 1 and "no usable virtio-net device" in out, out + err
