"""`bulkhead ioserver net` end to end, driven by the Python vhost-user frontend
(tests/system/vhost_frontend.py): frames between ports of one network with the right
header and bytes, mergeable receive buffers, flooding, learning, anti-spoofing and its
counters, separate networks, backpressure (held, then dropped), rate limits, bad frames,
a corrupt ring breaking only its own device, standalone mode, the command line, a real
TAP uplink, and the offloads: features offered, TSO frames delivered as they are or cut
into segments, partial checksums passed or completed, malformed offload headers."""
import contextlib
import fcntl
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vhost_frontend import (  # noqa: E402
    DESC_F_NEXT, F_EVENT_IDX, F_INDIRECT_DESC, F_PROTOCOL_FEATURES, F_VERSION_1,
    NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS, NET_HDR, NET_HDR_LEN, EventReader, NetDevice,
    eth_frame)

A, B, C = "02:62:68:00:01:00", "02:62:68:00:02:00", "02:62:68:00:03:00"
BCAST = "ff:ff:ff:ff:ff:ff"
# CSUM, GUEST_CSUM, GUEST_TSO4, GUEST_TSO6, GUEST_ECN, HOST_TSO4, HOST_TSO6, HOST_ECN
OFFLOADS = (0, 1, 7, 8, 9, 11, 12, 13)


class NetServer(EventReader):
    """A supervised net server: one socketpair per --conn, events on a pipe."""

    def __init__(self, bulkhead, conns, extra=(), pass_fds=(), name="net0"):
        self.ours, theirs = [], []
        r, w = os.pipe()
        args = [bulkhead, "ioserver", "net", "--name", name, "--event-fd", str(w), *extra]
        for spec in conns:
            a, b = socket.socketpair()
            self.ours.append(a)
            theirs.append(b)
            args += ["--conn", ",".join([f"fd={b.fileno()}"] +
                                        [f"{k}={v}" for k, v in spec.items()])]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE,
                                     pass_fds=(w, *[b.fileno() for b in theirs], *pass_fds))
        for b in theirs:
            b.close()
        os.close(w)
        os.set_blocking(r, False)
        self.event_fd, self.buf, self.seen = r, b"", []

    def counters(self, timeout=5, **match):
        """Asks for counters (SIGUSR1) and returns the newest line matching."""
        mark = len(self.events())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [e for e in self.events()[mark:] if e["event"] == "counters" and
                     all(e.get(k) == v for k, v in match.items())]
            if fresh:
                return fresh[-1]
            time.sleep(0.02)
        raise AssertionError(f"no counters {match} in {self.seen[mark:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        finally:
            for a in self.ours:
                a.close()
        self.events()
        os.close(self.event_fd)
        return self.proc.returncode, err.decode(errors="replace")


def port(partition, mac, network="lan", device=0, **kw):
    return {"partition": partition, "device": device, "network": network, "mac": mac, **kw}


@contextlib.contextmanager
def lan(bulkhead, conns, extra=(), device=lambda sock, devs: NetDevice(sock), **kw):
    """A net server with conns, and a frontend device on each connection, made by
    device(socket, the devices made so far); the server must end cleanly."""
    srv = NetServer(bulkhead, conns, extra, **kw)
    devs = []
    try:
        srv.wait_event("ready", connections=len(conns))
        for sock in srv.ours:
            devs.append(device(sock, devs))
        yield srv, devs
    finally:
        rc, err = srv.stop()
        for d in devs:
            with contextlib.suppress(OSError):
                d.mem.close()
        assert rc == 0, err


def test_features_and_config(bulkhead):
    with lan(bulkhead, [port("p1", A)]) as (srv, (a,)):
        for bit in (NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS, F_VERSION_1, F_EVENT_IDX,
                    F_INDIRECT_DESC, F_PROTOCOL_FEATURES):
            assert a.offered & (1 << bit), bit
        for bit in OFFLOADS:                # checksum, TSO4/6 and ECN both ways
            assert a.offered & (1 << bit), bit
        for bit in (10, 14, 17, 22):            # GUEST_UFO, HOST_UFO, CTRL_VQ, MQ: not
            assert not a.offered & (1 << bit)
        assert a.fe.get_queue_num() == 2
        assert a.config() == {"mac": A, "status": 1, "max_virtqueue_pairs": 1}


def test_unicast_learning_and_flooding(bulkhead):
    with lan(bulkhead, [port("p1", A), port("p2", B), port("p3", C)]) as (srv, (a, b, c)):
        for d in (a, b, c):
            d.post_rx(8)
        # B is unknown yet: flooded to B and C, not back to A
        f1 = eth_frame(B, A, b"hello B" * 10)
        a.send(f1)
        for d in (b, c):
            hdr, frame = d.recv()
            assert frame == f1
            assert hdr == {"flags": 0, "gso_type": 0, "hdr_len": 0, "gso_size": 0,
                           "csum_start": 0, "csum_offset": 0, "num_buffers": 1}
        assert a.quiet()
        # B answers A, whom the switch has learned: only A
        f2 = eth_frame(A, B, os.urandom(1500))
        b.send(f2, split=True)
        assert a.recv()[1] == f2
        assert c.quiet(0.2)
        # and now B is known: only B
        f3 = eth_frame(B, A, os.urandom(60))
        a.send(f3)
        assert b.recv()[1] == f3
        assert c.quiet(0.2) and a.quiet(0.0)
        cnt = srv.counters(partition="p2")
        assert (cnt["rx_frames"], cnt["tx_frames"]) == (2, 1)
        assert cnt["rx_bytes"] == len(f1) + len(f3) and cnt["tx_bytes"] == len(f2)
        assert cnt["network"] == "lan" and cnt["mac"] == B and cnt["device"] == 0
        assert srv.counters(partition="p3")["rx_frames"] == 1


def test_broadcast_floods_the_network_only(bulkhead):
    conns = [port("p1", A), port("p2", B), port("p3", C, network="other")]
    with lan(bulkhead, conns) as (srv, (a, b, c)):
        for d in (a, b, c):
            d.post_rx(4)
        f = eth_frame(BCAST, A, b"who is there")
        a.send(f)
        assert b.recv()[1] == f
        assert a.quiet(0.2) and c.quiet(0.0)
        # multicast too; C's network does not reach A or B, even unicast to their MACs
        m = eth_frame("01:00:5e:00:00:01", B, b"mc")
        b.send(m)
        assert a.recv()[1] == m
        c.send(eth_frame(BCAST, C, b"x"))
        c.send(eth_frame(A, C, b"y"))
        assert a.quiet() and b.quiet(0.0)
        assert srv.counters(partition="p3")["tx_frames"] == 2


def test_mergeable_and_single_buffers(bulkhead):
    with lan(bulkhead, [port("p1", A), port("p2", B)]) as (srv, (a, b)):
        b.post_rx(8, size=512)
        f = eth_frame(B, A, os.urandom(1500))            # 1526 bytes with the header
        a.send(f)
        hdr, frame = b.recv()
        assert hdr["num_buffers"] == 3 and frame == f
        # a 1518-byte frame with a VLAN tag is allowed
        v = eth_frame(B, A, os.urandom(1500), ethertype=0x8100)
        a.send(v)
        assert b.recv()[1] == v


def test_without_mrg_rxbuf_a_frame_takes_one_buffer(bulkhead):
    srv = NetServer(bulkhead, [port("p1", A), port("p2", B)])
    try:
        a = NetDevice(srv.ours[0])
        b = NetDevice(srv.ours[1], features=a.offered & ~(1 << NET_F_MRG_RXBUF))
        b.post_rx(1, size=512)                           # too small for 1514 bytes
        b.post_rx(1)
        big = eth_frame(B, A, os.urandom(1500))
        a.send(big)
        hdr, frame = b.recv()
        assert hdr is None                               # the small one back, empty
        small = eth_frame(B, A, b"fits")
        a.send(small)
        hdr, frame = b.recv()
        assert hdr["num_buffers"] == 1 and frame == small
        assert srv.counters(partition="p2")["drop_no_buffer"] == 1
    finally:
        assert srv.stop()[0] == 0


def test_spoofed_source_is_dropped_and_counted(bulkhead):
    with lan(bulkhead, [port("p1", A), port("p2", B)]) as (srv, (a, b)):
        b.post_rx(4)
        a.send(eth_frame(BCAST, B, b"I am B"))           # completed, never delivered
        a.send(eth_frame(B, "02:00:00:00:00:99", b"nobody"))
        assert b.quiet()
        cnt = srv.counters(partition="p1")
        assert cnt["drop_spoof"] == 2 and cnt["tx_frames"] == 0
        assert srv.counters(partition="p2")["rx_frames"] == 0
        a.send(eth_frame(B, A, b"honest"))
        assert b.recv()[1] == eth_frame(B, A, b"honest")


def test_bad_frames_are_dropped(bulkhead):
    with lan(bulkhead, [port("p1", A), port("p2", B)]) as (srv, (a, b)):
        b.post_rx(8)
        a.send(eth_frame(B, A, bytes(1501)))              # 1515 bytes: oversize
        a.send(eth_frame(B, A, bytes(1505), ethertype=0x8100))   # 1519 tagged
        a.send(b"\x01" * 13)                              # shorter than a header
        a.send(b"", hdr=b"")                              # no virtio header at all
        a.send(eth_frame(B, A, b"csum"), hdr=struct.pack("<BBHHHHH", 1, 0, 0, 0, 14, 16, 0))
        a.send(eth_frame(B, A, b"gso"), hdr=struct.pack("<BBHHHHH", 0, 1, 34, 1460, 0, 0, 0))
        assert b.quiet()
        cnt = srv.counters(partition="p1")
        assert (cnt["drop_oversize"], cnt["drop_malformed"], cnt["tx_frames"]) == (2, 4, 0)


def test_backpressure_holds_then_drops(bulkhead):
    with lan(bulkhead, [port("p1", A), port("p2", B)], extra=["--hold-ms", "400"]) as \
            (srv, (a, b)):
        a.post_rx(2)
        b.send(eth_frame(A, B, b"learn B"))               # the switch knows B now
        a.recv()
        # B has no buffers: A's frame waits (A's chain is not completed meanwhile)
        f = eth_frame(B, A, b"wait for me")
        head = a.send(f, wait=False)
        time.sleep(0.15)
        assert a.txq.ring.take_used() == []
        b.post_rx(1)
        assert b.recv()[1] == f
        assert [u for u, _ in a.txq.wait(1)] == [head]
        # nobody posts: after the hold time it is dropped and counted on B
        g = eth_frame(B, A, b"too late")
        t0 = time.monotonic()
        a.send(g, wait=False)
        a.txq.wait(1, timeout=5)
        assert 0.3 < time.monotonic() - t0 < 3
        cnt = srv.counters(partition="p2")
        assert cnt["drop_no_buffer"] == 1 and cnt["rx_frames"] == 1
        b.post_rx(1)
        assert b.quiet()                                  # never delivered late
        # floods never wait: best effort
        a.send(eth_frame(BCAST, A, b"all"))
        assert b.recv()[1] == eth_frame(BCAST, A, b"all")


def test_rate_limit_delays_without_dropping(bulkhead):
    conns = [port("p1", A, rate=20000, burst=2000), port("p2", B)]
    with lan(bulkhead, conns) as (srv, (a, b)):
        b.post_rx(16)
        frames = [eth_frame(B, A, bytes([i]) * 986) for i in range(10)]   # 1000 bytes
        t0 = time.monotonic()
        for f in frames:
            a.send(f, wait=False)
        got = [b.recv()[1] for _ in frames]
        elapsed = time.monotonic() - t0
        assert got == frames
        # 10000 bytes at 20000/s with 2000 to start with: about 0.4 s
        assert 0.3 < elapsed < 2.0, elapsed
        cnt = srv.counters(partition="p1")
        assert cnt["tx_frames"] == 10 and cnt["drop_rate"] == 0
        # two go on the burst; of the other eight, each sent before its credit was there
        # waited (counted once, however often it was looked at): all of them, unless the
        # sends themselves were 50 ms apart
        assert 1 <= cnt["rate_held"] <= 8, cnt


def test_corrupt_ring_fails_only_that_device(bulkhead):
    conns = [port("p1", A), port("p2", B), port("p3", C)]
    with lan(bulkhead, conns) as (srv, (a, b, c)):
        for d in (a, b, c):
            d.post_rx(4)
        # A's transmit ring: a chain that loops on itself
        r = a.txq.ring
        buf = a.mem.alloc(64)
        r.set_desc(0, buf, 64, DESC_F_NEXT, 1)
        r.set_desc(1, buf, 64, DESC_F_NEXT, 0)
        r.publish(0)
        a.txq.kick()
        e = srv.wait_event("device_error", partition="p1")
        assert e["reason"] == "loop" and e["queue"] == 1
        f = eth_frame(C, B, b"still here")
        b.send(f)
        assert c.recv()[1] == f
        c.send(eth_frame(BCAST, C, b"and me"))
        assert b.recv()[1] == eth_frame(BCAST, C, b"and me")
        assert a.quiet(0.2)                               # broken: gets nothing more


def test_disconnect_reports_final_counters_and_exit(bulkhead):
    srv = NetServer(bulkhead, [port("p1", A), port("p2", B)])
    try:
        a, b = NetDevice(srv.ours[0]), NetDevice(srv.ours[1])
        b.post_rx(1)
        a.send(eth_frame(B, A, b"bye"))
        b.recv()
        # a periodic line comes by itself within a second or so
        srv.wait_event("counters", partition="p1", tx_frames=1)
        srv.ours[0].close()
        e = srv.wait_event("counters", partition="p1", final=True)
        assert e["tx_frames"] == 1
        srv.ours[1].close()
        assert srv.proc.wait(10) == 0                     # the last connection went
        srv.wait_event("counters", partition="p2", final=True, rx_frames=1)
    finally:
        srv.stop()


def test_standalone_macs_in_accept_order(bulkhead, tmp_path):
    sock = tmp_path / "net.sock"
    proc = subprocess.Popen([bulkhead, "ioserver", "net", "--socket", str(sock),
                             "--mac", "02:00:00:00:00:fe"], stderr=subprocess.PIPE)
    try:
        socks = []
        for _ in range(3):
            deadline = time.monotonic() + 10
            while True:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(sock))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    s.close()
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            socks.append(s)
        devs = [NetDevice(s) for s in socks]
        macs = [d.config()["mac"] for d in devs]
        assert macs == ["02:00:00:00:00:fe", "02:00:00:00:00:ff", "02:00:00:00:01:00"]
        devs[1].post_rx(1)
        f = eth_frame(macs[1], macs[0], b"standalone")
        devs[0].send(f)
        assert devs[1].recv()[1] == f
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def run_bad(bulkhead, args, pass_fds=()):
    p = subprocess.run([bulkhead, "ioserver", "net", *args], capture_output=True, text=True,
                       timeout=10, pass_fds=pass_fds)
    return p.returncode, p.stderr


@pytest.mark.parametrize("spec,message", [
    ("partition=p1,mac=02:00:00:00:00:01", "network= and mac= are required for net"),
    ("partition=p1,network=lan", "network= and mac= are required for net"),
    ("partition=p1,network=lan,mac=02:00:00:00:01", "bad value '02:00:00:00:01' for mac"),
    ("partition=p1,network=lan,mac=03:00:00:00:00:01", "for mac (a unicast address"),
    ("partition=p1,network=lan,mac=00:00:00:00:00:00", "not all zeros"),
    ("partition=p1,network=lan,mac=02:00:00:00:00:01,rate=0", "bad value '0' for rate"),
    ("partition=p1,network=lan,mac=02:00:00:00:00:01,rate=100,burst=1000",
     "at least 1518"),
    ("partition=p1,network=lan,mac=02:00:00:00:00:01,burst=4000", "burst= needs rate="),
    ("partition=p1,network=a=b,mac=02:00:00:00:00:01", "bad value"),
])
def test_bad_conn_specs(bulkhead, spec, message):
    a, b = socket.socketpair()
    try:
        rc, err = run_bad(bulkhead, ["--conn", f"fd={b.fileno()},{spec}"], (b.fileno(),))
    finally:
        a.close()
        b.close()
    assert rc == 2 and message in err, err


@pytest.mark.parametrize("uplink,message", [
    ("network=lan", "give network=NET,fd=M (supervised) or tap=IFNAME"),
    ("fd=0", "give network=NET,fd=M"),
    ("tap=x,network=lan", "give network=NET,fd=M"),
    ("colour=red", "unknown key 'colour'"),
    ("tap=bh0", "supervised, give network=NET,fd=M"),
    ("network=lan,fd=99", "fd=99 is not open"),
    ("network=lan,fd=FD", "fd is not a TAP device"),
])
def test_bad_uplinks(bulkhead, uplink, message):
    a, b = socket.socketpair()
    r, w = os.pipe()
    try:
        args = ["--conn", f"fd={b.fileno()},partition=p1,network=lan,mac=02:00:00:00:00:01",
                "--uplink", uplink.replace("FD", str(r))]
        rc, err = run_bad(bulkhead, args, (b.fileno(), r))
    finally:
        for x in (a, b):
            x.close()
        os.close(r)
        os.close(w)
    assert rc == 2 and message in err, err


def test_bad_command_lines(bulkhead, tmp_path):
    sock = str(tmp_path / "s")
    for args, message in [
        (["--socket", sock, "--mac", "01:00:00:00:00:01"], "--mac: '01:00:00:00:00:01'"),
        (["--socket", sock, "--network", "a,b"], "--network: 'a,b'"),
        (["--socket", sock, "--hold-ms", "x"], "--hold-ms: 'x' is not 0 to 60000"),
        (["--socket", sock, "--uplink", "network=lan,fd=3"], "standalone, give tap=IFNAME"),
    ]:
        rc, err = run_bad(bulkhead, args)
        assert rc == 2 and message in err, (args, err)
    p = subprocess.run([bulkhead, "ioserver", "rng", "--socket", sock, "--hold-ms", "5"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "are for net only" in p.stderr
    p = subprocess.run([bulkhead, "ioserver", "--help"], capture_output=True, text=True)
    assert "--uplink network=NET,fd=M" in p.stdout and "--hold-ms" in p.stdout


# ------------------------------------------------------------------ uplink (TAP)

TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000


def have_tun():
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun")


@pytest.mark.skipif(not have_tun(), reason="needs root and /dev/net/tun")
def test_uplink_tap_answers_arp(bulkhead):
    name = f"bhnet{os.getpid() % 10000}"
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        subprocess.run(["ip", "addr", "add", "10.199.0.1/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        with lan(bulkhead, [port("p1", A)], extra=["--uplink", f"network=lan,fd={fd}"],
                 pass_fds=(fd,)) as (srv, (a,)):
            a.post_rx(32)
            # ARP who-has 10.199.0.1 tell 10.199.0.2, from A
            arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes.fromhex(
                A.replace(":", "")), bytes([10, 199, 0, 2]), bytes(6), bytes([10, 199, 0, 1]))
            a.send(eth_frame(BCAST, A, arp, ethertype=0x0806))
            deadline = time.monotonic() + 5
            reply = None
            while time.monotonic() < deadline and reply is None:
                hdr, frame = a.recv(timeout=5)
                if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02":
                    reply = frame
            assert reply is not None and reply[:6] == bytes.fromhex(A.replace(":", ""))
            cnt = srv.counters(uplink=name)
            assert cnt["rx_frames"] >= 1 and cnt["tx_frames"] >= 1
            assert cnt["network"] == "lan" and "partition" not in cnt
    finally:
        os.close(fd)
        subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.mark.skipif(not have_tun(), reason="needs root and /dev/net/tun")
def test_standalone_opens_its_tap(bulkhead, tmp_path):
    name = f"bhsa{os.getpid() % 10000}"
    sock = tmp_path / "net.sock"
    r, w = os.pipe()
    proc = subprocess.Popen([bulkhead, "ioserver", "net", "--socket", str(sock), "--network",
                             "office", "--uplink", f"tap={name}", "--event-fd", str(w)],
                            stderr=subprocess.PIPE, pass_fds=(w,))
    os.close(w)
    os.set_blocking(r, False)
    ev = EventReader()
    ev.event_fd, ev.buf, ev.seen = r, b"", []
    try:
        ev.wait_event("ready")
        assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0
        proc.send_signal(signal.SIGUSR1)
        e = ev.wait_event("counters", uplink=name)
        assert e["network"] == "office" and e["rx_frames"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        os.close(r)
    assert proc.returncode == 0, err
    # the TAP was the server's own: gone with it
    assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0


# ------------------------------------------------------------------ offloads

NEEDS_CSUM, DATA_VALID = 1, 2
GSO_TCPV4, GSO_TCPV6 = 1, 4
NO_OFFLOADS = sum(1 << b for b in OFFLOADS)


def csum16(data, acc=0):
    """The Internet checksum of data (acc: a running sum to add): 0 when data checks."""
    if len(data) % 2:
        data += b"\0"
    acc += sum(struct.unpack(f">{len(data) // 2}H", data))
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    return ~acc & 0xffff


def tcp_packet(dst, src, payload, v6=False, flags=0x18, seq=1000):
    """Ethernet + IPv4/IPv6 + TCP (20 bytes) + payload, the TCP checksum field holding
    the pseudo-header sum as a driver asking for NEEDS_CSUM leaves it. Returns the frame
    and where TCP starts."""
    tcp_len = 20 + len(payload)
    if v6:
        saddr, daddr = bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02")
        ip = struct.pack(">IHBB16s16s", 0x60000000, tcp_len, 6, 64, saddr, daddr)
        pseudo = saddr + daddr + struct.pack(">IxxxB", tcp_len, 6)
        ethertype = 0x86DD
    else:
        saddr, daddr = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 0x1234, 0x4000, 64, 6, 0,
                         saddr, daddr)
        ip = ip[:10] + struct.pack(">H", csum16(ip)) + ip[12:]
        pseudo = saddr + daddr + struct.pack(">xBH", 6, tcp_len)
        ethertype = 0x0800
    part = ~csum16(pseudo) & 0xffff
    tcp = struct.pack(">HHIIBBHHH", 40000, 5201, seq, 7, 5 << 4, flags, 502, part, 0)
    frame = eth_frame(dst, src, ip + tcp + payload, ethertype=ethertype)
    return frame, 14 + len(ip)


def offload_hdr(flags=NEEDS_CSUM, gso_type=0, hdr_len=0, gso_size=0, csum_start=34,
                csum_offset=16):
    return struct.pack(NET_HDR, flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def check_tcp_segment(seg, l4, v6):
    """The IP and TCP checksums of a whole frame verify; returns (seq, flags, payload)."""
    if v6:
        plen = struct.unpack_from(">H", seg, 18)[0]
        assert plen == len(seg) - l4
        pseudo = seg[22:54] + struct.pack(">IxxxB", plen, 6)
    else:
        assert struct.unpack_from(">H", seg, 16)[0] == len(seg) - 14
        assert csum16(seg[14:34]) == 0
        pseudo = seg[26:34] + struct.pack(">xBH", 6, len(seg) - l4)
    assert csum16(seg[l4:], 0xffff & ~csum16(pseudo)) == 0
    seq, = struct.unpack_from(">I", seg, l4 + 4)
    return seq, seg[l4 + 13], seg[l4 + 20:]


@contextlib.contextmanager
def masked_lan(bulkhead, masks, extra=(), **kw):
    """Ports p1, p2, p3 (A, B, C), p1 negotiating every feature offered, the others
    what is offered less masks[i]; rings of 256 entries, room for 64 KiB frames."""
    macs = [A, B, C]

    def device(sock, devs):
        offered = devs[0].offered if devs else None
        mask = masks[len(devs)]
        return NetDevice(sock, num=256, mem_size=16 << 20,
                         features=None if offered is None else offered & ~mask)
    with lan(bulkhead, [port(f"p{i + 1}", macs[i]) for i in range(len(masks))], extra,
             device=device, **kw) as net:
        yield net


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_gso_frame_as_is_or_segmented(bulkhead, v6):
    """A TSO frame flooded to B, which negotiated the offloads, arrives as it was sent,
    with its header; C, which negotiated none, gets MSS-sized segments whose IP and TCP
    headers and checksums are right and whose payloads make the frame's."""
    with masked_lan(bulkhead, [0, 0, NO_OFFLOADS]) as (srv, (a, b, c)):
        assert not c.features & NO_OFFLOADS and b.features & NO_OFFLOADS == NO_OFFLOADS
        b.post_rx(60)
        c.post_rx(60)
        payload = os.urandom(10000)
        mss = 1400
        frame, l4 = tcp_packet("02:62:68:00:09:00", A, payload, v6=v6, flags=0x19)
        gso = GSO_TCPV6 if v6 else GSO_TCPV4
        a.send(frame, hdr=offload_hdr(gso_type=gso, hdr_len=l4 + 20, gso_size=mss,
                                      csum_start=l4))
        hdr, got = b.recv()
        assert got == frame
        assert hdr == {"flags": NEEDS_CSUM, "gso_type": gso, "hdr_len": l4 + 20,
                       "gso_size": mss, "csum_start": l4, "csum_offset": 16,
                       "num_buffers": hdr["num_buffers"]}
        assert hdr["num_buffers"] == -(-(len(frame) + NET_HDR_LEN) // 1526)
        nseg = -(-len(payload) // mss)
        data = b""
        for i in range(nseg):
            hdr, seg = c.recv()
            assert hdr["flags"] == 0 and hdr["gso_type"] == 0 and hdr["num_buffers"] == 1
            addrs = slice(22, 54) if v6 else slice(26, 34)
            assert seg[:14] == frame[:14] and seg[addrs] == frame[addrs]
            seq, flags, part = check_tcp_segment(seg, l4, v6)
            assert seq == 1000 + len(data)
            assert flags == (0x19 if i == nseg - 1 else 0x10)      # FIN, PSH on the last
            assert len(part) == min(mss, len(payload) - len(data))
            if not v6:
                assert struct.unpack_from(">H", seg, 18)[0] == 0x1234 + i   # IPv4 id
            data += part
        assert data == payload
        assert c.quiet(0.2) and b.quiet(0.0)
        wire = len(payload) + nseg * (l4 + 20)
        for p, key in (("p1", "tx"), ("p2", "rx"), ("p3", "rx")):
            cnt = srv.counters(partition=p)
            assert (cnt[f"{key}_frames"], cnt[f"{key}_bytes"]) == (nseg, wire), (p, cnt)


def test_partial_checksum_passed_or_completed(bulkhead):
    """NEEDS_CSUM without GSO: B (GUEST_CSUM) gets the header and the frame as sent, C
    gets the checksum filled in."""
    with masked_lan(bulkhead, [0, 0, NO_OFFLOADS]) as (srv, (a, b, c)):
        b.post_rx(4)
        c.post_rx(4)
        frame, l4 = tcp_packet(BCAST, A, os.urandom(777))
        a.send(frame, hdr=offload_hdr(csum_start=l4))
        hdr, got = b.recv()
        assert got == frame and hdr["flags"] == NEEDS_CSUM and hdr["csum_start"] == l4
        hdr, got = c.recv()
        assert hdr["flags"] == 0 and len(got) == len(frame)
        assert got[:l4 + 16] == frame[:l4 + 16] and got[l4 + 18:] == frame[l4 + 18:]
        check_tcp_segment(got, l4, False)


def test_gso_to_a_receiver_with_guest_csum_only(bulkhead):
    """GUEST_CSUM without GUEST_TSO4: segments, marked DATA_VALID."""
    tso = (1 << 7) | (1 << 8) | (1 << 9)
    with masked_lan(bulkhead, [0, tso]) as (srv, (a, b)):
        b.post_rx(8)
        frame, l4 = tcp_packet(B, A, os.urandom(3000))
        a.send(frame, hdr=offload_hdr(gso_type=GSO_TCPV4, hdr_len=l4 + 20, gso_size=1000))
        for i in range(3):
            hdr, seg = b.recv()
            assert hdr["flags"] == DATA_VALID and hdr["gso_type"] == 0
            check_tcp_segment(seg, l4, False)


def test_malformed_offload_headers_are_dropped(bulkhead):
    """Offload headers that cannot be right are dropped and counted drop_malformed (too
    many segments: drop_oversize); the server goes on; a port that did not negotiate
    CSUM may not ask for it."""
    with masked_lan(bulkhead, [0, 0, NO_OFFLOADS]) as (srv, (a, b, c)):
        b.post_rx(16)
        frame, l4 = tcp_packet(B, A, os.urandom(3000))
        good = dict(gso_type=GSO_TCPV4, hdr_len=l4 + 20, gso_size=1000)
        bad = [dict(good, csum_start=len(frame)),                 # outside the frame
               dict(good, csum_offset=0xffff),
               dict(gso_type=0, csum_start=len(frame) - 1),       # checksum past the end
               dict(good, gso_size=0),
               dict(good, hdr_len=len(frame) + 1),
               dict(good, gso_type=3),                            # UDP: not offered
               dict(good, gso_type=0x42),
               dict(good, flags=0),                               # GSO without NEEDS_CSUM
               dict(good, flags=NEEDS_CSUM | DATA_VALID),
               dict(good, gso_type=GSO_TCPV6)]                    # not what the frame is
        for h in bad:
            a.send(frame, hdr=offload_hdr(**h))
        a.send(frame, hdr=offload_hdr(**dict(good, gso_size=20)))  # 150 segments
        big = eth_frame(B, A, bytes(1501))
        a.send(big, hdr=offload_hdr(csum_start=14, csum_offset=0))  # not GSO: 1515 bytes
        c.send(eth_frame(B, C, b"x" * 40), hdr=offload_hdr(csum_start=14, csum_offset=0))
        assert b.quiet()
        cnt = srv.counters(partition="p1")
        assert (cnt["drop_malformed"], cnt["drop_oversize"], cnt["tx_frames"]) == \
            (len(bad), 2, 0)
        assert srv.counters(partition="p3")["drop_malformed"] == 1
        a.send(frame, hdr=offload_hdr(**good))
        assert b.recv()[1] == frame


@pytest.mark.skipif(not have_tun(), reason="needs root and /dev/net/tun")
def test_gso_frame_to_the_uplink_is_segmented(bulkhead):
    """The TAP has no vnet header: a TSO frame from a guest reaches the host's interface
    as MSS-sized TCP segments with their checksums right."""
    name = f"bhgso{os.getpid() % 10000}"
    fd = os.open("/dev/net/tun", os.O_RDWR)
    cap = None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        cap.bind((name, 0))
        cap.settimeout(5)
        with masked_lan(bulkhead, [0], extra=["--uplink", f"network=lan,fd={fd}"],
                        pass_fds=(fd,)) as (srv, (a,)):
            payload = os.urandom(5000)
            frame, l4 = tcp_packet("02:62:68:00:09:00", A, payload)
            a.send(frame, hdr=offload_hdr(gso_type=GSO_TCPV4, hdr_len=l4 + 20, gso_size=1200))
            data = b""
            while len(data) < len(payload):
                seg = cap.recv(65536)
                if seg[6:12] != frame[6:12]:
                    continue
                assert len(seg) <= 1514
                seq, _, part = check_tcp_segment(seg, l4, False)
                assert seq == 1000 + len(data)
                data += part
            assert data == payload
            cnt = srv.counters(uplink=name)
            assert cnt["rx_frames"] == 5 and cnt["drop_no_buffer"] == 0
    finally:
        if cap:
            cap.close()
        os.close(fd)
        subprocess.run(["ip", "link", "del", name], capture_output=True)
